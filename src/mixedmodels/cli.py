"""The ``mixedmodels`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"


def _demo(args: argparse.Namespace) -> int:
    """Fit sleepstudy from the bundled data and print lme4's summary."""
    import mixedmodels as mm

    data = mm.datasets.load("sleepstudy")
    print(f">>> mm.lmer({DEMO_FORMULA!r}, mm.datasets.load('sleepstudy'))\n")
    print(mm.lmer(DEMO_FORMULA, data).summary())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedmodels", description="Mixed-effects models with lme4's language and answers.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit sleepstudy from the bundled data and print the summary")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:  # pragma: no cover - formatted for people
        from .errors import MixedModelsError

        if isinstance(error, MixedModelsError):
            print(f"mixedmodels: error: {error}", file=sys.stderr)
            return 2
        raise
