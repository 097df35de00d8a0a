"""``python -m mixedmodels``: the command line (see :mod:`mixedmodels.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
