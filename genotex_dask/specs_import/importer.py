"""One notebook -> one cohort spec mapping (decisions, golden values, corrections, provenance, review reasons).

Import classes: ``clean`` (every decision resolved, every table checked: no review needed), ``review`` (a spec
was written but a person should look: each reason is named), ``excluded`` (GenoTEX's own decision that the
cohort is not usable before any processing, e.g. no trait row), ``unimportable`` (no spec: the reason says why).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genotex_dask.specs_import import convert as conv
from genotex_dask.specs_import.notebooks import Notebook
from genotex_dask.specs_import.resolve import (
    DICT_CAP,
    UNKNOWN,
    Call,
    FuncRef,
    Origin,
    Resolution,
    parse_printed_dict,
    resolve,
)

FEMALE = re.compile(r"female|\bwom[ae]n\b|\bf\b", re.I)


@dataclass
class Imported:
    trait: str
    cohort: str
    notebook: str
    klass: str                                   # clean | review | excluded | unimportable
    spec: dict[str, Any] | None = None           # the cohort's YAML mapping (None when unimportable)
    reasons: list[str] = field(default_factory=list)


def _reason(reasons: list[str], text: str) -> None:
    if text not in reasons:
        reasons.append(text)


# ---- printed golden values -------------------------------------------------------------------------------

_RARE = re.compile(r"For the feature '([^'\n]+)', the least common label is '([^'\n]*)' with (\d+) occurrences\. "
                   r"This represents ([0-9.]+)% of the dataset")
_BIASED = re.compile(r"The distribution of the feature '([^'\n]+)' in this dataset is severely biased")
_QUART = re.compile(r"Quartiles for '([^'\n]+)'")
_SHAPE_AFTER = re.compile(r"after handling missing values[^\n(]*\((\d+),\s*(\d+)\)", re.I)
_GENES = [re.compile(p, re.I) for p in (
    r"normali[sz]ed gene (?:data |expression data )?shape[^\n(]*\((\d+),\s*\d+\)",
    r"gene (?:expression )?data shape after normali[sz]ation[^\n(]*\((\d+),\s*\d+\)",
    r"normali[sz]ed gene count:?\s*(\d+)",
    r"after normali[sz]ation[^\n(]*\((\d+),\s*\d+\)",
    r"genes? after normali[sz]ation:?\s*(\d+)")]
_NOT_USABLE = re.compile(r"not usable|abnormality detected|preprocessing failed|severely biased", re.I)


def golden(nb: Notebook, trait: str, cohort: str, has_age: bool, has_gender: bool) -> dict[str, Any]:
    """GenoTEX's printed outcome of the cohort (what its last run printed); only values actually printed."""
    text = "\n".join(c.output for c in nb.executed_cells())
    exp: dict[str, Any] = {}
    rare = [m for m in _RARE.finditer(text) if m.group(1) == trait]
    quart = [m for m in _QUART.finditer(text) if m.group(1) == trait]
    n = None
    if rare:
        m = rare[-1]
        k, pct = int(m.group(3)), float(m.group(4))
        if pct > 0:
            n = int(round(k * 100.0 / pct))
            lab = _label(m.group(2))
            counts = {lab: k}
            if n - k > 0 and lab in ("0", "1"):
                counts["1" if lab == "0" else "0"] = n - k
            exp["trait_counts"] = dict(sorted(counts.items()))
    shapes = list(_SHAPE_AFTER.finditer(text))
    if shapes:
        n = int(shapes[-1].group(1)) if n is None else n
    biased = {m.group(1) for m in _BIASED.finditer(text)}
    if quart and not rare and n:
        mm = re.search(r"Min: ([0-9.eE+-]+)\s*\n\s*Max: ([0-9.eE+-]+)", text[quart[-1].end():])
        if mm and mm.group(1) == mm.group(2):   # a constant trait: every sample has the one label
            exp["trait_counts"] = {_label(mm.group(1)): n}
    linked_saved = re.search(rf"saved to \S*/{re.escape(trait)}/{re.escape(cohort)}\.csv", text) is not None
    failed = trait in biased or "Abnormality detected" in text
    if rare or quart or shapes or failed or linked_saved or _NOT_USABLE.search(text):
        usable = linked_saved or (trait not in biased and not _NOT_USABLE.search(text) and n not in (None, 0))
        if failed:
            usable = False
        exp["is_usable"] = bool(usable)
        if n and "Abnormality detected" not in text:   # GenoTEX records these for every available cohort
            exp["sample_size"] = n
            exp["has_age"] = bool(has_age and "Age" not in biased)
            exp["has_gender"] = bool(has_gender and "Gender" not in biased)
    for rx in _GENES:
        hits = list(rx.finditer(text))
        if hits:
            exp["n_genes"] = int(hits[-1].group(1))
            break
    return exp


