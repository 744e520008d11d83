"""The fields that make a preprocessed cohort usable in scanpy as it is: categorical obs columns, ``uns`` as a
plain dict saying what the numbers are, and ``var['n_probes']``.

Pure functions over arrays and frames; the preprocess pipeline writes what they return.

Value scale: GenoTEX keeps values on the scale the series was published in and never records it; a scanpy user
needs to know before ``sc.pp.log1p``.  The rule is GEO2R's published check (the one NCBI applies before its own
log2 transform), restated here: with q = quantiles (0, 25, 99, 100 %) of the finite values, the data are raw
(linear intensities such as MAS5, or counts) when q100 > 100, or when q99 - q0 > 50 and q25 > 0; otherwise log2
(or another compressed scale).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

RAW = "raw"
LOG2 = "log2"
UNKNOWN = "unknown"
GENDER_LABELS = ("female", "male")  # GenoTEX codes Gender 0 = female, 1 = male


def detect_value_scale(X: np.ndarray) -> str:
    """``"raw"`` (linear intensities/counts), ``"log2"``, or ``"unknown"`` when there is no finite value.

    The rule reads the 0, 25, 99 and 100% quantiles of the finite values; the 0 and 100% ones are the min
    and max, which settle most matrices alone (max > 100: raw; max - min <= 50 bounds q99 - q0: log2), so
    the sort behind the other two (a float64 copy of the whole matrix) is only paid when they do not."""
    a = np.asarray(X)
    if a.size and a.dtype.kind == "f":
        lo, hi = _nan_min_max(a)
        if np.isfinite(lo) and np.isfinite(hi):
            if hi > 100:
                return RAW
            if hi - lo <= 50:
                return LOG2
    v = np.asarray(X, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return UNKNOWN
    q0, q25, q99, q100 = np.quantile(v, [0.0, 0.25, 0.99, 1.0])
    raw = q100 > 100 or (q99 - q0 > 50 and q25 > 0)
    return RAW if raw else LOG2


def _nan_min_max(a: np.ndarray) -> tuple[float, float]:
    """(min, max) of the values of a float array that are not NaN (inf included, as ``np.nanmin``/``nanmax``),
    NaN when there is none: one pass over a C-contiguous matrix (numpy's two cost twice the reads)."""
    if a.ndim == 2 and a.flags.c_contiguous and a.dtype in (np.float32, np.float64):
        lo, hi = _min_max_kernel(a.reshape(-1))
        return float(lo), float(hi)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: NaN, and the caller's full rule says "unknown"
        return float(np.nanmin(a)), float(np.nanmax(a))


@njit(cache=True, nogil=True)
def _min_max_kernel(v):  # pragma: no cover - compiled
    """A comparison with NaN is false, so NaN never replaces a bound; four independent lanes (no loop-carried
    dependency on one pair of bounds).  No value but NaN: the bounds stay crossed (inf, -inf)."""
    lo = np.full(4, np.inf)
    hi = np.full(4, -np.inf)
    n4 = v.shape[0] - v.shape[0] % 4
    for i in range(0, n4, 4):
        for k in range(4):
            x = v[i + k]
            if x < lo[k]:
                lo[k] = x
            if x > hi[k]:
                hi[k] = x
    for i in range(n4, v.shape[0]):
        x = v[i]
        if x < lo[0]:
            lo[0] = x
        if x > hi[0]:
            hi[0] = x
    a, b = lo.min(), hi.max()
    if a > b:
        return np.nan, np.nan
    return a, b


def scanpy_obs(obs: pd.DataFrame, trait: str) -> pd.DataFrame:
    """obs with a binary trait as a categorical (categories 0, 1: control, case) and Gender as a categorical
    ("female", "male"); Age and a continuous trait stay numeric (float)."""
    obs = obs.copy()
    t = obs[trait].to_numpy(dtype=float)
    if np.isin(t[np.isfinite(t)], (0.0, 1.0)).all():
        obs[trait] = pd.Categorical(np.where(np.isfinite(t), t, -1).astype(int), categories=[0, 1])
    if "Gender" in obs.columns:
        g = obs["Gender"].to_numpy(dtype=float)
        labels = np.array([GENDER_LABELS[int(v)] if v in (0.0, 1.0) else None for v in g], dtype=object)
        obs["Gender"] = pd.Categorical(labels, categories=list(GENDER_LABELS))
    if "Age" in obs.columns:
        obs["Age"] = obs["Age"].astype(float)
    return obs


def probe_counts(W: Any) -> np.ndarray:
    """How many input rows (probes; genes for TCGA) feed each output symbol (column) of a probes x symbols
    operator, in column order."""
    return np.diff(W.tocsc().indptr)


def spec_digest(spec_mapping: dict) -> str:
    """sha256 of the cohort's spec mapping in canonical JSON (a callable rule counts by its kind only)."""
    text = json.dumps(spec_mapping, sort_keys=True, default=lambda o: f"<{type(o).__name__}>")
    return hashlib.sha256(text.encode()).hexdigest()


def cohort_uns(*, trait: str, cohort: str, platform: str | None, spec_file: str, spec_line: int | None,
               spec_mapping: dict, mode: str, value_scale: str, engine_version: int) -> dict:
    """``uns`` of a preprocessed cohort: plain strings and numbers only (every writer and reader keeps them)."""
    return {"trait": trait, "cohort": cohort, "platform": platform or "",
            "spec": {"name": spec_file.replace("\\", "/").rsplit("/", 1)[-1], "line": -1 if spec_line is None
                     else int(spec_line), "digest": spec_digest(spec_mapping)},
            "mode": mode, "value_scale": value_scale,
            "codes": {trait: "1 = case, 0 = control (GenoTEX)", "Gender": "female / male (GenoTEX 0 / 1)"},
            "genotex_dask": {"preprocess_engine_version": int(engine_version)}}
