"""Entry point for `python -m dupcheck`."""

from dupcheck_tools.cli import main

raise SystemExit(main())
