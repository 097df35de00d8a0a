"""The shrinkage explorer's model and JSON API (mixedmodels.explore).

Numbers are checked three ways: against a direct ``mm.lmer`` fit of the same
simulated data, against lme4's fit of stored explorer data sets
(``tests/reference/explore_<case>.json`` from ``make_explore.R``), and against
the textbook identities (lambda_j, the BLUP as a lambda-weighted mean, MSE).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, reference
from mixedmodels.errors import MixedModelsError, ModelSpecError, SingularFitWarning
from mixedmodels.explore import ExploreParams, parse_params, simulate_clusters
from mixedmodels.explore.core import FORMULA, summarise_clusters

flask = pytest.importorskip("flask", reason="the explorer's server needs Flask (pip install 'mixedmodels[explore]')")

from mixedmodels.explore import create_app, start_server  # noqa: E402
from mixedmodels.explore.server import STATIC_DIR  # noqa: E402

REFERENCE_DIR = Path(__file__).parents[1] / "reference"
EXACT = dict(rtol=1e-10, atol=1e-12)  # same data, same code path: equal up to rounding
LME4 = dict(rtol=2e-5, atol=2e-6)  # our optimum vs lme4's (lme4 prints 4-5 significant digits)


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


@pytest.fixture(scope="module")
def default_payload(client):
    response = client.get("/api/simulate")
    assert response.status_code == 200
    return response.get_json()


def _frame(payload: dict) -> pd.DataFrame:
    return pd.DataFrame(payload["clusters"]).set_index("cluster")


# --------------------------------------------------------------------------- values
def test_default_payload_matches_a_direct_lmer_fit(default_payload):
    params = ExploreParams()
    assert default_payload["params"] == {"J": 16, "nbar": 8, "sigma_u": 1.5, "sigma_e": 2.0, "seed": 48}
    data = simulate_clusters(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularFitWarning)  # the default data are not singular
        m = mm.lmer(FORMULA, data, REML=True)
    got = _frame(default_payload)
    assert list(got.index) == list(data["cluster"].cat.categories)
    np.testing.assert_allclose(got["partial"], m.coef()["cluster"]["(Intercept)"].loc[got.index], **EXACT)
    np.testing.assert_allclose(
        got["no_pool"], data.groupby("cluster", observed=True)["y"].mean().loc[got.index], **EXACT
    )
    np.testing.assert_array_equal(got["n"], data.groupby("cluster", observed=True).size().loc[got.index])
    np.testing.assert_allclose(got["true_mean"], data.attrs["true_means"].loc[got.index], **EXACT)
    vc = m.varcorr.set_index("grp")["sdcor"]
    np.testing.assert_allclose(default_payload["fit"]["sigma_u"], vc["cluster"], **EXACT)
    np.testing.assert_allclose(default_payload["fit"]["sigma_e"], m.sigma, **EXACT)
    np.testing.assert_allclose(default_payload["mu_hat"], m.fixef["(Intercept)"], **EXACT)
    np.testing.assert_allclose(default_payload["grand_mean"], data["y"].mean(), **EXACT)
    assert default_payload["fit"]["nobs"] == len(data) == got["n"].sum()
    assert default_payload["fit"]["singular"] is False and default_payload["fit"]["warnings"] == []
    assert default_payload["fit"]["REML"] is True and default_payload["formula"] == FORMULA


def test_lambda_and_blup_identity(default_payload):
    """lambda_j = s_u^2 / (s_u^2 + s_e^2 / n_j) and partial_j = lambda_j ybar_j + (1 - lambda_j) mu_hat."""
    got = _frame(default_payload)
    su2, se2 = default_payload["fit"]["sigma_u"] ** 2, default_payload["fit"]["sigma_e"] ** 2
    lam = su2 / (su2 + se2 / got["n"])
    np.testing.assert_allclose(got["lambda"], lam, **EXACT)
    assert np.all((got["lambda"] > 0) & (got["lambda"] < 1))
    blup = got["lambda"] * got["no_pool"] + (1 - got["lambda"]) * default_payload["mu_hat"]
    np.testing.assert_allclose(got["partial"], blup, rtol=1e-9, atol=1e-10)
    # bigger clusters are trusted more: lambda increases with n_j
    order = np.argsort(got["n"].to_numpy(), kind="stable")
    assert np.all(np.diff(got["lambda"].to_numpy()[order]) >= 0)


def test_mse_of_each_approach(default_payload):
    got = _frame(default_payload)
    truth = got["true_mean"]
    mse = default_payload["mse"]
    np.testing.assert_allclose(mse["complete"], np.mean((default_payload["grand_mean"] - truth) ** 2), **EXACT)
    np.testing.assert_allclose(mse["no"], np.mean((got["no_pool"] - truth) ** 2), **EXACT)
    np.testing.assert_allclose(mse["partial"], np.mean((got["partial"] - truth) ** 2), **EXACT)
    # the default seed shows the classic result: partial pooling has the lowest MSE
    assert mse["partial"] < min(mse["no"], mse["complete"])


@pytest.mark.parametrize(
    "case, settings",
    [
        ("default", {}),
        ("singular", {"sigma_u": 0.2}),
        ("nbar3", {"nbar": 3}),
    ],
)
def test_stored_explorer_data_against_lme4(case, settings):
    """lme4's fit of data sets the explorer simulated (stored as CSV beside the reference)."""
    ref = reference(f"explore_{case}")
    data = pd.read_csv(REFERENCE_DIR / f"explore_{case}_data.csv", dtype={"cluster": str})
    data["cluster"] = pd.Categorical(data["cluster"], categories=as_list(ref["cluster"]))
    truth = pd.Series(0.0, index=as_list(ref["cluster"]))  # truth does not enter the fit
    out = summarise_clusters(data, truth)
    got = pd.DataFrame(out["clusters"]).set_index("cluster")
    np.testing.assert_array_equal(got["n"], as_list(ref["n"]))
    np.testing.assert_allclose(got["no_pool"], as_list(ref["ybar"]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out["grand_mean"], ref["grand_mean"], rtol=1e-12)
    np.testing.assert_allclose(out["mu_hat"], ref["fixef"], **LME4)
    np.testing.assert_allclose(out["fit"]["sigma_e"], ref["sigma"], **LME4)
    np.testing.assert_allclose(out["fit"]["sigma_u"] ** 2, ref["var_cluster"], **LME4)
    np.testing.assert_allclose(got["partial"], as_list(ref["coef"]), **LME4)
    assert out["fit"]["singular"] is bool(ref["singular"])
    # the stored data are still what the explorer simulates for these settings
    again = simulate_clusters(ExploreParams(**settings))
    np.testing.assert_allclose(again["y"], data["y"], rtol=1e-15)


def test_singular_fit_collapses_partial_onto_grand_mean(client):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularFitWarning)  # recorded in the payload, not raised
        payload = client.get("/api/simulate?sigma_u=0").get_json()
    got = _frame(payload)
    # on the boundary: theta is 0 or within the optimizer's tolerance of it (lme4 alike)
    assert payload["fit"]["singular"] is True and payload["fit"]["sigma_u"] < 1e-4
    assert any(w.startswith("SingularFitWarning") for w in payload["fit"]["warnings"])
    assert got["lambda"].max() < 1e-8
    np.testing.assert_allclose(got["partial"], payload["grand_mean"], atol=1e-7)
    np.testing.assert_allclose(payload["mu_hat"], payload["grand_mean"], atol=1e-7)
    np.testing.assert_array_equal(got["true_mean"], 0.0)
    assert payload["mse"]["partial"] == pytest.approx(payload["mse"]["complete"], rel=1e-9)


