"""anndata_zarr.vlen_utf8 (a pyarrow string column laid out as Zarr's vlen-utf8 chunk body) equals numcodecs'
own VLenUTF8 encoding of the same Python strings (the oracle), on sliced arrays of both offset widths, with
multi-byte text, empty items and padding."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
from numcodecs import VLenUTF8

from genotex_dask.io import anndata_zarr


def test_vlen_utf8_equals_numcodecs():
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(1, 40)
        items = ["".join(rng.choice(["a", "é", "東京", "", "x" * 300]) for _ in range(rng.randint(0, 4)))
                 for _ in range(n)]
        arr = pa.array(items, type=rng.choice([pa.string(), pa.large_string()]))
        lo = rng.randint(0, n - 1)
        ln = rng.randint(1, n - lo)
        size = ln + rng.randint(0, 3)
        got = anndata_zarr.vlen_utf8(arr.slice(lo, ln), size)
        part = items[lo:lo + ln]
        if not any(part):
            assert got is None
            continue
        expect = VLenUTF8().encode(np.array(part + [""] * (size - ln), dtype=object))
        assert got.tobytes() == bytes(expect)
