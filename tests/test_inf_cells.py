"""±inf cells are missing values from ingest on (issue 14): a run over a corpus with inf cells gives exactly the
outputs of the same corpus with those cells written as ``null``, records the count in the cohort's store uns
and the ingest summary, and no problem fails."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genotex_dask import api
from genotex_dask.io import store
from genotex_dask.pipelines.ingest import infinite_as_missing


def _poison(root: Path, word: str) -> int:
    """Replace three value cells per GEO matrix (rows 2-4 of the table, column 2) by ``word``."""
    n = 0
    for m in sorted(root.glob("input/GEO/*/*/*matrix*")):
        lines = gzip.decompress(m.read_bytes()).decode().split("\n")
        begin = lines.index("!series_matrix_table_begin")
        for k, w in zip(range(begin + 2, begin + 5), (word, "-" + word if word != "null" else word, word)):
            cells = lines[k].split("\t")
            cells[2] = w
            lines[k] = "\t".join(cells)
            n += 1
        m.write_bytes(gzip.compress("\n".join(lines).encode()))
    return n


def test_infinite_as_missing_unit():
    X = np.array([[1.0, np.inf], [-np.inf, 4e39], [np.nan, 2.0]])
    Y, counts = infinite_as_missing(X.copy())
    assert counts == {"inf": 2, "beyond_float32": 1}
    assert np.isnan(Y[[0, 1, 1, 2], [1, 0, 1, 0]]).all() and Y[0, 0] == 1 and Y[2, 1] == 2
    Z, c64 = infinite_as_missing(X.copy(), float64=True)
    assert c64 == {"inf": 2} and Z[1, 1] == 4e39
    ro = X.copy()
    ro.flags.writeable = False
    assert infinite_as_missing(ro)[1]["inf"] == 2


def test_inf_cells_run_like_missing_cells(tmp_path, client):
    from genotex_dask.synth.corpus import write_corpus

    base = tmp_path / "base"
    write_corpus(str(base), traits=1, cohorts_per_trait=2, samples=30, probes=200, platforms=1, seed=5)
    roots = {w: tmp_path / f"root_{w}" for w in ("inf", "null")}
    for w, r in roots.items():
        shutil.copytree(base, r)
        assert _poison(r, "Infinity" if w == "inf" else "null") > 0
    sums = {w: api.run(str(r), str(tmp_path / f"out_{w}"), client=client, progress=False)
            for w, r in roots.items()}
    s = sums["inf"]
    recorded = {k: v.get("infinite_as_missing") for k, v in s["ingest"]["cohorts"].items() if v.get("kind") == "GEO"}
    assert recorded and all(v == {"inf": 3} for v in recorded.values()), recorded
    some = next(v["store"] for v in s["ingest"]["cohorts"].values() if v.get("kind") == "GEO")
    assert store.CohortMeta(some).uns["ingest"]["infinite_as_missing"] == {"inf": 3}
    assert s["analyze"]["failed"] == 0 and s["analyze"]["written"] == sums["null"]["analyze"]["written"] > 0
    out_inf, out_null = tmp_path / "out_inf", tmp_path / "out_null"
    files = sorted(p.relative_to(out_null) for p in out_null.glob("preprocess/*/*.csv"))
    files += sorted(p.relative_to(out_null) for p in out_null.glob("regress/*/significant_genes_*.json"))
    assert len(files) > 2
    for rel in files:
        a, b = (out_inf / rel).read_text(), (out_null / rel).read_text()
        if rel.suffix == ".json":
            a, b = json.loads(a)["significant_genes"], json.loads(b)["significant_genes"]
        assert a == b, rel


@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_infinite_as_missing_any_memory_order_equals_plain_masks(order):
    """Block-wise in memory order (ingest hands a transposed matrix) equals whole-matrix masks."""
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (300, 700))
    flat = base.reshape(-1)
    for k, v in zip(rng.choice(flat.size, 40, replace=False), [np.inf, -np.inf, 1e39, -1e300, np.nan] * 8):
        flat[k] = v
    for f64 in (False, True):
        X = {"C": base.copy(), "F": np.asfortranarray(base), "strided": base.copy()[:, ::2]}[order]
        want = X.copy()
        mask = np.isinf(want) | (False if f64 else np.abs(np.nan_to_num(want, nan=0.0)) > np.finfo(np.float32).max)
        want[mask] = np.nan
        got, counts = infinite_as_missing(X, float64=f64)
        np.testing.assert_array_equal(got, want)
        assert sum(counts.values()) == int(mask.sum())
