"""The two metadata files every run depends on, checked by name before any stage starts.

``ROOT/metadata/task_info.json`` lists the traits (``{trait: {"related_genes": [...], "conditions": [...]}}``)
and ``ROOT/metadata/gene_synonym.json`` maps each alias to its official symbol (``{alias: symbol}``).  A broken
one used to surface late and in the wrong place: a JSONDecodeError that named no file, or a synonym table of the
wrong shape that made every cohort "no mappable genes", blaming the cohorts.  Here each problem is one line
naming the file, the line and the cause (:class:`MetadataError`).
"""

from __future__ import annotations

import json
from typing import Any

from genotex_dask import layout
from genotex_dask.io import fs


class MetadataError(ValueError):
    """A missing, malformed or wrongly shaped metadata file; the message names file, line and cause."""

    def __init__(self, path: str, cause: str, line: int | None = None):
        self.path, self.cause, self.line = str(path), str(cause), line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {self.cause}")

    def __reduce__(self):
        return (type(self), (self.path, self.cause, self.line))


def _load(url: str, what: str) -> tuple[Any, str]:
    try:
        raw = fs.read_bytes(url)
    except FileNotFoundError:
        raise MetadataError(url, f"not found (the {what} lives in ROOT/metadata/)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(url, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise MetadataError(url, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None


def _line_of(text: str, key: str) -> int | None:
    """Line of the first occurrence of ``"key"`` in the file text (for messages only)."""
    i = text.find(json.dumps(key))
    return text.count("\n", 0, i) + 1 if i >= 0 else None


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)


def check_task_info(url: str) -> dict:
    """The parsed task_info.json, or :class:`MetadataError` for a missing/malformed/wrongly shaped file."""
    doc, text = _load(url, "trait list")
    if not isinstance(doc, dict):
        raise MetadataError(url, "expected an object mapping trait names to {\"related_genes\": [...], "
                                 f"\"conditions\": [...]}}, got {_kind(doc)}", 1)
    if not doc:
        raise MetadataError(url, "lists no traits", 1)
    for trait, entry in doc.items():
        if not isinstance(entry, dict):
            raise MetadataError(url, f"trait {trait!r}: expected an object with related_genes/conditions, got "
                                     f"{_kind(entry)}", _line_of(text, trait))
        for field in ("related_genes", "conditions"):
            v = entry.get(field)
            if v is None:
                continue
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise MetadataError(url, f"trait {trait!r}: {field!r} must be a list of strings, got {_kind(v)}"
                                    + ("" if not isinstance(v, list) else " with non-string items"),
                                    _line_of(text, trait))
    return doc


def check_gene_synonyms(url: str) -> dict:
    """The parsed gene_synonym.json (``{alias: official symbol}``), or :class:`MetadataError`."""
    doc, text = _load(url, "gene synonym table")
    if not isinstance(doc, dict):
        raise MetadataError(url, f"expected an object mapping aliases to official symbols, got {_kind(doc)}", 1)
    if not doc:
        raise MetadataError(url, "holds no synonyms: every cohort would have no mappable genes", 1)
    for alias, symbol in doc.items():
        if not isinstance(symbol, str):
            raise MetadataError(url, f"alias {alias!r} maps to {_kind(symbol)}; expected an official symbol "
                                     "string ({\"ALIAS\": \"SYMBOL\"})", _line_of(text, alias))
    return doc


def safe_task_info(task_info: dict, url: str) -> tuple[dict, dict[str, str]]:
    """``task_info`` without the traits and conditions whose names are unsafe as path components, and
    ``{name: one-line cause}`` for what was left out (for stages that report per item and go on)."""
    bad: dict[str, str] = {}
    clean: dict = {}
    for trait, entry in task_info.items():
        if not layout.is_safe_name(trait):
            bad[trait] = f"{url}: unsafe trait name {trait!r}; names from inputs never leave their root"
            continue
        if isinstance(entry, dict) and isinstance(entry.get("conditions"), list):
            conds = [c for c in entry["conditions"] if layout.is_safe_name(c)]
            for c in entry["conditions"]:
                if c not in conds:
                    bad[str(c)] = f"{url}: unsafe condition name {c!r}; names from inputs never leave their root"
            entry = {**entry, "conditions": conds}
        clean[trait] = entry
    return clean, bad


def check_metadata(root: str, task_info: bool = True, synonyms: bool = True) -> dict:
    """Check the metadata files a stage needs; returns a short summary (trait and alias counts)."""
    out: dict[str, int] = {}
    if task_info:
        out["traits"] = len(check_task_info(layout.task_info_path(root)))
    if synonyms:
        out["synonyms"] = len(check_gene_synonyms(layout.gene_synonym_path(root)))
    return out
