"""The ``mixedmodels`` command line (also ``python -m mixedmodels``), built on click.

Commands::

    mixedmodels demo [--out DIR]                    # sleepstudy: summary, pooling pictures
    mixedmodels fit FORMULA --data FILE [--family F] [--ml] [--ddf satterthwaite] [--json] [--plot OUT.png]
    mixedmodels fit FORMULA --data 'dir/*.parquet' --dask [--scheduler ADDRESS]   # data larger than memory
    mixedmodels datasets [NAME] [--head N] [--info]
    mixedmodels pooling FORMULA --data FILE [--family F] [--plot OUT.png] [--shrinkage-plot OUT.png]
    mixedmodels simulate --groups J --obs N [...] [--out FILE.csv]

Bad input gives one line on stderr (``mixedmodels: error: ...``) and exit
status 1 (2 for a command-line usage error), never a traceback; ``--traceback``
shows one for bug reports.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import MixedModelsError

__all__ = ["main", "cli"]

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"
DEMO_DIR = "mixedmodels-demo"
_PLOT_EXTRA = "pip install 'mixedmodels[plot]'"


class CliError(click.ClickException):
    """A problem with the user's input that is not a MixedModelsError (files, options)."""


# --------------------------------------------------------------------------- helpers
def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _require(module: str, what: str) -> None:
    """Fail with one clear line when a part of the library has not landed in this version."""
    if not _available(module):
        raise CliError(f"{what} is not available yet in mixedmodels {__version__}")


def _pictures_unavailable() -> str | None:
    """Why pooling pictures cannot be drawn here, or None when they can."""
    if not _available("matplotlib"):
        return f"matplotlib is not installed ({_PLOT_EXTRA})"
    if not _available("mixedmodels.pooling"):
        return f"mm.compare_pooling is not available yet in mixedmodels {__version__}"
    return None


