"""The per-worker cohort cache is bounded by bytes as well as by count (a paused worker cannot evict)."""

import numpy as np
import pandas as pd
import pytest

from genotex_dask import config as gconfig
from genotex_dask.pipelines import analyze


def _linked(path, n, p, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"G{j}" for j in range(p)],
                      index=pd.Index([f"S{i}" for i in range(n)], name="ID"))
    df.insert(0, "Trait", rng.integers(0, 2, n).astype(float))
    df.to_csv(path)
    return str(path)


def test_trim_cache_evicts_lru_beyond_the_byte_budget_but_never_the_running_problems(tmp_path, monkeypatch):
    analyze.clear_cache()
    urls = [_linked(tmp_path / f"c{i}.csv", 40, 300, i) for i in range(3)]
    keys = [(u, "fp", True) for u in urls]
    cohorts = [analyze.cohort(u, "fp", fast=True) for u in urls]
    analyze._fast_parts(cohorts[2], "Trait")
    sizes = [c.nbytes() for c in cohorts]
    # fold designs, standardized copy and gene matrix come on top of the frame
    assert sizes[2] > 5 * sizes[0]
    monkeypatch.setattr(analyze, "_cache_budget", lambda: sizes[2] + sizes[1])
    analyze._trim_cache((keys[2],))
    assert list(analyze._cache) == keys[1:]  # the least recently used one went
    monkeypatch.setattr(analyze, "_cache_budget", lambda: 1)
    analyze._trim_cache((keys[2], keys[1]))
    assert list(analyze._cache) == keys[1:]  # over budget, but both are the running problem's
    analyze._trim_cache((keys[2],))
    assert list(analyze._cache) == keys[2:]
    assert analyze.cache_stats()["evicted_for_memory"] == 2
    analyze.clear_cache()


def test_outside_a_worker_only_the_count_limit_applies():
    assert analyze._cache_budget() is None


def test_cache_memory_setting_is_checked(monkeypatch):
    import dask

    with dask.config.set({"genotex_dask.analyze.cache-memory": 1.5}):
        with pytest.raises(ValueError, match="cache-memory"):
            gconfig.fraction("analyze.cache-memory")
    assert gconfig.fraction("analyze.cache-memory") == 0.4


def test_frame_bytes_equal_pandas_memory_usage():
    idx = pd.Index([f"S{i}" for i in range(7)], name="ID")
    frames = [pd.DataFrame({"a": np.zeros(7), "b": np.arange(7), "c": list("abcdefg"),
                            "d": np.zeros(7, dtype=np.float32)}, index=idx),
              pd.DataFrame(np.ones((5, 300))),
              pd.DataFrame({"e": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
                            "f": pd.Categorical(list("aabbccd"))}, index=idx)]
    for df in frames:
        assert analyze.frame_bytes(df) == int(df.memory_usage(index=True, deep=False).sum())


def test_gene_matrix_is_a_read_only_view_of_a_cached_linked_cohort_and_counted_once(tmp_path):
    """Linked files list trait, Age, Gender, then genes in name order: fast mode's gene matrix is then a slice of
    the cached frame, not a second copy of the cohort; any other layout is copied (and counted) as before."""
    rng = np.random.default_rng(5)
    n, genes = 30, [f"G{j:03d}" for j in range(40)]
    df = pd.DataFrame(rng.normal(size=(n, len(genes))), columns=genes,
                      index=pd.Index([f"S{i}" for i in range(n)], name="ID"))
    df.insert(0, "Gender", rng.integers(0, 2, n).astype(float))
    df.insert(0, "Age", rng.uniform(20, 80, n))
    df.insert(0, "Trait", rng.integers(0, 2, n).astype(float))
    df.to_csv(tmp_path / "sorted.csv")
    analyze.clear_cache()
    try:
        c = analyze.cohort(str(tmp_path / "sorted.csv"), "fp", fast=True)
        parts = analyze._fast_parts(c, "Trait")
        X = parts["X"]
        assert parts["genes"] == genes and parts["X_in_frame"]
        assert np.shares_memory(X, c.df.to_numpy(copy=False)) and not X.flags.writeable
        assert np.array_equal(X, c.df[genes].to_numpy())  # pandas' own column selection: the same values
        with pytest.raises(ValueError):
            X[0, 0] = 1.0  # the cached frame cannot change through the view
        designs = parts["final"].nbytes() + sum(d.nbytes() for d in parts["designs"])
        assert c.nbytes() == c.df_bytes + designs  # the view is not counted twice

        c2 = analyze.cohort(_linked(tmp_path / "unsorted.csv", n, 40, 1), "fp2", fast=True)  # G10 before G2
        p2 = analyze._fast_parts(c2, "Trait")
        assert not p2["X_in_frame"] and not np.shares_memory(p2["X"], c2.df.to_numpy(copy=False))
        assert np.array_equal(p2["X"], c2.df[p2["genes"]].to_numpy())
        assert c2.nbytes() == c2.df_bytes + p2["X"].nbytes + p2["final"].nbytes() + sum(
            d.nbytes() for d in p2["designs"])
    finally:
        analyze.clear_cache()
