"""anndata_zarr.consolidated_root builds the root zarr.json that Zarr's own consolidate_metadata writes (the
oracle: zarr.consolidate_metadata over the same objects in a MemoryStore), byte for byte: nested groups, names
whose order depends on case and Unicode folding, empty groups; and it declines documents it did not write."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

from genotex_dask.io import anndata_zarr


def _zarr_root(out: dict[str, bytes]) -> bytes:
    proto = default_buffer_prototype()
    view = {k: proto.buffer.from_bytes(v) for k, v in out.items() if k.endswith("zarr.json")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(zarr.storage.MemoryStore(store_dict=view))
    return view["zarr.json"].to_bytes()


def _objects(seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    names = ["b", "B2", "a", "Ä", "ä1", "ﬁle", "Zeta", "é", "E\u0301x", "_x", "0", "z z"]  # ﬁ folds to "fi" (NFKC)
    cols = [str(n) for n in rng.permutation(names)[: int(rng.integers(1, len(names)))]]
    n = int(rng.integers(1, 40))
    frame = pd.DataFrame({c: np.array([f"{c}{i}" for i in range(n)], dtype=object) for c in cols},
                         index=pd.Index([f"p{i}" for i in range(n)], dtype=object, name="ID"))
    out: dict[str, bytes] = {}
    enc = anndata_zarr.Encoder(out)
    assert enc.frame("var", frame) and enc.frame("obs", frame.rename(index=lambda s: "s" + s))
    assert enc.mapping("uns", {"genotex": "{}", "deep": {"Level": {"x": 1.5, "Y": "s"}, "k": np.arange(3)}})
    enc.numeric("X", rng.normal(size=(n, 5)).astype(np.float32), chunks=(4, 4))
    anndata_zarr.skeleton(out)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_consolidated_root_equals_zarrs(seed):
    out = _objects(seed)
    assert anndata_zarr.consolidated_root(out) == _zarr_root(out)


def test_a_group_without_children_and_declined_documents():
    out = {"zarr.json": anndata_zarr.group_meta({"encoding-type": "anndata", "encoding-version": "0.1.0"})}
    assert anndata_zarr.consolidated_root(out) == _zarr_root(out)  # "metadata": {}
    odd = dict(_objects(1))
    odd["extra/zarr.json"] = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'  # keys in another order
    assert anndata_zarr.consolidated_root(odd) is None
    lock = __import__("threading").Lock()
    anndata_zarr.consolidate(odd, lock)  # Zarr consolidates what this module did not write
    assert b'"extra"' in odd["zarr.json"]