def _headless_pyplot():
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> Path:
    plt = _headless_pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _split_names(values: Sequence[str]) -> list[str]:
    """``--factor a --factor b,c`` -> ["a", "b", "c"]."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _load(path: str, factors: Sequence[str]):
    from .cli_support import read_table

    return read_table(path, factors=_split_names(factors))


# --------------------------------------------------------------------------- the group
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="mixedmodels")
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error (for bug reports).")
def cli(traceback: bool) -> None:
    """Mixed-effects models with lme4's formulas and answers.

    Start with `mixedmodels demo`; fit your own data with
    `mixedmodels fit "y ~ x + (x | group)" --data data.csv`.
    """


# --------------------------------------------------------------------------- demo
@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEMO_DIR),
    show_default=True,
    help="Folder for the pooling and shrinkage pictures.",
)
@click.option("--no-plots", is_flag=True, help="Only print the summary.")
def demo(out: Path, no_plots: bool) -> None:
    """Fit sleepstudy from the bundled data, print the summary, save the pooling pictures."""
    import mixedmodels as mm

    data = mm.datasets.load("sleepstudy")
    click.echo(f">>> m = mm.lmer({DEMO_FORMULA!r}, mm.datasets.load('sleepstudy'))")
    click.echo(">>> print(m.summary())\n")
    click.echo(str(mm.lmer(DEMO_FORMULA, data).summary()))
    if no_plots:
        return
    click.echo("")
    why = _pictures_unavailable()
    if why is not None:
        click.echo(f"pooling pictures skipped: {why}")
        return
    paths = _pooling_pictures(DEMO_FORMULA, data, out / "sleepstudy_pooling.png", out / "sleepstudy_shrinkage.png")
    click.echo("saved the pooling pictures (complete / no / partial pooling, and shrinkage):")
    for path in paths:
        click.echo(f"  {path.resolve()}")


def _pooling_pictures(formula: str, data, pooling_png: Path | None, shrinkage_png: Path | None, cmp=None) -> list[Path]:
    import mixedmodels as mm

    _headless_pyplot()
    cmp = cmp if cmp is not None else mm.compare_pooling(formula, data)
    saved = []
    if pooling_png is not None:
        saved.append(_save_figure(_figure(cmp.plot()), pooling_png))
    if shrinkage_png is not None:
        saved.append(_save_figure(_figure(cmp.plot_shrinkage()), shrinkage_png))
    return saved


def _figure(drawn):
    """A plot function may return a Figure or an Axes; save the Figure."""
    return drawn.get_figure() if hasattr(drawn, "get_figure") and not hasattr(drawn, "savefig") else drawn


# --------------------------------------------------------------------------- explore
@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--no-browser", is_flag=True, help="Do not open a browser window.")
def explore(port: int, no_browser: bool) -> None:
    """Start the shrinkage explorer, an interactive page on partial pooling, on 127.0.0.1."""
    from .explore import serve

    try:
        serve(host="127.0.0.1", port=port, open_browser=not no_browser)
    except ImportError as exc:  # Flask is an optional extra: say how to install it, in one line
        raise click.ClickException(str(exc)) from None


# --------------------------------------------------------------------------- fit
@cli.command()
@click.argument("formula")
@click.option(
    "--data",
    "-d",
    "data_path",
    required=True,
    metavar="FILE",
    help="CSV, TSV or Parquet file ('-' reads CSV from stdin).",
)
@click.option("--family", "-f", metavar="F", help="Fit a GLMM (glmer): binomial, poisson, Gamma, ...")
@click.option("--ml", is_flag=True, help="Maximum likelihood instead of REML (lmer).")
@click.option(
    "--ddf",
    type=click.Choice(["satterthwaite", "kenward-roger"], case_sensitive=False),
    help="Add df and p-values to the fixed effects (lmerTest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every number of the fit as JSON.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.png",
    help="Save a caterpillar plot of the random effects.",
)
@click.option(
    "--factor",
    "factors",
    multiple=True,
    metavar="COL",
    help="Treat a column as a factor (repeat, or give a,b,c). Text columns are factors anyway.",
)
@click.option(
    "--dask",
    "use_dask",
    is_flag=True,
    help="Read Parquet data (a file, folder or glob) with dask and fit without loading it into memory.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --dask: a dask scheduler to run on (tcp://host:8786); default: this machine's cores.",
)
def fit(
    formula: str,
    data_path: str,
    family: str | None,
    ml: bool,
    ddf: str | None,
    as_json: bool,
    plot: Path | None,
    factors: tuple[str, ...],
    use_dask: bool,
    scheduler: str | None,
) -> None:
    """Fit FORMULA (lme4 syntax) to a data file and print the summary."""
    if ddf and family:
        raise CliError("--ddf applies to linear mixed models; a GLMM (--family) reports z tests")
    if ddf:
        _require("mixedmodels.inference.ddf", f"--ddf {ddf} (denominator degrees of freedom)")
    if plot is not None and not _available("matplotlib"):
        raise CliError(f"--plot needs matplotlib ({_PLOT_EXTRA})")
    if use_dask or scheduler:
        _fit_on_dask(formula, data_path, family, ml, ddf, as_json, plot, factors, scheduler)
        return
    data = _load(data_path, factors)
    result = _fit(formula, data, family, ml)
    _report(result, ddf, as_json, plot)


def _fit_on_dask(
    formula: str,
    data_path: str,
    family: str | None,
    ml: bool,
    ddf: str | None,
    as_json: bool,
    plot: Path | None,
    factors: tuple[str, ...],
    scheduler: str | None,
) -> None:
    """``fit --dask``: the data stay in the Parquet files; the passes run on this machine or at ``scheduler``."""
    if not (_available("dask") and _available("distributed")):
        raise CliError("--dask needs dask and distributed: pip install 'mixedmodels[dask]'")
    if factors:
        raise CliError(
            "--factor cannot be used with --dask: store the column as a categorical (dictionary) "
            "column in the Parquet files, or as text"
        )
    if data_path == "-":
        raise CliError("--dask reads Parquet files, not standard input")
    if scheduler is None:
        _report(_fit(formula, data_path, family, ml), ddf, as_json, plot)
        return
    from distributed import Client

    try:
        client = Client(scheduler, timeout="10s")
    except OSError as exc:
        raise CliError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    with client:
        _report(_fit(formula, data_path, family, ml), ddf, as_json, plot)


def _report(result, ddf: str | None, as_json: bool, plot: Path | None) -> None:
    """Print the summary (or JSON) and save the plot of a fit."""
    if as_json:
        from .cli_support import results_to_json

        click.echo(json.dumps(results_to_json(result, ddf=ddf), indent=2))
    else:
        click.echo(_summary_text(result, ddf))
    if plot is not None:
        _plot_fit(result, plot, quiet=as_json)


def _summary_text(result, ddf: str | None) -> str:
    """The summary; with ``ddf``, lmerTest's table is appended if the summary does not show it."""
    if not ddf:
        return str(result.summary())
    text = str(result.summary(ddf=ddf))
    if "Pr(>|t|)" in text:
        return text
    import pandas as pd

    with pd.option_context("display.width", 120, "display.precision", 5):
        table = result.coef_table(ddf=ddf).to_string()
    name = "Satterthwaite's" if ddf == "satterthwaite" else "Kenward-Roger"
    return f"{text}\n\nFixed effects with {name} degrees of freedom (t tests):\n{table}"


