"""Cohort specs as data: one YAML file per trait says, for each cohort, where its trait, Age and Gender live and
how raw strings become values, which matrix/platform to use, and which annotation columns map probes to genes.

GenoTEX encodes these choices as code in a notebook per cohort (``trait_row = 0`` and a ``convert_trait``
function).  Here they are validated data; every error names the spec file and line.  Through the Python API any
rule may be replaced by a callable (``FeatureSpec.convert``) that receives the raw cell, like GenoTEX's
converters.

File format (``<SPECS>/<Trait>.yaml``)::

    trait: Kidney_Clear_Cell_Carcinoma
    cohorts:
      GSE781:
        matrix: GSE781-GPL96_series_matrix.txt.gz   # optional: default = first *matrix* file, as GenoTEX
        platform: GPL96                             # optional: default = the samples' !Sample_platform_id
        annotation:                                 # optional: default ID / auto-detected gene column
          id_column: ID
          gene_column: Gene Symbol                  # or `symbols: true` when IDs are already gene symbols
        trait:
          source: source_name                       # characteristics | source_name | title | none
          rules:                                    # ordered regex -> value, case-insensitive, first match wins
            - {pattern: "normal tissue adjacent", value: 0}
            - {pattern: "carcinoma", value: 1}
        age: {source: characteristics, key: age}    # or null; number pattern and scale are optional
        gender: {source: characteristics, key: sex} # or null; default rules female/f -> 0, male/m -> 1
        review: {confidence: 1.0, needs_review: false, note: "checked against GDS507"}
      TCGA:
        tcga: {directory: "TCGA_Kidney_Clear_Cell_Carcinoma_(KIRC)",
               age_column: age_at_initial_pathologic_diagnosis, gender_column: gender}

For a characteristics source give ``key`` (matched case-insensitively on the text before ':' in any row of a
sample) or ``row`` (GenoTEX's positional row).  ``values`` maps exact cell values (after the key, compared
case-insensitively) to numbers and is tried before ``rules``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

SOURCES = ("characteristics", "source_name", "title", "none")


class SpecError(ValueError):
    """An invalid spec; ``str()`` reads ``file:line: message``."""

    def __init__(self, file: str, line: int | None, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line if line is not None else '?'}: {message}")


@dataclass
class FeatureSpec:
    """Where one feature (trait, Age or Gender) comes from and how cells become numbers."""

    source: str = "characteristics"
    key: str | None = None
    row: int | None = None
    values: dict[str, float] = field(default_factory=dict)
    rules: list[tuple[str, float]] = field(default_factory=list)
    pattern: str | None = None        # numeric features: regex of the number (default: first number)
    scale: float = 1.0
    convert: Callable[[object], object] | None = None   # API override: raw cell -> value or None
    line: int | None = None

    def as_dict(self) -> dict:
        d: dict[str, Any] = {"source": self.source}
        if self.key is not None:
            d["key"] = self.key
        if self.row is not None:
            d["row"] = self.row
        if self.values:
            d["values"] = dict(self.values)
        if self.rules:
            d["rules"] = [{"pattern": p, "value": v} for p, v in self.rules]
        if self.pattern:
            d["pattern"] = self.pattern
        if self.scale != 1.0:
            d["scale"] = self.scale
        if self.convert is not None:
            d["convert"] = _callable_id(self.convert)
        return d


@dataclass
class CohortSpec:
    trait: str
    cohort: str
    kind: str = "GEO"                  # GEO | TCGA
    matrix: str | None = None
    platform: str | None = None
    id_column: str = "ID"
    gene_column: str | None = None
    symbols: bool | None = None        # None = detect (IDs that mostly hit the synonym table)
    trait_spec: FeatureSpec | None = None
    age: FeatureSpec | None = None
    gender: FeatureSpec | None = None
    tcga_directory: str | None = None
    age_column: str | None = None
    gender_column: str | None = None
    confidence: float | None = None
    needs_review: bool = False
    note: str = ""
    file: str = "<api>"
    line: int | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}"

    def as_dict(self) -> dict:
        """The YAML mapping of this cohort (round-trips through :func:`parse_specs`)."""
        if self.kind == "TCGA":
            d: dict[str, Any] = {"tcga": {"directory": self.tcga_directory, "age_column": self.age_column,
                                          "gender_column": self.gender_column}}
        else:
            d = {}
            if self.matrix:
                d["matrix"] = self.matrix
            if self.platform:
                d["platform"] = self.platform
            ann: dict[str, Any] = {}
            if self.id_column != "ID":
                ann["id_column"] = self.id_column
            if self.gene_column:
                ann["gene_column"] = self.gene_column
            if self.symbols is not None:
                ann["symbols"] = self.symbols
            if ann:
                d["annotation"] = ann
            d["trait"] = self.trait_spec.as_dict() if self.trait_spec else {"source": "none"}
            d["age"] = self.age.as_dict() if self.age else None
            d["gender"] = self.gender.as_dict() if self.gender else None
        rev: dict[str, Any] = {"needs_review": bool(self.needs_review)}
        if self.confidence is not None:
            rev["confidence"] = round(float(self.confidence), 3)
        if self.note:
            rev["note"] = self.note
        d["review"] = rev
        return d

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the outputs (file/line and review notes excluded)."""
        d = self.as_dict()
        d.pop("review", None)
        return hashlib.sha256(json.dumps([self.trait, self.cohort, self.kind, d], sort_keys=True,
                                         default=str).encode()).hexdigest()[:16]


