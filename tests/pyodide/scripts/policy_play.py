# Inside Pyodide: a human-AI study's page (the participant's seat and the policy's hosted seat) with a stand-in model.
from pyodide_runtime import pyodide_compat

pyodide_compat.prepare()
from pyodide_runtime.host.testing.policy_play import play_with_stand_in_model

result = play_with_stand_in_model(params["study"])