def _label(s: str) -> str:
    try:
        f = float(s)
        return str(int(f)) if f.is_integer() else s
    except ValueError:
        return s


# ---- GEO -------------------------------------------------------------------------------------------------

def _printed_characteristics(res: Resolution, before_cell_order: int | None) -> dict | None:
    """The last printed Sample Characteristics Dictionary (executed before the decision, when known)."""
    found = None
    for c in res.notebook.executed_cells():
        if before_cell_order is not None and c.execution_count > before_cell_order:
            break
        if "Characteristics Dictionary" in c.output or "characteristics dictionary" in c.output.lower():
            d = parse_printed_dict(c.output, _marker(c.output))
            if d is not None:
                found = d
    return found


def _marker(text: str) -> str:
    m = re.search(r"sample characteristics dictionary:?", text, re.I)
    return m.group(0) if m else "Sample Characteristics Dictionary"


def _row(v: Any) -> int | None | Any:
    if v is None:
        return None
    if isinstance(v, bool) or v is UNKNOWN:
        return UNKNOWN
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return UNKNOWN


def _feature(name: str, call: Call, row_arg: str, conv_arg: str, printed: dict | None,
             matrix_rows: Callable[[], list[list[str]] | None] | None, reasons: list[str], digests: dict,
             source: str) -> tuple[dict | None, conv.Converted | None]:
    row = _row(call.args.get(row_arg))
    if row is None:
        return None, None
    if row is UNKNOWN:
        _reason(reasons, f"{name}: row is not a literal at the last geo_select_clinical_features call")
        return None, None
    fn = call.args.get(conv_arg)
    spec: dict[str, Any] = {"source": source, "row": row, "match": "cell"}
    if not isinstance(fn, FuncRef):
        _reason(reasons, f"{name}: converter is not a function defined in the notebook")
        return spec, None
    vals = printed.get(row) if printed else None
    capped = vals is None or len(vals) >= DICT_CAP
    cells = None
    rows = matrix_rows() if capped and matrix_rows is not None else None   # read only when needed
    if rows is not None and row < len(rows):
        cells = rows[row]
    if vals is None and cells is None:
        _reason(reasons, f"{name}: no printed values for row {row} and no series matrix under --root")
        return spec, None
    c = conv.convert(fn.name, call.funcs, call.consts, vals, capped, cells, name != "trait")
    digests[name] = c.digest
    for r in c.reasons:
        _reason(reasons, f"{name}: {r}")
    if c.reasons and not c.values and c.numeric is None:
        return spec, c
    if c.numeric and name == "age":
        spec["pattern"] = c.numeric["pattern"]
        if c.numeric["scale"] != 1.0:
            spec["scale"] = c.numeric["scale"]
    if c.values and not (c.numeric and name == "age"):   # the rule reproduces every value (checked)
        spec["values"] = dict(sorted(c.values.items()))
    if c.default is not None:
        spec["default"] = c.default
    if c.missing is not None:
        spec["missing"] = c.missing
    if name == "trait" and not c.values and c.default is None:
        _reason(reasons, "trait: the converter maps no printed value to a number")
    elif name == "trait" and len(set(c.values.values()) | ({c.default} if c.default is not None else set())) == 1 \
            and len(vals or []) > 1:
        _reason(reasons, "trait: the converter gives every printed value the same label")
    return spec, c


