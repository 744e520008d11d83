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
