"""Golden checks: a preprocessed cohort against the values GenoTEX printed for it (a spec's ``expect:`` block).

Pure: compares one cohort's outcome (its cohort_info record, gene count and trait label counts) with the
expected values and returns every mismatch as data; the pipeline puts them in the run summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def trait_counts(trait: Sequence[float] | np.ndarray) -> dict[str, int]:
    """Label -> count of a trait vector (labels as GenoTEX prints them: '0', '1', or the number)."""
    out: dict[str, int] = {}
    for v in np.asarray(trait, dtype=float):
        if np.isnan(v):
            continue
        key = str(int(v)) if float(v).is_integer() else repr(float(v))
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def check(expect: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Mismatches between ``expect`` and ``outcome`` (``record`` = cohort_info record, ``n_genes``,
    ``trait_counts``), one ``{field, expected, got}`` per differing field.  Fields not expected are not checked;
    an expected field the outcome lacks is a mismatch with ``got: None``."""
    record = outcome.get("record") or {}
    got: dict[str, Any] = {"sample_size": record.get("sample_size"), "has_age": record.get("has_age"),
                           "has_gender": record.get("has_gender"), "is_usable": record.get("is_usable"),
                           "n_genes": outcome.get("n_genes"), "trait_counts": outcome.get("trait_counts")}
    out = []
    for key in ("is_usable", "sample_size", "trait_counts", "has_age", "has_gender", "n_genes"):
        if key not in expect:
            continue
        want, have = expect[key], got.get(key)
        if key == "trait_counts" and isinstance(have, Mapping):
            have = {str(k): int(v) for k, v in have.items()}
            want = {str(k): int(v) for k, v in want.items()}
        if want != have:
            out.append({"field": key, "expected": want, "got": have})
    return out
