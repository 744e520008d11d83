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

Fields added for decisions imported from GenoTEX's notebooks (``genotex-dask specs import``), all optional::

    trait:
      source: characteristics_ch2       # the !Sample_characteristics_ch2 rows (two-channel arrays)
      row: 1
      match: cell                       # `values` keys are WHOLE raw cells, compared exactly (GenoTEX's
                                        # converters see the whole cell); default `value` = after the key
      values: {"disease: AML": 1, "disease: healthy": 0}
      default: 0                        # any other non-missing cell ("anything else -> 0" converters)
      missing: 0                        # a missing cell (converters that map NaN to a number)
    age: {source: characteristics, row: 2, match: cell, values: {"age: 61": 61}, pattern: '[0-9]+'}
                                        # numeric features honour `values` first, then the number pattern
    annotation: {gene_column: gene_assignment, parser: gene_assignment}
                                        # parser: text (default) | gene_assignment ('NM_1 // SYMBOL // ... /// ...')
    excluded: {reason: "GenoTEX's initial filter: no trait information",
               initial_filter: {is_gene_available: true, is_trait_available: false}}
                                        # an explicit decision "not usable"; distinct from `source: none`
    tcga: {directory: ..., age_column: days_to_birth, age_unit: days, gender_column: gender,
           trait_column: null}          # age_unit: years (default) | days; trait_column: trait from a clinical
                                        # column through `trait_values` instead of the barcode
    expect: {sample_size: 45, trait_counts: {"0": 9, "1": 36}, has_age: true, has_gender: true,
             is_usable: true, n_genes: 19848}     # GenoTEX's printed golden values (checked by preprocess)
    corrections:                        # a published GenoTEX decision replaced by a corrected one
      - {field: gender, reason: "...", genotex: {<the published gender mapping>}}
                                        # under --compat genotex the `genotex` value is used instead
    import: {notebook: code/T/GSE1.ipynb, cell: 4, converters: {trait: <sha256>}, class: clean}
    review: {needs_review: true, reasons: ["..."]}

Every field is type-checked and unknown fields are errors (``SpecError`` naming file:line), never ignored.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from genotex_dask import safe_regex

