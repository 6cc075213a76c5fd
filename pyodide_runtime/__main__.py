"""Allow ``python -m pyodide_runtime``."""

from pyodide_runtime.cli import main

raise SystemExit(main())