def _fit(formula: str, data, family: str | None, ml: bool):
    import mixedmodels as mm

    if family is None:
        return mm.lmer(formula, data, REML=not ml)
    _require("mixedmodels.glmm", "--family (glmer)")
    return mm.glmer(formula, data, family=family)


def _plot_fit(result, path: Path, quiet: bool) -> None:
    _require("mixedmodels.plots", "--plot (mm.plots)")
    import mixedmodels as mm

    if not hasattr(mm.plots, "caterpillar"):
        raise CliError(f"--plot needs mm.plots.caterpillar, not available yet in mixedmodels {__version__}")
    _headless_pyplot()
    saved = _save_figure(_figure(mm.plots.caterpillar(result)), path)
    click.echo(f"saved {saved}", err=quiet)


# --------------------------------------------------------------------------- datasets
@cli.command()
@click.argument("name", required=False)
@click.option("--head", "-n", type=click.IntRange(min=0), metavar="N", help="Print only the first N rows.")
@click.option("--info", is_flag=True, help="Show column types and factor levels instead of the data.")
def datasets(name: str | None, head: int | None, info: bool) -> None:
    """List the bundled data sets, or print one as CSV.

    `mixedmodels datasets sleepstudy > sleep.csv` writes a file to try `fit` on.
    """
    import mixedmodels as mm

    if name is None:
        click.echo(f"{'name':<12} {'rows':>6} {'cols':>4}  columns")
        for n in mm.datasets.list():
            frame = mm.datasets.load(n)
            click.echo(f"{n:<12} {len(frame):>6} {frame.shape[1]:>4}  {', '.join(map(str, frame.columns))}")
        return
    if info:
        for column, spec in mm.datasets.schema(name).items():
            levels = spec.get("levels")
            text = (
                f" ({len(levels)} levels: {', '.join(levels[:8])}{', ...' if len(levels) > 8 else ''})"
                if levels
                else ""
            )
            click.echo(f"{column}: {spec['type']}{' (ordered)' if spec.get('ordered') else ''}{text}")
        return
    frame = mm.datasets.load(name)
    click.echo(frame.head(head).to_csv(index=False) if head is not None else frame.to_csv(index=False), nl=False)


# --------------------------------------------------------------------------- pooling
@cli.command()
@click.argument("formula")
@click.option("--data", "-d", "data_path", required=True, metavar="FILE", help="CSV, TSV or Parquet file.")
@click.option("--factor", "factors", multiple=True, metavar="COL", help="Treat a column as a factor.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.png",
    help="Save the per-group pooling picture.",
)
@click.option(
    "--shrinkage-plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.png",
    help="Save the shrinkage picture.",
)
@click.option(
    "--family",
    "-f",
    metavar="F",
    help="A GLMM (glmer): binomial, poisson, ...; estimates on the link scale, glm fits for no pooling.",
)
def pooling(
    formula: str,
    data_path: str,
    factors: tuple[str, ...],
    plot: Path | None,
    shrinkage_plot: Path | None,
    family: str | None,
) -> None:
    """Complete, no and partial pooling of FORMULA side by side."""
    _require("mixedmodels.pooling", "the pooling comparison (mm.compare_pooling)")
    if (plot or shrinkage_plot) and not _available("matplotlib"):
        raise CliError(f"--plot needs matplotlib ({_PLOT_EXTRA})")
    import mixedmodels as mm
    import pandas as pd

    cmp = mm.compare_pooling(formula, _load(data_path, factors), family=family)
    with pd.option_context("display.max_rows", None, "display.width", 120):
        if cmp.scale is not None:
            click.echo(f"Estimates on the {cmp.scale} scale (the linear predictor of the {family} GLMM)")
        click.echo(cmp.no_pooling_note)
        click.echo(cmp.table.to_string())
        if getattr(cmp, "shrinkage", None) is not None:
            click.echo("\nShrinkage (no pooling -> partial pooling):")
            click.echo(cmp.shrinkage.to_string())
        if not cmp.separation.empty:
            click.echo("\nNo finite no-pooling estimate (separation):")
            click.echo(cmp.separation.to_string())
    if plot or shrinkage_plot:
        for path in _pooling_pictures(formula, None, plot, shrinkage_plot, cmp=cmp):
            click.echo(f"saved {path}")


