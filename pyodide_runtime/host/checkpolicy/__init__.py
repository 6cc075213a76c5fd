"""check-policy: does a study's ONNX policy fit its env, run alike in CPython and in the page's runtime, and act?"""

from pyodide_runtime.host.checkpolicy.checks import CheckPolicyOptions, run_policy_checks
from pyodide_runtime.host.checkpolicy.report import PolicyReport
from pyodide_runtime.host.checkpolicy.study import PolicyStudy, StudyError, load_policy_study

__all__ = ["CheckPolicyOptions", "run_policy_checks", "PolicyReport", "PolicyStudy", "StudyError",
           "load_policy_study"]
