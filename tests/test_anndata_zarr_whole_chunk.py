"""A numeric array that is one whole chunk is Blosc-encoded in place (no zeroed copy): the same chunk bytes as
numcodecs' own encode of a zero-padded copy of each chunk (the oracle here), whatever the chunking, a chunk of fill
values only left out, and an input of another dtype or layout taking the copying path with the same result."""

import numpy as np
import pytest
from numcodecs import Blosc

from genotex_dask.io import anndata_zarr
from genotex_dask.io.store import X_COMPRESSORS


def _oracle(X: np.ndarray, chunks: tuple[int, int]) -> dict[str, bytes]:
    comp = Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE, blocksize=0, typesize=4)
    out = {}
    for i in range(0, X.shape[0], chunks[0]):
        for j in range(0, X.shape[1], chunks[1]):
            block = np.zeros(chunks, np.float32)
            part = X[i:i + chunks[0], j:j + chunks[1]]
            block[:part.shape[0], :part.shape[1]] = part
            if block.any():
                out[f"X/c/{i // chunks[0]}/{j // chunks[1]}"] = comp.encode(block.reshape(-1).view(np.uint8))
    return out


def _encode(X, chunks) -> dict[str, bytes]:
    out: dict = {}
    anndata_zarr.Encoder(out, X_COMPRESSORS[0]).numeric("X", X, chunks=chunks, dtype=np.float32)
    return {k: bytes(v) for k, v in out.items() if "/c/" in k}


@pytest.mark.parametrize("shape,chunks", [((167, 3000), (167, 3000)), ((300, 700), (256, 700)), ((40, 50), (16, 32))])
def test_same_bytes_as_numcodecs(shape, chunks):
    X = (np.random.default_rng(7).standard_normal(shape) * 2 + 7).astype(np.float32)
    X[:16, :32] = 0  # with small chunks, a chunk of fill values only: no file
    got = _encode(X, chunks)
    assert got == _oracle(X, chunks) and got
    # the same values as float64 or in Fortran order are copied chunk by chunk: same bytes
    assert _encode(X.astype(np.float64), chunks) == got
    assert _encode(np.asfortranarray(X), chunks) == got


def test_whole_chunk_of_zeros_writes_no_chunk():
    assert _encode(np.zeros((5, 7), np.float32), (5, 7)) == {}