SOURCES = ("characteristics", "characteristics_ch2", "source_name", "title", "none")
MATCHES = ("value", "cell")
PARSERS = ("text", "gene_assignment")
CORRECTABLE = ("trait", "age", "gender", "excluded")


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
    match: str = "value"              # value: `values` keys are the text after the key; cell: the whole cell
    default: float | None = None      # value of any other non-missing cell
    missing: float | None = None      # value of a missing cell (a converter that maps NaN to a number)
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
        if self.match != "value":
            d["match"] = self.match
        if self.default is not None:
            d["default"] = self.default
        if self.missing is not None:
            d["missing"] = self.missing
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
    parser: str = "text"               # annotation gene-cell parser
    excluded: dict | None = None       # {reason, initial_filter?}: GenoTEX judged the cohort not usable
    age_unit: str = "years"            # TCGA: years | days
    trait_column: str | None = None    # TCGA: trait from this clinical column (with trait_values)
    trait_values: dict[str, float] = field(default_factory=dict)
    expect: dict = field(default_factory=dict)          # golden values
    corrections: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)      # the `import:` block
    reasons: list[str] = field(default_factory=list)    # review reasons
    genotex: dict = field(default_factory=dict)         # field -> published (uncorrected) decision
    file: str = "<api>"
    line: int | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}"

    def for_compat(self, compat: str | None) -> CohortSpec:
        """Under ``compat="genotex"`` the published decisions replace the corrected ones (see ``corrections``)."""
        if compat != "genotex" or not self.genotex:
            return self
        from dataclasses import replace

        fields = {"trait": "trait_spec", "age": "age", "gender": "gender", "excluded": "excluded"}
        return replace(self, **{fields[k]: v for k, v in self.genotex.items()})

    def as_dict(self) -> dict:
        """The YAML mapping of this cohort (round-trips through :func:`parse_specs`)."""
        if self.kind == "TCGA":
            d: dict[str, Any] = {"tcga": {"directory": self.tcga_directory, "age_column": self.age_column,
                                          "gender_column": self.gender_column}}
            if self.age_unit != "years":
                d["tcga"]["age_unit"] = self.age_unit
            if self.trait_column:
                d["tcga"]["trait_column"] = self.trait_column
                d["tcga"]["trait_values"] = dict(self.trait_values)
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
            if self.parser != "text":
                ann["parser"] = self.parser
            if ann:
                d["annotation"] = ann
            d["trait"] = self.trait_spec.as_dict() if self.trait_spec else {"source": "none"}
            d["age"] = self.age.as_dict() if self.age else None
            d["gender"] = self.gender.as_dict() if self.gender else None
        if self.excluded is not None:
            d["excluded"] = dict(self.excluded)
        if self.expect:
            d["expect"] = dict(self.expect)
        if self.corrections:
            d["corrections"] = [dict(c) for c in self.corrections]
        if self.provenance:
            d["import"] = dict(self.provenance)
        rev: dict[str, Any] = {"needs_review": bool(self.needs_review)}
        if self.confidence is not None:
            rev["confidence"] = round(float(self.confidence), 3)
        if self.note:
            rev["note"] = self.note
        if self.reasons:
            rev["reasons"] = list(self.reasons)
        d["review"] = rev
        return d

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the outputs (file/line and review notes excluded)."""
        d = self.as_dict()
        for k in ("review", "import", "expect"):
            d.pop(k, None)
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
_COHORT_KEYS = {"kind", "matrix", "platform", "annotation", "trait", "age", "gender", "tcga", "review", "excluded",
                "expect", "corrections", "import"}
_FEATURE_KEYS = {"source", "key", "row", "values", "rules", "pattern", "scale", "match", "default", "missing"}
_ANNOTATION_KEYS = {"id_column", "gene_column", "symbols", "parser"}
_TCGA_KEYS = {"directory", "age_column", "gender_column", "age_unit", "trait_column", "trait_values"}
_REVIEW_KEYS = {"confidence", "needs_review", "note", "reasons"}
_EXCLUDED_KEYS = {"reason", "initial_filter"}
_FILTER_KEYS = {"is_gene_available", "is_trait_available"}
_EXPECT_KEYS = {"sample_size", "trait_counts", "has_age", "has_gender", "is_usable", "n_genes"}
_CORRECTION_KEYS = {"field", "reason", "genotex"}
_IMPORT_KEYS = {"notebook", "cell", "converters", "class"}


class _Checker:
    """Type checks that raise :class:`SpecError` at the line of the offending field."""

    def __init__(self, file: str, lines: dict):
        self.file, self.lines = file, lines

    def err(self, path: tuple, msg: str) -> SpecError:
        return SpecError(self.file, _line(self.lines, path), msg)

    def mapping(self, v: Any, path: tuple, allowed: set[str], what: str, optional: bool = True) -> dict:
        if v is None and optional:
            return {}
        if not isinstance(v, dict):
            raise self.err(path, f"'{what}' must be a mapping, not {type(v).__name__}")
        unknown = sorted(str(k) for k in set(v) - allowed)
        if unknown:
            raise self.err(path + (unknown[0],), f"unknown field '{unknown[0]}' in '{what}' "
                                                 f"(allowed: {', '.join(sorted(allowed))})")
        return v

    def string(self, v: Any, path: tuple, what: str, optional: bool = True) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v:
            raise self.err(path, f"'{what}' must be a non-empty string, not {v!r}")
        return v

    def boolean(self, v: Any, path: tuple, what: str, optional: bool = True) -> bool | None:
        if v is None and optional:
            return None
        if not isinstance(v, bool):
            raise self.err(path, f"'{what}' must be true or false, not {v!r}")
        return v

    def number(self, v: Any, path: tuple, what: str, optional: bool = True) -> float | None:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.err(path, f"'{what}' must be a number, not {v!r}")
        return float(v)

    def count(self, v: Any, path: tuple, what: str) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.err(path, f"'{what}' must be a non-negative integer, not {v!r}")
        return v

    def strings(self, v: Any, path: tuple, what: str) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.err(path, f"'{what}' must be a list of strings")
        return list(v)

    def table(self, v: Any, path: tuple, what: str) -> dict[str, float]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.err(path, f"'{what}' must map raw strings to numbers")
        out = {}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise self.err(path + (k,), f"value for {k!r} must be a number, not {x!r}")
            out[str(k)] = float(x)
        return out

    def regex(self, p: Any, path: tuple, what: str) -> str:
        if not isinstance(p, str):
            raise self.err(path, f"{what} must be a string, not {p!r}")
        try:
            safe_regex.check(p)  # the engine the rules run on: linear time, so a refused pattern fails here
        except safe_regex.RegexError as exc:
            raise self.err(path, f"bad regular expression {p!r}: {exc.cause}") from None
        return p


def _feature(d: Any, path: tuple, lines: dict, file: str, numeric: bool,
             review: bool = False) -> FeatureSpec | None:
    ck = _Checker(file, lines)

    def err(msg: str, sub: tuple = ()) -> SpecError:
        return ck.err(path + sub, msg)

    if d is None:
        return None
    if not isinstance(d, dict):
        raise err(f"'{path[-1]}' must be a mapping or null")
    ck.mapping(d, path, _FEATURE_KEYS, str(path[-1]))
    source = d.get("source", "characteristics")
    if source not in SOURCES:
        raise err(f"source must be one of {', '.join(SOURCES)}, not {source!r}", ("source",))
    if source == "none":
        return None
    key, row = d.get("key"), d.get("row")
    if source.startswith("characteristics"):
        if key is None and row is None:
            raise err("a characteristics source needs 'key' or 'row'")
        if key is not None and row is not None:
            raise err("give either 'key' or 'row', not both", ("row",))
        if key is not None and not isinstance(key, str):
            raise err("'key' must be a string", ("key",))
        if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 0):
            raise err("'row' must be a non-negative integer", ("row",))
    elif key is not None or row is not None:
        raise err(f"'key'/'row' only apply to a characteristics source, not {source!r}",
                  ("key" if key is not None else "row",))
    values = ck.table(d.get("values"), path + ("values",), "values")
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
        ck.regex(p, path + ("rules", i), "rule pattern")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise err(f"rule value must be a number, not {v!r}", ("rules", i))
        rules.append((p, float(v)))
    pattern = d.get("pattern")
    if pattern is not None:
        ck.regex(pattern, path + ("pattern",), "'pattern'")
    scale = d.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise err("'scale' must be a number", ("scale",))
    match = d.get("match", "value")
    if match not in MATCHES:
        raise err(f"'match' must be one of {', '.join(MATCHES)}, not {match!r}", ("match",))
    default = ck.number(d.get("default"), path + ("default",), "default")
    missing = ck.number(d.get("missing"), path + ("missing",), "missing")
    if not numeric and not values and not rules and default is None and path[-1] == "trait" and not review:
        # (a cohort flagged for review may hold an imported row whose conversion a person still has to give)
        raise err("the trait needs 'values', 'rules' or 'default' to turn cells into numbers")
    return FeatureSpec(source=source, key=key, row=row, values=values, rules=rules, pattern=pattern,
                       scale=float(scale), match=match, default=default, missing=missing, line=_line(lines, path))


def _expect(ck: _Checker, v: Any, path: tuple) -> dict:
    d = ck.mapping(v, path, _EXPECT_KEYS, "expect")
    out: dict[str, Any] = {}
    for k in ("sample_size", "n_genes"):
        if d.get(k) is not None:
            out[k] = ck.count(d[k], path + (k,), k)
    for k in ("has_age", "has_gender", "is_usable"):
        if d.get(k) is not None:
            out[k] = ck.boolean(d[k], path + (k,), k)
    if d.get("trait_counts") is not None:
        tc = d["trait_counts"]
        if not isinstance(tc, dict):
            raise ck.err(path + ("trait_counts",), "'trait_counts' must map labels to counts")
        out["trait_counts"] = {str(k): ck.count(n, path + ("trait_counts", k), f"trait_counts[{k}]")
                               for k, n in tc.items()}
    return out


def _excluded(ck: _Checker, v: Any, path: tuple) -> dict | None:
    if v is None:
        return None
    d = ck.mapping(v, path, _EXCLUDED_KEYS, "excluded", optional=False)
    out: dict[str, Any] = {"reason": ck.string(d.get("reason"), path + ("reason",), "excluded.reason",
                                               optional=False)}
    if d.get("initial_filter") is not None:
        f = ck.mapping(d["initial_filter"], path + ("initial_filter",), _FILTER_KEYS, "initial_filter")
        out["initial_filter"] = {k: ck.boolean(f.get(k), path + ("initial_filter", k), k, optional=False)
                                 for k in sorted(_FILTER_KEYS)}
    return out


def _cohort(cid: str, c: Any, trait: str, file: str, lines: dict, path: tuple) -> CohortSpec:
    ck = _Checker(file, lines)
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
    rev = ck.mapping(c.get("review"), path + ("review",), _REVIEW_KEYS, "review")
    spec = CohortSpec(trait=trait, cohort=str(cid), kind=kind, file=file, line=cline,
                      confidence=ck.number(rev.get("confidence"), path + ("review", "confidence"), "confidence"),
                      needs_review=bool(ck.boolean(rev.get("needs_review"), path + ("review", "needs_review"),
                                                   "needs_review")),
                      note=ck.string(rev.get("note"), path + ("review", "note"), "note") or "",
                      reasons=ck.strings(rev.get("reasons"), path + ("review", "reasons"), "reasons"))
    spec.excluded = _excluded(ck, c.get("excluded"), path + ("excluded",))
    spec.expect = _expect(ck, c.get("expect"), path + ("expect",))
    imp = ck.mapping(c.get("import"), path + ("import",), _IMPORT_KEYS, "import")
    if imp:
        ck.string(imp.get("notebook"), path + ("import", "notebook"), "import.notebook")
        ck.count(imp.get("cell"), path + ("import", "cell"), "import.cell")
        ck.string(imp.get("class"), path + ("import", "class"), "import.class")
        conv = ck.mapping(imp.get("converters"), path + ("import", "converters"), {"trait", "age", "gender"},
                          "import.converters")
        for k, v in conv.items():
            ck.string(v, path + ("import", "converters", k), f"converters.{k}")
        spec.provenance = dict(imp)
    if kind == "TCGA":
        for k in ("matrix", "platform", "annotation", "trait", "age", "gender"):
            if k in c:
                raise SpecError(file, _line(lines, path + (k,)), f"cohort {cid}: '{k}' does not apply to TCGA")
        t = ck.mapping(c.get("tcga"), path + ("tcga",), _TCGA_KEYS, "tcga")
        if not t.get("directory") and spec.excluded is None:
            raise SpecError(file, _line(lines, path + ("tcga",)) or cline,
                            f"cohort {cid}: a TCGA cohort needs tcga.directory")
        tp = path + ("tcga",)
        spec.tcga_directory = ck.string(t.get("directory"), tp + ("directory",), "tcga.directory")
        spec.age_column = ck.string(t.get("age_column"), tp + ("age_column",), "tcga.age_column")
        spec.gender_column = ck.string(t.get("gender_column"), tp + ("gender_column",), "tcga.gender_column")
        spec.trait_column = ck.string(t.get("trait_column"), tp + ("trait_column",), "tcga.trait_column")
        spec.trait_values = ck.table(t.get("trait_values"), tp + ("trait_values",), "tcga.trait_values")
        if spec.trait_column and not spec.trait_values:
            raise ck.err(tp + ("trait_column",), "tcga.trait_column needs tcga.trait_values")
        unit = t.get("age_unit", "years")
        if unit not in ("years", "days"):
            raise ck.err(tp + ("age_unit",), f"tcga.age_unit must be years or days, not {unit!r}")
        spec.age_unit = unit
    else:
        if "tcga" in c:
            raise SpecError(file, _line(lines, path + ("tcga",)), f"cohort {cid}: 'tcga' only applies to TCGA")
        spec.matrix = ck.string(c.get("matrix"), path + ("matrix",), "matrix")
        spec.platform = ck.string(c.get("platform"), path + ("platform",), "platform")
        ap = path + ("annotation",)
        ann = ck.mapping(c.get("annotation"), ap, _ANNOTATION_KEYS, "annotation")
        spec.id_column = ck.string(ann.get("id_column"), ap + ("id_column",), "annotation.id_column") or "ID"
        spec.gene_column = ck.string(ann.get("gene_column"), ap + ("gene_column",), "annotation.gene_column")
        spec.symbols = ck.boolean(ann.get("symbols"), ap + ("symbols",), "annotation.symbols")
        parser = ann.get("parser", "text")
        if parser not in PARSERS:
            raise ck.err(ap + ("parser",), f"annotation.parser must be one of {', '.join(PARSERS)}, not {parser!r}")
        spec.parser = parser
        if "trait" not in c and spec.excluded is None:
            raise SpecError(file, cline, f"cohort {cid}: 'trait' is required (use source: none if absent)")
        spec.trait_spec = _feature(c.get("trait"), path + ("trait",), lines, file, numeric=False,
                                   review=spec.needs_review)
        spec.age = _feature(c.get("age"), path + ("age",), lines, file, numeric=True)
        spec.gender = _feature(c.get("gender"), path + ("gender",), lines, file, numeric=True)
    corr = c.get("corrections")
    if corr is not None:
        if not isinstance(corr, list):
            raise ck.err(path + ("corrections",), "'corrections' must be a list")
        for i, item in enumerate(corr):
            ip = path + ("corrections", i)
            d = ck.mapping(item, ip, _CORRECTION_KEYS, "correction", optional=False)
            fld = d.get("field")
            if fld not in CORRECTABLE:
                raise ck.err(ip + ("field",), f"correction field must be one of {', '.join(CORRECTABLE)}, "
                                              f"not {fld!r}")
            ck.string(d.get("reason"), ip + ("reason",), "correction reason", optional=False)
            if fld == "excluded":
                spec.genotex["excluded"] = _excluded(ck, d.get("genotex"), ip + ("genotex",))
            elif kind == "GEO":
                spec.genotex[fld] = _feature(d.get("genotex"), ip + ("genotex",), lines, file,
                                             numeric=fld != "trait")
            spec.corrections.append(dict(d))
    return spec


def parse_specs(text: str, file: str = "<string>") -> dict[str, CohortSpec]:
    """Validate one trait's spec text; returns ``{cohort: CohortSpec}``.  Raises :class:`SpecError`."""
    lines: dict[tuple, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # one line: PyYAML's own text spans several (context, snippet, caret); keep its two phrases
        what = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
        where = f" (column {mark.column + 1})" if mark else ""
        raise SpecError(file, mark.line + 1 if mark else None,
                        f"YAML syntax: {what or type(exc).__name__}{where}") from None
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
    return {str(cid): _cohort(str(cid), c, trait, file, lines, ("cohorts", cid)) for cid, c in cohorts.items()}


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