def _female_bug(spec: dict | None) -> dict | None:
    """GenoTEX's ``'male' in value`` before ``'female'``: female cells mapped to 1.  Returns the corrected spec."""
    if not spec or not spec.get("values"):
        return None
    vals = spec["values"]
    bad = [k for k, v in vals.items() if v == 1.0 and FEMALE.search(k.split(":", 1)[-1])]
    if not bad:
        return None
    fixed = dict(spec)
    fixed["values"] = {k: (0.0 if k in bad else v) for k, v in vals.items()}
    return fixed


def _preview_check(res: Resolution, call: Call, features: list[tuple[str, conv.Converted | None]],
                   reasons: list[str]) -> None:
    """A printed preview of the selected features (``{'GSM1': [trait, age, gender], ...}``) that the imported
    decision cannot have produced: another number of feature rows, or a value no table entry gives."""
    cell = next((c for c in res.notebook.cells if c.index == call.cell), None)
    if cell is None:
        return
    m = re.search(r"(?:preview|clinical features)[^\n{]*:\s*\n?\s*(\{'GSM)", cell.output, re.I)
    d = parse_printed_dict("X" + cell.output[m.start(1):], "X") if m else None
    if not d:
        return
    rows = [v for v in d.values() if isinstance(v, list)]
    widths = {len(v) for v in rows}
    if widths and widths != {len(features)}:
        _reason(reasons, f"edited after execution: the printed preview has {sorted(widths)} feature rows, "
                         f"the code selects {len(features)}")
        return
    for i, (name, c) in enumerate(features):
        if c is None or c.domain != "printed" or c.numeric is not None or c.reasons:
            continue
        allowed = set(c.values.values()) | {x for x in (c.default, c.missing) if x is not None}
        shown = {float(r[i]) for r in rows if isinstance(r[i], (int, float)) and not isinstance(r[i], bool)}
        extra = sorted(shown - allowed)
        if extra:
            _reason(reasons, f"edited after execution: the printed preview shows {name} = {extra[0]:g}, "
                             "which the imported converter gives no printed value")


