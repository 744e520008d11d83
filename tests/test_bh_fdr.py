"""BH-FDR through scipy equals a straightforward hand statement of Benjamini-Hochberg."""

from __future__ import annotations

import numpy as np
import pytest

from genotex_dask.analysis.models import bh_adjust, significant_genes


def _bh_by_hand(p: list[float]) -> list[float]:
    """q_(i) = min over j >= i of p_(j) * m / j (sorted ascending, 1-based), capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


@pytest.mark.parametrize("seed", range(5))
def test_bh_matches_hand_oracle(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0, 1e-3, 10), [0.02, 0.02, 0.02, 1.0, 0.0]])
    rng.shuffle(p)
    assert bh_adjust(p) == pytest.approx(_bh_by_hand(p.tolist()), rel=1e-12, abs=1e-15)


def test_bh_keeps_nan_out_of_the_family():
    got = bh_adjust(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(got[1]) and got[[0, 2]] == pytest.approx(_bh_by_hand([0.01, 0.04]))
    assert bh_adjust(np.array([])).shape == (0,)


def test_significant_genes_uses_bh():
    sig = significant_genes(["T", "G1", "G2", "G3", "G4"], "T", None, np.ones(4),
                            p_values=np.array([0.001, 0.03, 0.2, 0.012]))
    # by hand: sorted 0.001, 0.012, 0.03, 0.2 -> 0.004, 0.024, 0.04, 0.2
    assert sig["Variable"] == ["G1", "G4", "G2"]
    assert sig["corrected_p_value"] == pytest.approx([0.004, 0.024, 0.04])
