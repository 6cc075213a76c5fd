"""Allow ``python -m pyodide_runtime``."""

from pyodide_runtime.host.cli import main

raise SystemExit(main())