def test_sigma_u_slider_moves_partial_between_grand_mean_and_no_pool(client):
    """sigma_u = 0.2: partial estimates on the grand mean; sigma_u = 5: close to no pooling."""
    small = client.get("/api/simulate?sigma_u=0.2").get_json()
    big = client.get("/api/simulate?sigma_u=5").get_json()
    s, b = _frame(small), _frame(big)
    spread_s = np.mean(np.abs(s["no_pool"] - small["grand_mean"]))
    assert np.max(np.abs(s["partial"] - small["grand_mean"])) < 0.05 * spread_s
    spread_b = np.mean(np.abs(b["no_pool"] - big["grand_mean"]))
    assert np.mean(np.abs(b["partial"] - b["no_pool"])) < 0.15 * spread_b
    assert b["lambda"].median() > 0.9
    assert big["mse"]["complete"] > 5 * big["mse"]["partial"]
    # one seed, one set of standard-normal draws: true means scale with sigma_u, residuals do not change
    np.testing.assert_allclose(b["true_mean"] * 0.2, s["true_mean"] * 5, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b["no_pool"] - b["true_mean"], s["no_pool"] - s["true_mean"], rtol=1e-9, atol=1e-12)


def test_small_clusters_shrink_hard(client):
    payload = client.get("/api/simulate?nbar=3").get_json()
    got = _frame(payload)
    assert got["n"].between(1, 5).all() and payload["fit"]["nobs"] == got["n"].sum()
    assert got["lambda"].median() < 0.5


def test_cluster_sizes_vary_around_nbar(client):
    payload = client.get("/api/simulate?J=100&nbar=20&seed=3").get_json()
    n = _frame(payload)["n"]
    assert len(n) == 100 and n.min() >= 1 and n.max() <= 39
    assert n.std() > 5 and abs(n.mean() - 20) < 3  # uniform on 1..39: mean 20, sd 11.3; J = 100


