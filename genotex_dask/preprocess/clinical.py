"""Clinical features: trait / Age / Gender from GEO sample fields and TCGA clinical matrices.

GEO: GenoTEX picks a characteristics row by its position and converts each cell with a cohort-specific
function.  Here the cell source is chosen by a spec (a characteristics key, matched case-insensitively on the
text before the first ':' of each sample's cells, or a row position; or the source name; or the title) and
converted by ordered pattern -> value rules (first match wins, no match = missing) or by a Python callable that
receives the raw cell, as GenoTEX's converters do.

Imported specs (``match: cell``) key their value tables on the WHOLE raw cell, compared exactly, because
GenoTEX's converters receive the whole cell; ``default`` gives every other non-missing cell a value; numeric
features try the value table first, then the number pattern.

TCGA: the trait comes from the barcode's last two digits (01-09 tumour = 1, 10-19 normal = 0, anything else
-1, as GenoTEX's converter returns), gender is ``female``/``male`` (case-insensitive) -> 0/1 else missing, and
age is the first run of digits in the cell's text (so ``72.0`` -> 72 and a negative ``days_to_birth`` loses its
sign, as in the reference).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genotex_dask import safe_regex

Rule = tuple[Any, float]  # (compiled linear-time pattern, value)

DEFAULT_GENDER_RULES: list[tuple[str, float]] = [
    (r"^\s*(f|female|woman|women|girl|fem)\s*$", 0.0),
    (r"^\s*(m|male|man|men|boy)\s*$", 1.0),
    (r"\bfemale\b", 0.0),
    (r"\bmale\b", 1.0),
]
DEFAULT_NUMBER = r"\d+(?:\.\d+)?"


def _is_missing(cell: object) -> bool:
    return cell is None or (isinstance(cell, float) and np.isnan(cell))


def cell_key(cell: object) -> str | None:
    """The characteristic key of a ``key: value`` cell, lower-cased and stripped (None without ':')."""
    if not isinstance(cell, str) or ":" not in cell:
        return None
    return cell.split(":", 1)[0].strip().lower()


def cell_value(cell: object, strip_key: bool = True) -> str | None:
    """The text a rule sees: the part after the first ':' for characteristics, the whole text otherwise."""
    if _is_missing(cell):
        return None
    s = str(cell)
    if strip_key and ":" in s:
        s = s.split(":", 1)[1]
    return s.strip()


def select_characteristic(rows: Sequence[Sequence[object]], n_samples: int, key: str | None = None,
                          row: int | None = None) -> list[object]:
    """Per-sample cell of one characteristic.

    ``row`` takes GenoTEX's positional row; ``key`` searches every row of each sample for the first cell whose
    key matches, which survives GEO's habit of shifting cells between rows when samples lack a field.
    """
    if row is not None:
        if row < 0 or row >= len(rows):
            raise IndexError(f"characteristics row {row} does not exist ({len(rows)} rows)")
        return list(rows[row])
    want = (key or "").strip().lower()
    out: list[object] = [None] * n_samples
    for r in rows:
        for j, cell in enumerate(r):
            if out[j] is None and cell_key(cell) == want:
                out[j] = cell
    return out


def compile_rules(rules: Sequence[tuple[str, float]], where: str = "") -> list[Rule]:
    """Spec rules compiled on the linear-time engine (:mod:`genotex_dask.safe_regex`), case-insensitive."""
    return [(safe_regex.compile(p, ignore_case=True, where=where), float(v)) for p, v in rules]


def apply_rules(cells: Sequence[object], rules: Sequence[Rule], strip_key: bool = True) -> np.ndarray:
    """First matching rule's value per cell (regex search on the cell value); NaN where none matches."""
    out = np.full(len(cells), np.nan)
    memo: dict[str, float] = {}
    for i, c in enumerate(cells):
        v = cell_value(c, strip_key)
        if v is None:
            continue
        if v not in memo:
            memo[v] = next((val for pat, val in rules if pat.search(v)), np.nan)
        out[i] = memo[v]
    return out


def parse_number(cells: Sequence[object], pattern: str = DEFAULT_NUMBER, scale: float = 1.0,
                 strip_key: bool = True, where: str = "") -> np.ndarray:
    """First number matching ``pattern`` (its first group when it has one) in each cell value, times ``scale``
    (e.g. 1/12 for months)."""
    rx = safe_regex.compile(pattern, where=where)
    out = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        v = cell_value(c, strip_key)
        if v is None:
            continue
        m = rx.search(v)
        if m:
            try:
                out[i] = float(m.group(1) if rx.groups else m.group(0)) * scale
            except ValueError:
                pass
    return out


def apply_callable(cells: Sequence[object], fn: Callable[[object], object]) -> np.ndarray:
    """GenoTEX-style converter on raw cells; None/unparseable results are missing."""
    out = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        r = fn(c)
        if r is None:
            continue
        try:
            out[i] = float(r)
        except (TypeError, ValueError):
            pass
    return out


