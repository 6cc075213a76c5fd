"""check-env on PettingZoo-style envs that do not subclass pettingzoo.ParallelEnv: attributes only PettingZoo's
checker reads are a warning, real API violations still fail."""

from __future__ import annotations

import pytest

from pyodide_runtime.host.checkenv import FAIL, PASS, WARN, EnvTarget
from pyodide_runtime.host.checkenv.api import check_adapter, check_upstream_api

pytest.importorskip("pettingzoo.test")


def test_attributes_only_the_pettingzoo_checker_reads_are_a_warning():
    target = EnvTarget("env_fixtures.duck_typed:make_env")
    result = check_upstream_api(target)
    assert result.status == WARN, result.message
    assert result.message.startswith("PettingZoo's parallel_api_test needs `unwrapped` and `observation_space`")
    assert "the runtime does not use them" in result.message
    assert "the rest of the checker passed" in result.message
    assert result.fix.startswith("add `unwrapped` and `observation_space` if you want the full PettingZoo checker")
    assert result.details == {"missing": ["unwrapped", "observation_space"], "checker_completed": True}
    assert check_adapter(target).status == PASS  # and the runtime plays it


def test_a_real_api_violation_past_the_missing_attribute_still_fails():
    result = check_upstream_api(EnvTarget("env_fixtures.duck_typed:make_violating"))
    assert result.status == FAIL, result.message
    # PettingZoo's assert has no message: the report shows the failing line (under pytest, its rewritten form)
    assert "AssertionError: " in result.message and "issubset" in result.message
    assert "after standing in for `unwrapped`, which the runtime does not use" in result.message


def test_an_attribute_error_from_the_env_own_code_still_fails():
    result = check_upstream_api(EnvTarget("env_fixtures.duck_typed:make_typo"))
    assert result.status == FAIL, result.message
    assert "'TypoInStepEnv' object has no attribute 'speed'" in result.message


def test_a_parallel_env_subclass_missing_what_pettingzoo_reads_still_fails():
    result = check_upstream_api(EnvTarget("env_fixtures.duck_typed:make_subclass"))
    assert result.status == FAIL, result.message
    assert "has no attribute 'observation_spaces'" in result.message


def test_a_duck_typed_env_with_every_attribute_passes():
    assert check_upstream_api(EnvTarget("env_fixtures.line:make_env")).status == PASS


def test_a_missing_attribute_the_runtime_reads_fails(monkeypatch):
    from env_fixtures.duck_typed import DuckLineEnv

    monkeypatch.setattr(DuckLineEnv, "unwrapped", property(lambda self: self), raising=False)
    monkeypatch.setattr(DuckLineEnv, "observation_space", lambda self, agent: self._spaces[agent][1], raising=False)
    original = DuckLineEnv.reset

    def reset_without_agents(self, seed=None, options=None):
        out = original(self, seed, options)
        del self.agents
        return out

    monkeypatch.setattr(DuckLineEnv, "reset", reset_without_agents)
    result = check_upstream_api(EnvTarget("env_fixtures.duck_typed:make_env"))
    assert result.status == FAIL, result.message
    assert "no attribute 'agents'" in result.message
