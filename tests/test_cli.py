"""The ``mixedmodels`` command, run as a subprocess on files the tests write.

``python -m mixedmodels`` is run with this checkout's ``src`` first on PYTHONPATH (CI
installs the package with ``pip install -e .``, which gives the same code); one test
runs the ``mixedmodels`` console script when it is on PATH.

Numbers printed as JSON are compared with lme4 (tests/reference/shared) with the
tolerances of tests/lmm/test_model.py: fixed effects within 1 % of their SE, SEs, SDs and
sigma within 1 % relative; the log-likelihood within 1e-6 relative.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from conftest import as_list, fitted_lmer, reference

SRC = Path(__file__).resolve().parents[1] / "src"
SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"
CONTRACT = {
    "fixef",
    "se",
    "vcov",
    "theta",
    "sigma",
    "varcorr",
    "ranef",
    "objective",
    "loglik",
    "aic",
    "bic",
    "deviance",
    "nobs",
    "ngroups",
    "is_singular",
    "optinfo",
}
HAS_PLOTS = find_spec("matplotlib") is not None


def run(*args: str, cwd: Path | None = None, stdin: str | None = None, command=None) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        MPLBACKEND="Agg",
        PYTHONWARNINGS="default",
    )
    base = command or [sys.executable, "-m", "mixedmodels"]
    return subprocess.run([*base, *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("mixedmodels: error: ")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sleep.csv"
    mm.datasets.load("sleepstudy").to_csv(path, index=False)
    return path


def assert_close_to_lme4(out: dict, ref: dict) -> None:
    se = np.array(as_list(ref["se"]))
    np.testing.assert_allclose(list(out["fixef"].values()), as_list(ref["fixef"]), atol=0.01 * se.min())
    np.testing.assert_allclose(list(out["se"].values()), se, rtol=0.01)
    np.testing.assert_allclose(out["sigma"], ref["sigma"], rtol=0.01)
    np.testing.assert_allclose(out["loglik"], ref["logLik"], rtol=1e-6)
    assert out["nobs"] == ref["nobs"]


# --------------------------------------------------------------------------- demo and basics
def test_version_and_help():
    proc = run("--version")
    assert proc.returncode == 0 and mm.__version__ in proc.stdout
    proc = run()
    assert "demo" in proc.stdout and "simulate" in proc.stdout


def test_demo_prints_the_summary_first_then_saves_the_pictures(tmp_path):
    proc = run("demo", "--out", str(tmp_path / "pics"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = str(fitted_lmer(SLEEP_FORMULA, "sleepstudy").summary())
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(">>> m = mm.lmer('Reaction ~ Days + (Days | Subject)'")
    assert proc.stdout.index(expected) < 200  # the summary comes first, right after the code line
    if HAS_PLOTS and find_spec("mixedmodels.pooling"):
        for name in ("sleepstudy_pooling.png", "sleepstudy_shrinkage.png"):
            path = tmp_path / "pics" / name
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert str(path.resolve()) in proc.stdout
    else:
        assert "pooling pictures skipped" in proc.stdout


# --------------------------------------------------------------------------- fit
def test_fit_prints_lme4_summary_and_saves_a_plot(sleep_csv, tmp_path):
    args = ["fit", SLEEP_FORMULA, "--data", str(sleep_csv)]
    if HAS_PLOTS:
        args += ["--plot", str(tmp_path / "ranef.png")]
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(fitted_lmer(SLEEP_FORMULA, "sleepstudy").summary()))
    if HAS_PLOTS:
        assert (tmp_path / "ranef.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_json_has_every_number_of_the_contract(sleep_csv):
    proc = run("fit", SLEEP_FORMULA, "--data", str(sleep_csv), "--json", "--ml")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert CONTRACT <= set(out)
    ref = reference("shared/sleepstudy_slope_ml")
    assert out["REML"] is False
    assert_close_to_lme4(out, ref)
    assert out["ngroups"] == {"Subject": 18} and out["is_singular"] is False
    assert set(out["ranef"]["Subject"]) == {str(s) for s in as_list(ref["ranef"]["Subject"]["levels"])}
    assert out["vcov"]["Days"]["(Intercept)"] == out["vcov"]["(Intercept)"]["Days"]
    assert len(out["varcorr"]) == 4 and out["optinfo"]["converged"] is True
    np.testing.assert_allclose(out["deviance"], ref["deviance"], rtol=1e-6)


def test_fit_ddf_satterthwaite(sleep_csv):
    pytest.importorskip("mixedmodels.inference.ddf")
    proc = run("fit", SLEEP_FORMULA, "--data", str(sleep_csv), "--ddf", "satterthwaite", "--json")
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)["coef_table"]
    ref = reference("shared/sleepstudy_slope_reml")
    np.testing.assert_allclose([table[k]["df"] for k in ("(Intercept)", "Days")], ref["satterthwaite_df"], rtol=1e-3)
    np.testing.assert_allclose(
        [table[k]["Pr(>|t|)"] for k in ("(Intercept)", "Days")], ref["satterthwaite_p"], rtol=0.01
    )


def test_ddf_text_shows_p_values():
    """In-process: the printed summary with --ddf always carries lmerTest's p-values."""
    pytest.importorskip("mixedmodels.inference.ddf")
    from mixedmodels.cli import _summary_text

    text = _summary_text(fitted_lmer(SLEEP_FORMULA, "sleepstudy"), "satterthwaite")
    assert "Pr(>|t|)" in text and "Linear mixed model fit by REML" in text