def import_geo(nb: Notebook, trait: str, cohort: str,
               matrix_rows: list[list[str]] | Callable[[], list[list[str]] | None] | None = None) -> Imported:
    """``matrix_rows``: the unique cells per characteristics row of the cohort's own series matrix (or a function
    returning them, called only when a printed row is capped or absent)."""
    if matrix_rows is not None and not callable(matrix_rows):
        rows_given = matrix_rows
        matrix_rows = lambda: rows_given  # noqa: E731
    elif matrix_rows is not None:
        matrix_rows = functools.cache(matrix_rows)
    res = resolve(nb)
    imp = Imported(trait, cohort, nb.path, "review")
    reasons = imp.reasons
    call = res.last("geo_select_clinical_features")
    init = res.last("validate_and_save_cohort_info", lambda c: c.args.get("is_final") is False)
    final = res.last("validate_and_save_cohort_info", lambda c: c.args.get("is_final") is True)
    if not nb.executed_cells():
        imp.klass = "unimportable"
        reasons.append("notebook never executed" if nb.cells else "notebook is empty")
        return imp
    prov: dict[str, Any] = {"notebook": nb.path, "cell": call.cell if call else (init.cell if init else None)}
    for i in res.unparsed:
        _reason(reasons, f"executed cell {i} cannot be parsed (not Python, or nested too deeply); its decisions "
                         "are not seen")
    if call is None:
        # GenoTEX's initial filter: no trait row (or no gene data) -> cohort recorded as not usable
        if init is not None:
            g, t = init.args.get("is_gene_available", UNKNOWN), init.args.get("is_trait_available", UNKNOWN)
            if g is not UNKNOWN and t is not UNKNOWN and not (g and t):
                imp.klass = "excluded"
                why = "no gene expression data" if not g else "no trait information"
                imp.spec = {"excluded": {"reason": f"GenoTEX's initial filter: {why}",
                                         "initial_filter": {"is_gene_available": bool(g),
                                                            "is_trait_available": bool(t)}},
                            "import": {**prov, "class": "excluded"}}
                return imp
        imp.klass = "unimportable"
        if res.unparsed:
            return imp
        if init is not None and (init.args.get("is_gene_available") is UNKNOWN or
                                 init.args.get("is_trait_available") is UNKNOWN):
            reasons.append("initial filter arguments are not literals and geo_select_clinical_features never ran")
        elif final is not None:
            reasons.append("clinical features built by the notebook's own code (no geo_select_clinical_features)")
        else:
            reasons.append("no executed geo_select_clinical_features call and no outcome")
        return imp
    if call.conditional:
        _reason(reasons, "the last geo_select_clinical_features call is inside a branch that cannot be decided")
    printed = _printed_characteristics(res, None)
    if printed is None:
        _reason(reasons, "no printed Sample Characteristics Dictionary")
    source = "characteristics"
    pre = [p for p in res.prefixes if isinstance(p, list)]
    if pre:
        last = [str(x) for x in pre[-1]]
        ch1 = any("characteristics_ch1" in x for x in last)
        ch2 = any("characteristics_ch2" in x for x in last)
        if ch2 and not ch1:
            source = "characteristics_ch2"
        elif ch2 and ch1:
            _reason(reasons, "characteristics rows of channels 1 and 2 read as one table")
    digests: dict[str, str] = {}
    spec: dict[str, Any] = {}
    corrections: list[dict] = []
    t, tc = _feature("trait", call, "trait_row", "convert_trait", printed, matrix_rows, reasons, digests, source)
    a, ac = _feature("age", call, "age_row", "convert_age", printed, matrix_rows, reasons, digests, source)
    g, gc = _feature("gender", call, "gender_row", "convert_gender", printed, matrix_rows, reasons, digests, source)
    if t is None:
        imp.klass = "unimportable"
        _reason(reasons, "no trait decision")
        return imp
    spec["trait"] = t
    spec["age"] = a
    fixed = _female_bug(g)
    if fixed is not None:
        corrections.append({"field": "gender", "reason": "GenoTEX's converter tests 'male' in the cell before "
                            "'female', so female cells became 1", "genotex": g})
        g = fixed
    spec["gender"] = g
    origin = call.args.get("clinical_df")
    exp = golden(nb, trait, cohort, a is not None, g is not None)
    from_matrix = isinstance(origin, Origin) and origin.kind == "matrix"
    if not from_matrix and exp.get("is_usable") is False:
        how = "typed from the printed characteristics dictionary" if isinstance(origin, Origin) and \
            origin.kind == "printed" else "not read from the series matrix"
        corrections.append({"field": "excluded", "reason": f"GenoTEX's clinical table was {how}, so its rows or "
                            "sample IDs did not match the series matrix (published: not usable); corrected: the "
                            "decided rows are read from the series matrix", "genotex": {
                                "reason": f"clinical table {how} (published: not usable)"}})
    elif not from_matrix:
        _reason(reasons, "clinical table not read from the series matrix at the last geo_select_clinical_features "
                         "call (published outcome usable or unknown)")
    if exp.get("is_usable") is False:   # a constant trait is what GenoTEX published as biased / not usable
        same = "trait: the converter gives every printed value the same label"
        if same in reasons:
            reasons.remove(same)
    _preview_check(res, call, [("trait", tc)] + ([("age", ac)] if a is not None else []) +
                   ([("gender", gc)] if g is not None else []), reasons)
    spec["annotation"] = _annotation(res, reasons)
    if spec["annotation"] is None:
        del spec["annotation"]
    if final is None and not exp:
        _reason(reasons, "no printed outcome (final validation never ran)")
    if exp:
        spec["expect"] = exp
    if corrections:
        spec["corrections"] = corrections
    imp.klass = "review" if reasons else "clean"
    spec["import"] = {**prov, "converters": digests, "class": imp.klass}
    spec["review"] = {"needs_review": bool(reasons), **({"reasons": list(reasons)} if reasons else {})}
    imp.spec = spec
    return imp