def characteristic_rows(obs, channel: str = "characteristics_ch1") -> list[list[object]]:
    """The sample-metadata rows of one characteristics channel, in file order (empty cells -> None)."""
    cols = [c for c in obs.columns if str(c).startswith(channel)]
    cols.sort(key=lambda c: int(str(c).rsplit("_", 1)[-1]) if str(c).rsplit("_", 1)[-1].isdigit() else 0)
    return [[None if v == "" else v for v in obs[c].tolist()] for c in cols]


def feature_values(spec, obs, numeric: str | None) -> np.ndarray:
    """Values of one GEO feature (a :class:`~genotex_dask.preprocess.specs.FeatureSpec`) for every sample of
    ``obs`` (the store's sample metadata).  ``numeric`` is ``"number"`` (Age), ``"gender"`` or None (trait).
    Raises IndexError for a characteristics row that does not exist."""
    n = len(obs)
    if spec.source.startswith("characteristics"):
        channel = "characteristics_ch2" if spec.source == "characteristics_ch2" else "characteristics_ch1"
        cells = select_characteristic(characteristic_rows(obs, channel), n, key=spec.key, row=spec.row)
        strip = True
    else:
        col = "source_name_ch1" if spec.source == "source_name" else "title"
        cells = [None if v == "" else v for v in obs[col].tolist()]
        strip = False
    if spec.convert is not None:
        return apply_callable(cells, spec.convert)
    whole = getattr(spec, "match", "value") == "cell"
    out = np.full(n, np.nan)
    if spec.values:
        if whole:
            lut = {k.strip(): v for k, v in spec.values.items()}
            keys = [None if _is_missing(c) else str(c).strip() for c in cells]
        else:
            lut = {k.strip().lower(): v for k, v in spec.values.items()}
            keys = [None if (v := cell_value(c, strip)) is None else v.lower() for c in cells]
        for i, k in enumerate(keys):
            if k is not None and k in lut:
                out[i] = lut[k]
    if numeric == "number":
        if spec.pattern or not spec.values or getattr(spec, "default", None) is None:
            parsed = parse_number(cells, spec.pattern or DEFAULT_NUMBER, spec.scale, strip and not whole)
            out = np.where(np.isnan(out), parsed, out)
    else:
        rules = spec.rules or (DEFAULT_GENDER_RULES if numeric == "gender" and not spec.values else [])
        if rules:
            ruled = apply_rules(cells, compile_rules(rules), strip)
            out = np.where(np.isnan(out), ruled, out)
    present = np.array([not _is_missing(c) and str(c).strip() != "" for c in cells], dtype=bool)
    default = getattr(spec, "default", None)
    if default is not None:
        out = np.where(np.isnan(out) & present, float(default), out)
    missing = getattr(spec, "missing", None)
    if missing is not None:   # what GenoTEX's converter returned for an absent cell
        out = np.where(present, out, float(missing))
    return out


# ---- TCGA ------------------------------------------------------------------------------------------------

def tcga_trait(barcodes: Sequence[str]) -> np.ndarray:
    """1 for tumour sample types 01-09, 0 for normals 10-19, -1 otherwise (GenoTEX's convention)."""
    out = np.empty(len(barcodes), dtype=np.float64)
    for i, b in enumerate(barcodes):
        code = int(str(b)[-2:])
        out[i] = 1 if 1 <= code <= 9 else (0 if 10 <= code <= 19 else -1)
    return out


def tcga_gender(cells: Sequence[object]) -> np.ndarray:
    out = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        if isinstance(c, str):
            lc = c.lower()
            if lc == "female":
                out[i] = 0
            elif lc == "male":
                out[i] = 1
    return out


_DIGITS = re.compile(r"\d+")  # a fixed pattern of ours, not from an input


def tcga_age(cells: Sequence[object], unit: str = "years", compat: str | None = None) -> np.ndarray:
    """Age per sample.  GenoTEX (and ``compat="genotex"``) takes the first run of digits whatever the column, so
    ``days_to_birth`` = -26349 becomes an "age" of 26349; by default a ``days`` column becomes years."""
    out = np.full(len(cells), np.nan)
    if unit == "days" and compat != "genotex":
        for i, c in enumerate(cells):
            try:
                f = float(str(c))
            except ValueError:
                continue
            if np.isfinite(f):
                out[i] = abs(f) / 365.25
        return out
    for i, c in enumerate(cells):
        m = _DIGITS.search(str(c))
        if m:
            out[i] = int(m.group())
    return out


def tcga_trait_from_column(cells: Sequence[object], values: dict[str, float]) -> np.ndarray:
    """Trait from a clinical column through an exact (stripped) value table; other cells missing."""
    lut = {k.strip(): v for k, v in values.items()}
    return np.array([lut.get(str(c).strip(), np.nan) if not _is_missing(c) else np.nan for c in cells])


def is_rule_column(column: str) -> bool:
    """The sample-metadata (obs) columns that trait/Age/Gender rules can read: characteristics, title, source
    name (the rest of a cohort's obs need not be decoded)."""
    return column.startswith(("characteristics_ch1", "characteristics_ch2")) or column in ("title", "source_name_ch1")