def test_fit_tsv_text_factors_and_forced_factor(tmp_path):
    data = mm.datasets.load("sleepstudy")
    data["Subject"] = "S" + data["Subject"].astype(str)  # a text column: inferred as a factor
    path = tmp_path / "sleep.tsv"
    data.to_csv(path, sep="\t", index=False)
    proc = run("fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path), "--factor", "Days", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out["fixef"]) == ["(Intercept)"] + [f"Days{d}" for d in range(1, 10)]
    assert list(out["ranef"]["Subject"])[0] == "S308"
    assert_close_to_lme4(out, reference("sleepstudy_dayf"))


def test_fit_reads_csv_from_stdin(sleep_csv):
    proc = run("fit", "Reaction ~ Days + (1 | Subject)", "--data", "-", "--json", stdin=sleep_csv.read_text())
    assert proc.returncode == 0, proc.stderr
    assert_close_to_lme4(json.loads(proc.stdout), reference("shared/sleepstudy_intercept"))


def test_fit_binomial_glmm(tmp_path):
    pytest.importorskip("mixedmodels.glmm")
    path = tmp_path / "cbpp.csv"
    mm.datasets.load("cbpp").to_csv(path, index=False)
    proc = run(
        "fit",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "--data",
        str(path),
        "--family",
        "binomial",
        "--factor",
        "period",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["family"] == "binomial" and CONTRACT <= set(out)
    ref = reference("shared/cbpp_binomial")
    np.testing.assert_allclose(list(out["fixef"].values()), ref["fixef"], atol=0.01 * min(ref["se"]))
    # the rest is the in-process glmer fit, number for number (its accuracy is tested with glmer)
    cbpp = mm.datasets.load("cbpp")
    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    np.testing.assert_allclose(list(out["se"].values()), fit.se.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose([out["loglik"], out["deviance"]], [fit.loglik, fit.deviance], rtol=1e-10)
    np.testing.assert_allclose(out["theta"], fit.theta, rtol=1e-8)


def test_parquet_needs_pyarrow(tmp_path, sleep_csv):
    path = tmp_path / "sleep.parquet"
    if find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")
        proc = run("fit", SLEEP_FORMULA, "--data", str(path))
        assert_one_line_error(proc, 1, "pip install pyarrow")
    else:
        mm.datasets.load("sleepstudy").to_parquet(path)
        proc = run("fit", SLEEP_FORMULA, "--data", str(path), "--json")
        assert_close_to_lme4(json.loads(proc.stdout), reference("shared/sleepstudy_slope_reml"))


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["fit", "Reaction ~ Dayz + (Days | Subject)", "--data", "{csv}"], 1, ["'Dayz'", "did you mean 'Days'"]),
        (["fit", "Reaction ~ Days + (Days | Subject", "--data", "{csv}"], 1, ["never closed"]),
        (["fit", SLEEP_FORMULA, "--data", "{dir}/missing.csv"], 1, ["not found", "missing.csv"]),
        (["fit", SLEEP_FORMULA, "--data", "{dir}/sleep.xlsx"], 1, [".csv, .tsv or .parquet"]),
        (["fit", SLEEP_FORMULA], 2, ["Missing option '--data'"]),
        (["fit", SLEEP_FORMULA, "--data", "{csv}", "--factor", "Dayz"], 1, ["--factor 'Dayz'"]),
        (["fit", SLEEP_FORMULA, "--data", "{csv}", "--family", "binomal"], 1, ["binomal"]),
        (["simulate", "--fixed", "x"], 2, ["NAME=VALUE"]),
        (["datasets", "nope"], 1, ["no bundled data set named 'nope'"]),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args, code, fragments, sleep_csv, tmp_path):
    (tmp_path / "sleep.xlsx").write_text("not really")
    args = [a.format(csv=sleep_csv, dir=tmp_path) for a in args]
    assert_one_line_error(run(*args), code, *fragments)


# --------------------------------------------------------------------------- datasets, pooling, simulate
def test_datasets_list_and_print():
    listing = run("datasets")
    assert listing.returncode == 0
    assert any(line.split()[:3] == ["sleepstudy", "180", "3"] for line in listing.stdout.splitlines())
    head = run("datasets", "sleepstudy", "--head", "2")
    assert head.stdout.splitlines() == ["Reaction,Days,Subject", "249.56,0.0,308", "258.7047,1.0,308"]


def test_pooling_command(sleep_csv, tmp_path):
    pytest.importorskip("mixedmodels.pooling")
    args = ["pooling", SLEEP_FORMULA, "--data", str(sleep_csv)]
    if HAS_PLOTS:  # the per-group picture is drawn by the demo test
        args += ["--shrinkage-plot", str(tmp_path / "shrink.png")]
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "complete" in proc.stdout and "partial" in proc.stdout and "Shrinkage" in proc.stdout
    assert "244.19" in proc.stdout  # subject 308's no-pooling intercept, as in lme4's documentation
    if HAS_PLOTS:
        assert (tmp_path / "shrink.png").read_bytes()[:4] == b"\x89PNG"


def test_simulate_writes_the_design_as_csv(tmp_path):
    args = [
        "simulate",
        "--groups",
        "100",
        "--obs",
        "10",
        "--within",
        "condition=A,B",
        "--fixed",
        "Intercept=800",
        "--fixed",
        "conditionB=50",
        "--group-sd",
        "100",
        "--group-sd",
        "conditionB=60",
        "--group-corr",
        "0.7",
        "--sigma",
        "50",
        "--seed",
        "1",
    ]
    proc = run(*args, "--out", str(tmp_path / "sim.csv"), "--truth", str(tmp_path / "truth.json"))
    assert proc.returncode == 0, proc.stderr
    assert "y ~ condition + (1 + condition | participant)" in proc.stdout
    expected = mm.simulate_design(
        100,
        10,
        within={"condition": ["A", "B"]},
        fixed={"(Intercept)": 800.0, "conditionB": 50.0},
        group_sd={"(Intercept)": 100.0, "conditionB": 60.0},
        group_corr=0.7,
        sigma=50.0,
        seed=1,
    )
    assert (tmp_path / "sim.csv").read_text() == expected.to_csv(index=False)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["fixef"] == {"(Intercept)": 800.0, "conditionB": 50.0}
    assert truth["group_cov"]["conditionB"]["(Intercept)"] == pytest.approx(0.7 * 100 * 60)


def test_console_script():
    script = shutil.which("mixedmodels")
    if script is None:
        pytest.skip("the mixedmodels console script is not installed (pip install -e .)")
    proc = run("--version", command=[script])
    assert proc.returncode == 0 and mm.__version__ in proc.stdout


# --------------------------------------------------------------------------- optional parts missing (in-process)
def _without(monkeypatch, *modules: str) -> None:
    import mixedmodels.cli as cli

    real = cli._available
    monkeypatch.setattr(cli, "_available", lambda name: name not in modules and real(name))


def test_demo_without_matplotlib_skips_the_pictures_with_a_note(monkeypatch, capsys, tmp_path):
    from mixedmodels.cli import main

    _without(monkeypatch, "matplotlib")
    assert main(["demo", "--out", str(tmp_path / "pics")]) == 0
    out = capsys.readouterr().out
    assert "REML criterion at convergence: 1743.6" in out
    assert "pooling pictures skipped: matplotlib is not installed (pip install 'mixedmodels[plot]')" in out
    assert not (tmp_path / "pics").exists()


@pytest.mark.parametrize(
    ("missing", "args", "fragment"),
    [
        ("mixedmodels.glmm", ["--family", "binomial"], "--family (glmer) is not available yet"),
        ("mixedmodels.inference.ddf", ["--ddf", "satterthwaite"], "--ddf satterthwaite"),
        ("matplotlib", ["--plot", "x.png"], "--plot needs matplotlib"),
    ],
)
def test_parts_not_available_give_a_clear_error(missing, args, fragment, monkeypatch, capsys, sleep_csv):
    from mixedmodels.cli import main

    _without(monkeypatch, missing)
    assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(sleep_csv), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixedmodels: error: ") and fragment in err and "\n" not in err


def test_explore_command_is_listed_with_its_options():
    from mixedmodels.cli import main
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["explore", "--help"]) == 0
    assert "--port" in out.getvalue() and "--no-browser" in out.getvalue()


