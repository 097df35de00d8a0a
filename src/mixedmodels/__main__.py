"""``python -m mixedmodels``: the command line."""

from .cli import main

raise SystemExit(main())
