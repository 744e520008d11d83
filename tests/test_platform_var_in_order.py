"""A platform table listing the matrix's probes in order is encoded without a gather, to the same objects as the
same rows shuffled (which take the gather path)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from genotex_dask.io import store


def test_in_order_table_skips_the_gather_with_the_same_objects(monkeypatch):
    rng = np.random.default_rng(3)
    n = 5000
    probes = np.array([f"p{i}" for i in range(n)], dtype=object)
    gene = [None if rng.random() < 0.1 else f"G{rng.integers(0, 300)} /// X{i}" for i in range(n)]
    desc = ["" if rng.random() < 0.2 else "d" * int(rng.integers(1, 40)) for _ in range(n)]
    table = pa.table({"ID": list(probes), "Gene Symbol": gene, "Description": desc})
    perm = rng.permutation(n)
    shuffled = table.take(pa.array(perm))
    expected = store.encode_platform_var(shuffled, probes, "ID")
    real_take = pc.take
    calls = []
    monkeypatch.setattr(pc, "take", lambda *a, **k: calls.append(1) or real_take(*a, **k))
    got = store.encode_platform_var(table, probes, "ID")
    assert calls == []  # no gather for the in-order table
    assert got[0].keys() == expected[0].keys() and all(got[0][k] == expected[0][k] for k in got[0])
    assert got[1:] == expected[1:] == ({}, n)
    # one probe out of place: the gather again
    swapped = probes.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    store.encode_platform_var(table, swapped, "ID")
    assert calls


@pytest.mark.parametrize("extra_rows", [1, 0])
def test_a_table_with_more_rows_than_probes_is_gathered(extra_rows, monkeypatch):
    probes = np.array(["a", "b"], dtype=object)
    ids = ["a", "b"] + ["c"] * extra_rows
    table = pa.table({"ID": ids, "Gene Symbol": ["TP53", None] + ["X"] * extra_rows})
    real_take, calls = pc.take, []
    monkeypatch.setattr(pc, "take", lambda *a, **k: calls.append(1) or real_take(*a, **k))
    objects, _, n = store.encode_platform_var(table, probes, "ID")
    assert n == 2 and objects and bool(calls) == bool(extra_rows)