# --------------------------------------------------------------------------- simulate
@cli.command()
@click.option(
    "--groups",
    "-J",
    "n_groups",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Number of groups (participants).",
)
@click.option(
    "--obs",
    "-n",
    "n_obs",
    default="10",
    show_default=True,
    metavar="N[,N...]",
    help="Trials per group and cell: one number, or one per group.",
)
@click.option("--items", "n_items", type=click.IntRange(min=1), help="Crossed items (stimuli).")
@click.option(
    "--within", multiple=True, metavar="NAME=A,B", help="Within-group condition (levels, or A:-0.5,B:0.5 codes)."
)
@click.option("--between", multiple=True, metavar="NAME=A,B", help="Between-group condition.")
@click.option("--between-items", multiple=True, metavar="NAME=A,B", help="Condition that is a property of the items.")
@click.option(
    "--covariate",
    multiple=True,
    metavar="NAME=SD|0:9|v1,v2",
    help="Continuous predictor: normal with this SD, or trial values.",
)
@click.option(
    "--fixed", multiple=True, metavar="COLUMN=VALUE", help="True coefficient of a design column, e.g. Intercept=800."
)
@click.option(
    "--group-sd", multiple=True, metavar="[COLUMN=]SD", help="SD of a group random effect (a number: intercept)."
)
@click.option(
    "--group-corr", type=float, default=0.0, show_default=True, help="Correlation of the group random effects."
)
@click.option("--item-sd", multiple=True, metavar="[COLUMN=]SD", help="SD of an item random effect.")
@click.option("--item-corr", type=float, default=0.0, show_default=True, help="Correlation of the item random effects.")
@click.option("--sigma", type=float, default=1.0, show_default=True, help="Residual SD.")
@click.option("--outliers", type=click.IntRange(min=0), default=0, show_default=True, help="Number of outlier groups.")
@click.option("--outlier-shift", multiple=True, metavar="COLUMN=VALUE", help="Shift of the outliers' coefficients.")
@click.option("--response", default="y", show_default=True, help="Name of the response column.")
@click.option("--group", default="participant", show_default=True, help="Name of the group column.")
@click.option("--item", default="item", show_default=True, help="Name of the item column.")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed, a whole number >= 0 (same seed, same data).")
@click.option("--out", "-o", default="-", show_default=True, metavar="FILE.csv", help="Output CSV ('-': stdout).")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.json",
    help="Also write the generating parameters as JSON.",
)
def simulate(out: str, truth: Path | None, **options: Any) -> None:
    """Write a data set simulated from a multilevel design as CSV.

    Options naming a design column (--fixed, --group-sd, --item-sd, --outlier-shift)
    can be repeated.  100 participants x 2 conditions x 10 trials, correlated random
    intercepts and slopes:

    \b
      mixedmodels simulate -J 100 -n 10 --within condition=A,B \\
        --fixed Intercept=800 --fixed conditionB=50 \\
        --group-sd 100 --group-sd conditionB=40 --group-corr 0.7 \\
        --sigma 150 --seed 1 --out sim.csv
    """
    import mixedmodels as mm
    from .cli_support import parse_simulate_options, truth_to_json

    frame = mm.simulate_design(**parse_simulate_options(options))
    params = frame.attrs["truth"]
    if truth is not None:
        truth.write_text(json.dumps(truth_to_json(params), indent=2) + "\n")
    if out == "-":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    frame.to_csv(out, index=False)
    click.echo(f"wrote {len(frame)} rows ({', '.join(map(str, frame.columns))}) to {out}")
    click.echo(f"generating model: {params.formula}")
    click.echo(f"fit it with: mixedmodels fit '{params.formula}' --data {out}")


# --------------------------------------------------------------------------- entry point
def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line: 'mixedmodels: warning: boundary (singular) fit ...'."""
    text = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(f"mixedmodels: warning: {text}", err=True)


def _error(message: str) -> None:
    text = " ".join(str(message).split())  # one line
    # text from the user's input may hold undecodable bytes (surrogates): show them escaped, never fail on them
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(f"mixedmodels: error: {text}", err=True)


def _run(args: list[str]) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for library in ("dask", "distributed"):  # their deprecation notices are not the user's business here
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=library)
            warnings.filterwarnings("ignore", category=FutureWarning, module=library)
        warnings.showwarning = _show_warning
        value = cli.main(args=args, prog_name="mixedmodels", standalone_mode=False)
    return value if isinstance(value, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 2
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _error(exc.format_message() + where)
        return 2
    except click.Abort:
        _error("aborted")
        return 1
    except BrokenPipeError:
        sys.stdout = None  # the reader went away (e.g. `| head`): stop quietly
        return 0
    except (click.ClickException, MixedModelsError, OSError) as exc:
        if "--traceback" in args:
            raise
        _error(exc.format_message() if isinstance(exc, click.ClickException) else _describe(exc))
        return 1
    except MemoryError:
        if "--traceback" in args:
            raise
        _error("not enough memory for this model or data set; try a smaller one")
        return 1
    except Exception as exc:  # a bug: one line unless --traceback
        if "--traceback" in args:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and please report it)")
        return 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc)
