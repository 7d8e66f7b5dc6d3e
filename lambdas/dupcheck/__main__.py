"""Entry point for `python -m dupcheck`."""

from dupcheck.cli import main

raise SystemExit(main())