def _callable_id(fn: Callable) -> str:
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = repr(fn)
    return f"callable:{getattr(fn, '__qualname__', 'fn')}:{hashlib.sha256(src.encode()).hexdigest()[:12]}"


# ---- YAML with line numbers -----------------------------------------------------------------------------

def _plain(node: yaml.Node, lines: dict[tuple, int], path: tuple) -> Any:
    """Node -> Python object, recording the 1-based line of every mapping value/sequence item by path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in node.value:
            key = yaml.safe_load(yaml.serialize(k)) if not isinstance(k, yaml.ScalarNode) else k.value
            out[key] = _plain(v, lines, path + (key,))
            lines[path + (key,)] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, lines, path + (i,)) for i, v in enumerate(node.value)]
    # scalars: resolve with the safe loader's constructors (ints, floats, bools, null)
    return yaml.safe_load(yaml.serialize(node))


def _line(lines: dict[tuple, int], path: tuple) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


_TRAIT_KEYS = {"trait", "cohorts"}
_COHORT_KEYS = {"kind", "matrix", "platform", "annotation", "trait", "age", "gender", "tcga", "review"}
_FEATURE_KEYS = {"source", "key", "row", "values", "rules", "pattern", "scale"}


def _feature(d: Any, path: tuple, lines: dict, file: str, numeric: bool) -> FeatureSpec | None:
    def err(msg: str, sub: tuple = ()) -> SpecError:
        return SpecError(file, _line(lines, path + sub), msg)

    if d is None:
        return None
    if not isinstance(d, dict):
        raise err(f"'{path[-1]}' must be a mapping or null")
    unknown = set(d) - _FEATURE_KEYS
    if unknown:
        k = sorted(unknown)[0]
        raise err(f"unknown field '{k}' in '{path[-1]}' (allowed: {', '.join(sorted(_FEATURE_KEYS))})", (k,))
    source = d.get("source", "characteristics")
    if source not in SOURCES:
        raise err(f"source must be one of {', '.join(SOURCES)}, not {source!r}", ("source",))
    if source == "none":
        return None
    key, row = d.get("key"), d.get("row")
    if source == "characteristics":
        if key is None and row is None:
            raise err("a characteristics source needs 'key' or 'row'")
        if key is not None and row is not None:
            raise err("give either 'key' or 'row', not both", ("row",))
        if key is not None and not isinstance(key, str):
            raise err("'key' must be a string", ("key",))
        if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 0):
            raise err("'row' must be a non-negative integer", ("row",))
    values: dict[str, float] = {}
    raw_values = d.get("values") or {}
    if not isinstance(raw_values, dict):
        raise err("'values' must map raw strings to numbers", ("values",))
    for k, v in raw_values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise err(f"value for {k!r} must be a number, not {v!r}", ("values", k))
        values[str(k)] = float(v)
    rules: list[tuple[str, float]] = []
    raw_rules = d.get("rules") or []
    if not isinstance(raw_rules, list):
        raise err("'rules' must be a list of {pattern, value}", ("rules",))
    for i, r in enumerate(raw_rules):
        if isinstance(r, dict) and set(r) == {"pattern", "value"}:
            p, v = r["pattern"], r["value"]
        elif isinstance(r, list) and len(r) == 2:
            p, v = r
        else:
            raise err("each rule is {pattern: <regex>, value: <number>}", ("rules", i))
        if not isinstance(p, str):
            raise err(f"rule pattern must be a string, not {p!r}", ("rules", i))
        try:
            re.compile(p)
        except re.error as exc:
            raise err(f"bad regular expression {p!r}: {exc}", ("rules", i)) from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise err(f"rule value must be a number, not {v!r}", ("rules", i))
        rules.append((p, float(v)))
    pattern = d.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise err(f"bad regular expression {pattern!r}: {exc}", ("pattern",)) from None
    scale = d.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise err("'scale' must be a number", ("scale",))
    if not numeric and not values and not rules and path[-1] == "trait":
        raise err("the trait needs 'values' or 'rules' to turn cells into numbers")
    return FeatureSpec(source=source, key=key, row=row, values=values, rules=rules, pattern=pattern,
                       scale=float(scale), line=_line(lines, path))


def parse_specs(text: str, file: str = "<string>") -> dict[str, CohortSpec]:
    """Validate one trait's spec text; returns ``{cohort: CohortSpec}``.  Raises :class:`SpecError`."""
    lines: dict[tuple, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(file, mark.line + 1 if mark else None, f"YAML syntax: {exc}") from None
    if node is None:
        raise SpecError(file, 1, "empty spec file")
    doc = _plain(node, lines, ())
    if not isinstance(doc, dict):
        raise SpecError(file, 1, "a spec file is a mapping with 'trait' and 'cohorts'")
    unknown = set(doc) - _TRAIT_KEYS
    if unknown:
        k = sorted(unknown)[0]
        raise SpecError(file, _line(lines, (k,)), f"unknown top-level field '{k}'")
    trait = doc.get("trait")
    if not isinstance(trait, str) or not trait:
        raise SpecError(file, _line(lines, ("trait",)) or 1, "'trait' (the trait name) is required")
    cohorts = doc.get("cohorts")
    if not isinstance(cohorts, dict):
        raise SpecError(file, _line(lines, ("cohorts",)) or 1, "'cohorts' must map cohort IDs to specs")
    out: dict[str, CohortSpec] = {}
    for cid, c in cohorts.items():
        path = ("cohorts", cid)
        cline = _line(lines, path)
        if not isinstance(c, dict):
            raise SpecError(file, cline, f"cohort {cid}: spec must be a mapping")
        unknown = set(c) - _COHORT_KEYS
        if unknown:
            k = sorted(unknown)[0]
            raise SpecError(file, _line(lines, path + (k,)),
                            f"cohort {cid}: unknown field '{k}' (allowed: {', '.join(sorted(_COHORT_KEYS))})")
        kind = c.get("kind") or ("TCGA" if ("tcga" in c or str(cid) == "TCGA") else "GEO")
        if kind not in ("GEO", "TCGA"):
            raise SpecError(file, _line(lines, path + ("kind",)), f"cohort {cid}: kind must be GEO or TCGA")
        rev = c.get("review") or {}
        if not isinstance(rev, dict):
            raise SpecError(file, _line(lines, path + ("review",)), f"cohort {cid}: 'review' must be a mapping")
        spec = CohortSpec(trait=trait, cohort=str(cid), kind=kind, file=file, line=cline,
                          confidence=rev.get("confidence"), needs_review=bool(rev.get("needs_review", False)),
                          note=str(rev.get("note") or ""))
        if kind == "TCGA":
            t = c.get("tcga") or {}
            if not isinstance(t, dict) or not t.get("directory"):
                raise SpecError(file, _line(lines, path + ("tcga",)) or cline,
                                f"cohort {cid}: a TCGA cohort needs tcga.directory")
            spec.tcga_directory = str(t["directory"])
            spec.age_column = t.get("age_column")
            spec.gender_column = t.get("gender_column")
        else:
            spec.matrix = c.get("matrix")
            spec.platform = c.get("platform")
            ann = c.get("annotation") or {}
            if not isinstance(ann, dict) or set(ann) - {"id_column", "gene_column", "symbols"}:
                raise SpecError(file, _line(lines, path + ("annotation",)),
                                f"cohort {cid}: annotation takes id_column, gene_column, symbols")
            spec.id_column = str(ann.get("id_column", "ID"))
            spec.gene_column = ann.get("gene_column")
            spec.symbols = ann.get("symbols")
            if spec.symbols is not None and not isinstance(spec.symbols, bool):
                raise SpecError(file, _line(lines, path + ("annotation", "symbols")),
                                f"cohort {cid}: annotation.symbols must be true or false")
            if "trait" not in c:
                raise SpecError(file, cline, f"cohort {cid}: 'trait' is required (use source: none if absent)")
            spec.trait_spec = _feature(c.get("trait"), path + ("trait",), lines, file, numeric=False)
            spec.age = _feature(c.get("age"), path + ("age",), lines, file, numeric=True)
            spec.gender = _feature(c.get("gender"), path + ("gender",), lines, file, numeric=True)
        out[str(cid)] = spec
    return out


def dump_specs(trait: str, cohorts: dict[str, CohortSpec], header: str = "") -> str:
    """YAML text of one trait's specs (the inverse of :func:`parse_specs`)."""
    doc = {"trait": trait, "cohorts": {cid: s.as_dict() for cid, s in sorted(cohorts.items())}}
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    return (header + body) if header else body


def load_specs_dir(read_text: Callable[[str], str], names: list[str], base: str) -> dict[str, dict[str, CohortSpec]]:
    """``{trait: {cohort: spec}}`` from ``<base>/<name>`` YAML files (I/O injected by the pipeline)."""
    out: dict[str, dict[str, CohortSpec]] = {}
    for n in names:
        if not n.endswith((".yaml", ".yml")):
            continue
        file = f"{base.rstrip('/')}/{n}"
        specs = parse_specs(read_text(file), file)
        if specs:
            trait = next(iter(specs.values())).trait
            out.setdefault(trait, {}).update(specs)
    return out
