"""The batch-effect eigen-gap test on the smaller side of the data (issue 14): 20,000 samples no longer build a
20,000 x 20,000 Gram matrix, and results equal the reference's n x n computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genotex_dask.analysis import models

REPO = Path(__file__).resolve().parents[1]


def _reference_batch_test(X: np.ndarray) -> tuple[bool, float, np.ndarray]:
    """The reference's way, written out plainly: all eigenvalues of the n x n centered Gram matrix."""
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    ev = np.linalg.eigvalsh(Xc @ Xc.T)
    top = np.array(sorted(ev, reverse=True)[:10])
    nev = top / top[0]
    gaps = nev[:-1] - nev[1:]
    return bool(np.any(gaps > 200 / n)), float(np.max(gaps)), top


@pytest.mark.parametrize("n,p,batch", [(60, 150, False), (250, 40, True), (400, 6, False), (300, 300, True),
                                       (230, 120, False)])
def test_equals_the_n_by_n_computation(n, p, batch):
    rng = np.random.default_rng(n + p)
    X = rng.normal(size=(n, p))
    if batch:
        X[: n // 3] += 3.0  # a batch shift: one dominant eigenvalue
    fires, gap, top = _reference_batch_test(X)
    got = models.batch_effect_test(X)
    assert got.fires == fires
    assert got.max_gap == pytest.approx(gap, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(models.top_gram_eigenvalues(X - X.mean(axis=0)), top, rtol=1e-9,
                               atol=1e-9 * top[0])
    if n <= p:  # the reference's own matrix: bit for bit
        assert got.max_gap == gap


def test_lanczos_path_equals_dense(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(260, 90))
    X[:80] += 2.0
    Xc = X - X.mean(axis=0)
    wide = np.ascontiguousarray(Xc[:, :80].T)  # 80 x 260: the samples side is the smaller one
    want = {name: np.sort(np.linalg.eigvalsh(A @ A.T))[::-1][:10] for name, A in (("tall", Xc), ("wide", wide))}
    monkeypatch.setattr(models, "DENSE_EIG_MAX", 20)
    for name, A in (("tall", Xc), ("wide", wide)):
        np.testing.assert_allclose(models.top_gram_eigenvalues(A), want[name], rtol=1e-8, err_msg=name)


_BIG = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from genotex_dask.analysis import models
rng = np.random.default_rng(0)
X = rng.normal(size=(20000, 40)).astype(np.float64)
X[:5000] += 1.5
t = time.perf_counter()
b = models.batch_effect_test(X)
secs = time.perf_counter() - t
hwm = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({"fires": b.fires, "gap": b.max_gap, "secs": secs, "peak_mb": int(hwm.split()[1]) / 1024}))
"""


def test_twenty_thousand_samples_fast_and_small():
    res = subprocess.run([sys.executable, "-c", _BIG, str(REPO)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-1500:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["secs"] < 5, out
    assert out["peak_mb"] < 400, out  # the n x n matrix alone would be 3,200 MB
    assert out["fires"] is True  # a 5,000-sample batch shift: the rule can fire (n > 200) and does
