"""The real GSE781 cohort run through preprocess (shipped reviewed spec) and fast analysis, once per test
session, for the results loaders, the AnnData fields and the report's results section."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSE781_ROOT = REPO / "tests" / "data" / "genotex_gse781"
SPEC = REPO / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
TRAIT = "Kidney_Clear_Cell_Carcinoma"


@functools.lru_cache(maxsize=1)
def gse781_run() -> Path:
    """OUT of a preprocess + fast analyze of tests/data/genotex_gse781 (in-process cluster, 1 worker)."""
    from distributed import Client, LocalCluster

    from genotex_dask.pipelines.analyze import run_analyze
    from genotex_dask.pipelines.preprocess import run_preprocess

    base = Path(tempfile.mkdtemp(prefix="gse781_run_"))
    specs = base / "specs"
    specs.mkdir()
    shutil.copy(SPEC, specs / SPEC.name)
    out = base / "out"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            Client(lc) as c:
        run_preprocess(str(GSE781_ROOT), str(specs), str(out), c, progress=False)
        run_analyze(str(GSE781_ROOT), str(out), c, mode="fast", progress=False)
    return out