def _annotation(res: Resolution, reasons: list[str]) -> dict | None:
    gm = res.last("get_gene_mapping")
    apply = res.last("apply_gene_mapping")
    if gm is not None:
        pc, gc = gm.args.get("prob_col", UNKNOWN), gm.args.get("gene_col", UNKNOWN)
        if not isinstance(gc, str):
            _reason(reasons, "get_gene_mapping gene column is not a literal")
            return None
        ann: dict[str, Any] = {}
        if isinstance(pc, str) and pc != "ID":
            ann["id_column"] = pc
        ann["gene_column"] = gc
        if gc.lower().replace(" ", "_") == "gene_assignment":
            ann["parser"] = "gene_assignment"
        return ann
    if apply is not None:
        _reason(reasons, "probes mapped with the notebook's own mapping table")
        return None
    needs = res.values.get("requires_gene_mapping")
    if needs is False or res.last("normalize_gene_symbols_in_index") is not None:
        return {"symbols": True}
    _reason(reasons, "no gene mapping decision found")
    return None


# ---- TCGA ------------------------------------------------------------------------------------------------

def import_tcga(nb: Notebook, trait: str) -> Imported:
    res = resolve(nb)
    imp = Imported(trait, "TCGA", nb.path, "review")
    reasons = imp.reasons
    if not nb.executed_cells():
        imp.klass = "unimportable"
        reasons.append("notebook never executed" if nb.cells else "notebook is empty")
        return imp
    call = res.last("tcga_select_clinical_features")
    init = res.last("validate_and_save_cohort_info", lambda c: c.args.get("is_final") is False)
    prov: dict[str, Any] = {"notebook": nb.path, "cell": call.cell if call else (init.cell if init else None)}
    if call is None:
        if init is not None and (init.args.get("is_gene_available") is False or
                                 init.args.get("is_trait_available") is False):
            imp.klass = "excluded"
            g, t = init.args.get("is_gene_available"), init.args.get("is_trait_available")
            imp.spec = {"excluded": {"reason": "GenoTEX's initial filter: no matching TCGA cohort",
                                     "initial_filter": {"is_gene_available": bool(g) if g is not UNKNOWN else False,
                                                        "is_trait_available": bool(t) if t is not UNKNOWN
                                                        else False}},
                        "import": {**prov, "class": "excluded"}}
            return imp
        imp.klass = "unimportable"
        reasons.append("no executed tcga_select_clinical_features call")
        return imp
    clin = call.args.get("clinical_df")
    norm = res.last("normalize_gene_symbols_in_index")
    gene = norm.args.get("gene_df") if norm else None
    cdir = clin.where if isinstance(clin, Origin) and clin.kind == "tcga_clinical" else None
    gdir = gene.where if isinstance(gene, Origin) and gene.kind == "tcga_genetic" else None
    if gdir is None:   # the expression frame was reshaped before normalization: the last expression file read
        gdir = next((o.where for o in reversed(res.reads) if o.kind == "tcga_genetic"), None)
    directory = cdir or gdir
    if directory is None:
        _reason(reasons, "TCGA directory could not be resolved")
        imp.klass = "unimportable"
        return imp
    tc: dict[str, Any] = {"directory": directory}
    corrections: list[dict] = []
    for key, arg in (("age_column", "age_col"), ("gender_column", "gender_col")):
        v = call.args.get(arg)
        if v is UNKNOWN:
            _reason(reasons, f"{arg} is not a literal")
        elif v is not None:
            tc[key] = v
    if tc.get("age_column") == "days_to_birth":
        tc["age_unit"] = "days"
    if call.conditional:
        _reason(reasons, "the tcga_select_clinical_features call is inside a branch that cannot be decided")
    if cdir and gdir and cdir != gdir:
        corrections.append({"field": "excluded", "reason": f"GenoTEX read the gene data from {gdir} and the "
                            f"clinical data from {cdir}: no sample matched (published: not usable); corrected: "
                            f"both from {cdir}", "genotex": {"reason": f"gene data from {gdir}, clinical from "
                                                              f"{cdir}"}})
    elif gdir is None:
        _reason(reasons, "gene data directory could not be resolved")
    spec: dict[str, Any] = {"tcga": tc}
    exp = golden(nb, trait, "TCGA", "age_column" in tc, "gender_column" in tc)
    if exp:
        spec["expect"] = exp
    if corrections:
        spec["corrections"] = corrections
    imp.klass = "review" if reasons else "clean"
    spec["import"] = {**prov, "class": imp.klass}
    spec["review"] = {"needs_review": bool(reasons), **({"reasons": list(reasons)} if reasons else {})}
    imp.spec = spec
    return imp
