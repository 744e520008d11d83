"""Kernels compiled once per environment: the warm-up covers every numba kernel of the package with the types
the engine passes, and concurrent warm-ups into one cache leave a cache a third process only loads from."""

import importlib
import pkgutil
import subprocess
import sys

import numpy as np
import scipy.sparse as sp
from numba.core.dispatcher import Dispatcher

import genotex_dask
from genotex_dask import kernels


def _package_dispatchers() -> dict[str, Dispatcher]:
    found = {}
    for info in pkgutil.walk_packages(genotex_dask.__path__, "genotex_dask."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for attr, value in vars(mod).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == info.name:
                found[f"{info.name}.{attr}"] = value
    return found


def test_warm_up_covers_every_kernel_of_the_package():
    everything = _package_dispatchers()
    assert set(everything) == set(kernels.dispatchers())
    kernels.warm_up()
    # kernels called only from other kernels are compiled into their callers (and loaded with them)
    called = {f"{d.py_func.__module__}.{n}" for d in everything.values() for n in d.py_func.__code__.co_names}
    entry = {name: d for name, d in everything.items() if name not in called}
    assert len(entry) >= 7
    for name, d in entry.items():
        assert d.signatures, f"{name} has no compiled signature after the warm-up"


def test_engine_calls_need_no_signature_beyond_the_warm_up():
    from genotex_dask.analysis import models
    from genotex_dask.pipelines import csv_out
    from genotex_dask.preprocess import mapping

    kernels.warm_up()
    before = {k: list(d.signatures) for k, d in kernels.dispatchers().items()}
    rng = np.random.default_rng(1)
    # the probe operator on a float32 store block and on a float64 one (--float64), both NaN rules
    P = sp.csc_matrix(np.array([[1.0, 0], [0.5, 0.5], [0, 1.0]]))
    N = sp.csc_matrix(np.eye(2))
    for compat in (False, True):
        op = mapping.GeneOperator(symbols=np.array(["A", "B"]), W=sp.csr_matrix(P @ N), P=P, N=N, compat=compat)
        for dtype in (np.float32, np.float64):
            mapping.apply_operator(op, rng.random((3, 3)).astype(dtype))
    csv_out.format_rows(rng.random((2, 3)), ["a", "b"], 6)
    # missing values and the value scale on a linked (float64) matrix, as finalize passes it
    from genotex_dask.preprocess import anndata_fields, quality

    X = rng.random((4, 3))
    X[0, 1] = np.nan
    d = quality.Linked(np.array(list("abcd"), dtype=object), np.array([0.0, 1.0, np.nan, 1.0]), {},
                       np.array(list("xyz"), dtype=object), X)
    quality.handle_missing(d, overwrite_x=True)
    anndata_fields.detect_value_scale(X)
    XT = rng.standard_normal((6, 20))
    models._grid_path(XT, rng.standard_normal(20), np.array([0.5, 0.1, 0.01]))
    # fast mode's designs: on the read-only gene view of a cached cohort (gene_matrix) and on copies of it
    import pandas as pd

    from genotex_dask.analysis import tuning
    from genotex_dask.pipelines.analyze import gene_matrix

    frame = pd.DataFrame(rng.random((12, 5)), columns=["T", "G1", "G2", "G3", "G4"])
    view, shared = gene_matrix(frame, ["G1", "G2", "G3", "G4"])
    assert shared and not view.flags.writeable
    for X in (view, np.ascontiguousarray(view), np.asfortranarray(view)):
        tuning.fold_designs(X)
        tuning.full_design(X)
    after = {k: list(d.signatures) for k, d in kernels.dispatchers().items()}
    assert after == before


def test_concurrent_warm_ups_share_one_cache(tmp_path):
    cache = tmp_path / "numba-cache"
    cmd = [sys.executable, "-m", "genotex_dask.kernels", "--cache-dir", str(cache), "--only", "_lars_kernel"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all("1 compiled" in o or "1 loaded" in o for o in outs), outs
    third = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, timeout=120).stdout
    assert "0 compiled, 1 loaded from cache" in third, third
    assert str(cache) in third
