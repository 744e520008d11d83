"""Converter functions -> value tables (or a numeric rule), through the restricted interpreter only.

A GenoTEX converter (``convert_trait(value)``) receives the whole raw characteristics cell.  Its table is
computed over the cells it can meet: the printed "Sample Characteristics Dictionary" row when complete, else
the unique cells of the user's own series matrix (``--root``).  Every table entry is then checked once more
against a fresh ``call`` of the converter on every printed value.  Anything the interpreter refuses becomes a
named review reason; nothing here raises on notebook content.
"""

from __future__ import annotations

import ast
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from genotex_dask.specs_import import restricted
from genotex_dask.specs_import.resolve import FuncDef

UNSEEN = ("zzunseen-a: zzunseen value a", "zzunseen-b: zzunseen value b")   # cells no cohort holds


@dataclass
class Converted:
    """One feature's conversion as data."""
    values: dict[str, float] = field(default_factory=dict)   # whole raw cell -> number
    default: float | None = None                             # any other non-missing cell
    missing: float | None = None                             # a missing (NaN) cell
    numeric: dict | None = None                              # the interpreter's numeric rule
    reasons: list[str] = field(default_factory=list)         # review reasons (empty = clean)
    digest: str = ""                                         # sha256 of the converter's sources
    domain: str = "printed"                                  # printed | matrix | capped


def referenced(func: str, funcs: dict[str, FuncDef], consts: dict[str, Any]) -> tuple[dict[str, str], dict]:
    """The converter's source plus every function and literal constant it reaches (transitively)."""
    sources: dict[str, str] = {}
    names_used: set[str] = set()
    todo = [func]
    while todo:
        name = todo.pop()
        f = funcs.get(name)
        if f is None or f.name in sources:
            continue
        sources[f.name] = f.source
        try:
            tree = ast.parse(f.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Name):
                names_used.add(n.id)
                if n.id in funcs and funcs[n.id].name not in sources:
                    todo.append(n.id)
    constants = {k: v for k, v in consts.items() if k in names_used and k not in funcs
                 and isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    return sources, constants


def digest(sources: dict[str, str], constants: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(sources):
        h.update(k.encode() + b"\x00" + sources[k].encode() + b"\x00")
    h.update(repr(sorted(constants.items(), key=lambda kv: kv[0])).encode())
    return h.hexdigest()


def _number(v: Any) -> float | None | str:
    """A converter's result as a table value: a finite number, None (missing), or 'bad' for anything else."""
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return None if math.isnan(f) else (f if math.isfinite(f) else "bad")
    return "bad"


def convert(func: str, funcs: dict[str, FuncDef], consts: dict[str, Any], printed: list | None,
            capped: bool, matrix_cells: list[str] | None, numeric_feature: bool) -> Converted:
    """Tabulate ``func`` (a name in ``funcs``) over the cells it can meet; see the module docstring."""
    if func not in funcs:
        return Converted(reasons=[f"converter {func!r} is not a function defined in an executed cell"])
    def_name = funcs[func].name
    sources, constants = referenced(func, funcs, consts)
    out = Converted(digest=digest(sources, constants))
    program = restricted.load_functions(sources, constants)
    if isinstance(program, restricted.Refusal):
        out.reasons.append(f"converter refused: {program.reason}")
        return out
    printed_cells = [v for v in (printed or []) if isinstance(v, str)]
    if matrix_cells is not None:
        domain, out.domain = sorted(set(matrix_cells) | set(printed_cells)), "matrix"
    else:
        domain = printed_cells
        out.domain = "capped" if capped else "printed"
    tab = restricted.tabulate(program, def_name, domain)
    refused = sorted({r.reason for r in tab.refusals})
    if refused:
        out.reasons.append(f"converter refused: {', '.join(refused)}")
        return out
    for raw, val in tab.table.items():
        num = _number(val)
        if num == "bad":
            out.reasons.append(f"converter returns a non-number for {raw!r}")
            return out
        if num is not None:
            out.values[str(raw)] = num
    # the table and the converter agree on every printed value (a fresh call per value)
    for raw in printed_cells:
        again = restricted.call(program, def_name, raw)
        if isinstance(again, restricted.Refusal):
            out.reasons.append(f"converter refused: {again.reason}")
            return out
        if _number(again) != out.values.get(raw):
            out.reasons.append(f"table and converter disagree on {raw!r}")
            return out
    # "anything else -> constant": the converter's answer on cells it has never seen
    probes = [restricted.call(program, def_name, u) for u in UNSEEN]
    nums = [None if isinstance(p, restricted.Refusal) else _number(p) for p in probes]
    if nums[0] is not None and nums[0] != "bad" and nums[0] == nums[1]:
        out.default = nums[0]
    if tab.numeric_rule and tab.numeric_rule.get("kind", "number") == "number":
        out.numeric = {"pattern": tab.numeric_rule["pattern"], "scale": float(tab.numeric_rule["scale"])}
    miss = _number(getattr(tab, "missing", None)) if not isinstance(getattr(tab, "missing", None),
                                                                     restricted.Refusal) else None
    if miss is not None and miss != "bad":
        out.missing = miss
    if out.domain == "capped" and out.default is None and out.numeric is None:
        out.reasons.append("printed values capped at 30 and no series matrix under --root: table may be partial")
    return out
