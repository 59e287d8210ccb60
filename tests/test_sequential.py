"""Lan-DeMets O'Brien-Fleming-type boundaries against the published reference values
(../shared/reports.md; e.g. Jennison & Turnbull 2000, gsDesign/ldbounds output)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.sequential import compute_obf_boundaries, compute_obf_spending, summarize_sequential


@pytest.mark.parametrize("fractions, expected", [
    ([0.25, 0.5, 0.75, 1.0], [4.333, 2.963, 2.359, 2.014]),
    ([1 / 3, 2 / 3, 1.0], [3.710, 2.511, 1.993]),
])
def test_reference_boundaries(fractions, expected):
    b = compute_obf_boundaries(fractions, alpha=0.025)
    np.testing.assert_allclose(b["boundary_z"], expected, atol=0.002)


def test_spending_function_formula():
    # alpha(t) = 2 - 2 Phi(z_{1 - 0.0125} / sqrt(t)); alpha(1) = 0.025 exactly
    assert compute_obf_spending([1.0])[0] == pytest.approx(0.025)
    assert compute_obf_spending([0.25])[0] == pytest.approx(2 - 2 * stats.norm.cdf(2.241403 / 0.5), rel=1e-5)
    b = compute_obf_boundaries([0.5, 1.0])
    assert b["alpha_spent"].sum() == pytest.approx(0.025)
    # a single look at t = 1 is the fixed-sample test
    assert compute_obf_boundaries([1.0])["boundary_z"].iloc[0] == pytest.approx(1.959964, abs=1e-5)


def test_summarize_flags_crossing():
    looks = pd.DataFrame({"information_fraction": [0.5, 1.0], "observed_z": [3.1, 1.5]})
    out = summarize_sequential(looks)
    assert out["crossed"].tolist() == [True, False]


def test_invalid_fractions():
    with pytest.raises(ValueError):
        compute_obf_boundaries([0.5, 0.4])