def test_nbar_one_gets_one_second_observation(client):
    payload = client.get("/api/simulate?J=5&nbar=1").get_json()
    n = _frame(payload)["n"]
    assert list(n) == [2, 1, 1, 1, 1]
    assert payload["notes"] and "second observation" in payload["notes"][0]


def test_same_query_same_answer_new_seed_new_data(client):
    first = client.get("/api/simulate?seed=7").get_data()
    assert client.get("/api/simulate?seed=7").get_data() == first
    assert client.get("/api/simulate?seed=8").get_data() != first


def test_payload_is_strict_json(client):
    text = client.get("/api/simulate?J=2&nbar=1&sigma_u=0").get_data(as_text=True)
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "query, names",
    [
        ("J=1", "J (number of clusters)"),
        ("J=101", "J (number of clusters)"),
        ("J=abc", "J (number of clusters)"),
        ("J=2.5", "J (number of clusters)"),
        ("J=", "J (number of clusters)"),
        ("nbar=0", "nbar (mean cluster size)"),
        ("nbar=1e9", "nbar (mean cluster size)"),
        ("sigma_u=-0.1", "sigma_u (between-cluster SD)"),
        ("sigma_u=nan", "sigma_u (between-cluster SD)"),
        ("sigma_u=inf", "sigma_u (between-cluster SD)"),
        ("sigma_u=10.5", "sigma_u (between-cluster SD)"),
        ("sigma_e=0", "sigma_e (within-cluster SD)"),
        ("sigma_e=0.05", "sigma_e (within-cluster SD)"),
        ("seed=-1", "seed"),
        ("seed=1.5", "seed"),
        ("seed=4294967296", "seed"),
        ("sigma=1", "unknown parameter 'sigma'"),
    ],
)
def test_bad_query_values_give_400_with_a_message(client, query, names):
    response = client.get(f"/api/simulate?{query}")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert names in message
    assert "unknown" in message or "between" in message  # says what is allowed


def test_parse_params_and_explore_params():
    assert parse_params({"J": "20", "sigma_u": " 0.5 ", "seed": "3.0"}) == ExploreParams(J=20, sigma_u=0.5, seed=3)
    assert isinstance(ExploreParams(J=20.0).J, int)
    with pytest.raises(ModelSpecError, match="J .* whole number between 2 and 100"):
        ExploreParams(J=1)
    with pytest.raises(ModelSpecError, match="sigma_e"):
        ExploreParams(sigma_e="2")
    with pytest.raises(ModelSpecError, match="J"):
        ExploreParams(J=True)


# --------------------------------------------------------------------------- the page and the server
def test_page_and_vendored_chart_library_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'src="/static/vendor/chart.umd.min.js"' in html and 'id="mse-table"' in html
    assert "http://" not in html and "https://" not in html  # nothing from the network
    chart = client.get("/static/vendor/chart.umd.min.js")
    assert chart.status_code == 200 and b"Chart.js v4" in chart.get_data()[:200]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert (STATIC_DIR / "vendor" / "chart.js.LICENSE.md").read_text().startswith("The MIT License")
    for name in ("explorer.js", "explorer.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_only_loopback_host_names_are_answered(client):
    assert client.get("/api/simulate?J=2", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/api/simulate?J=2", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    refused = client.get("/api/simulate", headers={"Host": "attacker.example:8765"})
    assert refused.status_code == 403 and "127.0.0.1" in refused.get_json()["error"]


def test_unknown_path_is_404_json(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "no such page" in response.get_json()["error"]


def test_start_server_on_a_free_port_and_refuse_a_taken_one():
    server = start_server(port=0)
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        with urllib.request.urlopen(server.url + "api/simulate?J=3&nbar=2", timeout=30) as response:
            payload = json.load(response)
        assert len(payload["clusters"]) == 3
        with pytest.raises(MixedModelsError, match="choose another port with --port"):
            start_server(port=server.port)
    finally:
        server.shutdown()


def test_server_never_listens_on_the_network():
    with pytest.raises(MixedModelsError, match="listens only on this machine"):
        start_server(host="0.0.0.0")


def test_importing_the_explorer_does_not_import_flask():
    code = "import sys, mixedmodels, mixedmodels.explore; assert 'flask' not in sys.modules; assert 'werkzeug' not in sys.modules"
    src = str(Path(mm.__file__).parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": src, "PATH": ""})


def test_serve_prints_its_address_and_stops_on_ctrl_c():
    """What ``mixedmodels explore --no-browser`` runs: serve() in the foreground until SIGINT."""
    import signal

    src = str(Path(mm.__file__).parents[1])
    # A test run started in the background by a non-interactive shell (as CI
    # scripts may be) inherits SIGINT ignored, and so would this child: give
    # it the handler an interactive terminal gives Python.
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from mixedmodels.explore import serve; serve(port=0, open_browser=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": src, "PATH": ""},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Shrinkage explorer running at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "api/simulate?J=2&nbar=2", timeout=30) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in proc.stderr.read()
