"""Random-effects terms come in lme4's order (issue 20, item 4).

lme4 1.1-31 keeps the formula's order of the terms when their numbers of
levels never increase along it, and otherwise orders them by decreasing
number of levels with equal counts in *reverse* formula order (its
``rev(order(nl))``).  The reference (tests/reference/make_postfit_checks.R)
fits six formulas to made-up data that Python rebuilds exactly; the order
decides theta's order and lme4's theta names, so both are compared.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.random import lme4_term_order

from conftest import reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _gauge() -> pd.DataFrame:
    raw = pd.DataFrame(reference("postfit_checks")["gauge_data"])
    data = raw.copy()
    for name in ("Part", "Operator", "Machine"):
        data[name] = pd.Categorical(
            raw[name].astype(int).astype(str), categories=[str(v) for v in sorted(raw[name].astype(int).unique())]
        )
    return data


@pytest.mark.parametrize(
    "nlevels, expected",
    [
        ([10, 10], [0, 1]),  # never increasing: formula order
        ([10, 3, 3], [0, 1, 2]),
        ([3, 10], [1, 0]),
        ([10, 10, 100], [2, 1, 0]),  # reordered: equal counts in reverse formula order
        ([10, 3, 10], [2, 0, 1]),
        ([], []),
    ],
)
def test_lme4_term_order(nlevels, expected):
    assert lme4_term_order(nlevels) == expected


CASES = list(reference("postfit_checks")["term_order"])


@pytest.mark.parametrize("case", CASES)
def test_theta_order_and_names_as_lme4(case):
    ref = reference("postfit_checks")["term_order"][case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        fit = mm.lmer(ref["formula"], _gauge())
    assert fit.model.theta_names == ref["theta_names"]
    assert [t.group for t in fit.terms] == ref["cnms_groups"]
    # the REML criterion is flat at the optimum: theta to 1e-3 relative (+ 1e-4 absolute for
    # a variance near 0), the criterion itself to 1e-7 relative
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-3, atol=1e-4)
    assert fit.objective == pytest.approx(ref["REMLcrit"], rel=1e-7)