# --- fit --dask ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sleep_parquet(tmp_path_factory) -> Path:
    dd = pytest.importorskip("dask.dataframe")
    import dask

    folder = tmp_path_factory.mktemp("parquet") / "sleep"
    with dask.config.set(scheduler="sync"):
        dd.from_pandas(mm.datasets.load("sleepstudy"), npartitions=3).to_parquet(folder)
    return folder


def test_fit_dask_reads_parquet_with_dask_and_gives_the_in_memory_numbers(sleep_parquet):
    proc = run("fit", SLEEP_FORMULA, "--data", str(sleep_parquet / "*.parquet"), "--dask", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    memory = fitted_lmer(SLEEP_FORMULA, "sleepstudy")
    assert out["class"] == "DaskLmerResults" and out["nobs"] == 180
    assert out["objective"] == pytest.approx(memory.objective, rel=1e-10)


# in-process (one command run as a subprocess above is enough): a folder, --ddf, mistakes
def test_fit_dask_reads_a_folder_and_prints_satterthwaites_summary(sleep_parquet, capsys):
    from mixedmodels.cli import main

    assert main(["fit", SLEEP_FORMULA, "--data", str(sleep_parquet), "--dask", "--ddf", "satterthwaite"]) == 0
    out, err = capsys.readouterr()
    assert "Satterthwaite" in out and "warning" not in err.lower(), err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--data", "{folder}/missing/*.parquet", "--dask"], "no Parquet data found"),
        (["--data", "{folder}", "--dask", "--factor", "Days"], "--factor cannot be used with --dask"),
    ],
)
def test_fit_dask_bad_input_gives_one_line(args, fragment, sleep_parquet, capsys):
    from mixedmodels.cli import main

    args = [a.replace("{folder}", str(sleep_parquet)) for a in args]
    assert main(["fit", SLEEP_FORMULA, *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixedmodels: error: ") and fragment in err and "\n" not in err, err
