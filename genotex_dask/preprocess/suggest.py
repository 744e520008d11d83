"""Propose cohort specs from what a series says about its samples, with a confidence and a review flag.

Order of evidence (GenoTEX's curators look in the same places):

1. characteristics rows: every ``key: value`` key across rows is a candidate.  Age keys (``age``, ``age (yrs)``,
   ``age at diagnosis``...) with numbers and sex keys (``sex``/``gender``) are taken as Age/Gender.  The trait key
   is the best-scoring remaining key: disease-like key names (disease, diagnosis, status, group, histology,
   sample/tissue type...), values that read as controls (healthy, control, normal, non-tumour, adjacent...) and
   values that name the trait (its words or initials, cancer words for a cancer trait).  Control values map to
   0, every other value to 1.
2. otherwise source names, then titles: after removing numbers and bracketed tags, exactly one control
   template and one or more case templates.
3. otherwise no trait (``source: none``): GenoTEX would record the cohort as trait-unavailable.

TCGA cohorts take the barcode trait and the usual Xena columns.  Confidence is high only when both classes
appear under a disease-like key; one-class keys, source names and titles are flagged for review.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genotex_dask.preprocess.clinical import cell_key, cell_value
from genotex_dask.preprocess.specs import CohortSpec, FeatureSpec

CONTROL = re.compile(
    r"\b(healthy|controls?|normal|non[- ]?tumou?r(al)?|non[- ]?cancer(ous)?|non[- ]?malignant|unaffected|"
    r"adjacent|benign|donors?|ctrl|HC|NC|non[- ]?diseased?|wild[- ]?type|untreated)\b", re.IGNORECASE)
CANCER_WORDS = re.compile(r"(carcinoma|cancer|tumou?r|malignan|neoplas|adenoma|sarcoma|lymphoma|leukemia|"
                          r"melanoma|glioma|blastoma|metasta)", re.IGNORECASE)
DISEASE_KEY = re.compile(r"(disease|diagnos|status|state|group|condition|phenotype|histolog|sample type|"
                         r"tissue type|subject|class|case|patient type|cohort|affected|pathology|tumou?r)",
                         re.IGNORECASE)
AGE_KEY = re.compile(r"^\s*age\b|\bage\s*\(|\bage at\b|^\s*age_", re.IGNORECASE)
SEX_KEY = re.compile(r"^\s*(sex|gender)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CANCER_TRAIT = re.compile(r"(cancer|carcinoma|tumou?r|oma$|oma_|leukemia|melanoma)", re.IGNORECASE)

AGE_COLUMNS = ("age_at_initial_pathologic_diagnosis", "age_at_diagnosis", "age")
GENDER_COLUMNS = ("gender", "sex")


def trait_words(trait: str) -> re.Pattern[str]:
    """A pattern for values naming the trait: its words (>= 4 letters, stem of 5), or its initials."""
    words = [w for w in re.split(r"[_\s'-]+", trait) if w]
    alts = []
    for w in words:
        if len(w) >= 4:
            alts.append(re.escape(w[:5].lower()))
    initials = "".join(w[0] for w in words if w[0].isalpha())
    if len(initials) >= 2:
        alts.append(r"\b" + re.escape(initials.lower()) + r"\b")
    if CANCER_TRAIT.search(trait):
        alts.append(CANCER_WORDS.pattern)
    return re.compile("|".join(alts) if alts else r"(?!x)x", re.IGNORECASE)


def _template(s: str) -> str:
    s = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", s)
    s = re.sub(r"\d+", " ", s)
    return " ".join(s.lower().split())


def _group_keys(rows: Sequence[Sequence[object]]) -> dict[str, list[str]]:
    """{key as written (first spelling): [raw cells]} over every characteristics row."""
    out: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for r in rows:
        for c in r:
            k = cell_key(c)
            if k is None:
                continue
            name = spelled.setdefault(k, str(c).split(":", 1)[0].strip())
            out.setdefault(name, []).append(str(c))
    return out


def _classify(values: Sequence[str], tw: re.Pattern[str]) -> tuple[dict[str, float], bool, bool]:
    """value -> 0/1 (control words first), and whether controls / trait-named cases were seen."""
    mapping: dict[str, float] = {}
    has_ctrl = has_case = False
    for v in values:
        if CONTROL.search(v):
            mapping[v] = 0.0
            has_ctrl = True
        else:
            mapping[v] = 1.0
            has_case = has_case or bool(tw.search(v))
    return mapping, has_ctrl, has_case


def suggest_geo(trait: str, cohort: str, titles: Sequence[str], sources: Sequence[str],
                char_rows: Sequence[Sequence[object]], matrix: str | None = None, platform: str | None = None,
                gene_column: str | None = None, symbols: bool | None = None) -> CohortSpec:
    """A proposed spec for one GEO cohort (see the module doc for the evidence order)."""
    tw = trait_words(trait)
    spec = CohortSpec(trait=trait, cohort=cohort, kind="GEO", matrix=matrix, platform=platform,
                      gene_column=gene_column, symbols=symbols)
    keys = _group_keys(char_rows)
    notes: list[str] = []
    best: tuple[float, str, dict[str, float], bool, bool] | None = None
    for key, cells in keys.items():
        vals = sorted({v for v in (cell_value(c) for c in cells) if v})
        if AGE_KEY.search(key) and sum(bool(NUMBER.search(v)) for v in vals) >= max(1, len(vals) // 2):
            if spec.age is None:
                spec.age = FeatureSpec(source="characteristics", key=key)
            continue
        if SEX_KEY.search(key):
            if spec.gender is None:
                spec.gender = FeatureSpec(source="characteristics", key=key)
            continue
        if not vals:
            continue
        mapping, has_ctrl, has_case = _classify(vals, tw)
        score = (2.0 if len(vals) >= 2 else 0.0) + (2.0 if has_ctrl else 0.0) + (2.0 if has_case else 0.0) \
            + (1.0 if DISEASE_KEY.search(key) else 0.0)
        if not (has_ctrl or has_case):
            continue
        if len(vals) > 12:  # free text per sample, not a label
            continue
        if best is None or score > best[0]:
            best = (score, key, mapping, has_ctrl, has_case)
    if best is not None and best[0] >= 3:
        score, key, mapping, has_ctrl, has_case = best
        spec.trait_spec = FeatureSpec(source="characteristics", key=key, values=mapping)
        both = has_ctrl and any(v == 1.0 for v in mapping.values())
        spec.confidence = 0.95 if (both and DISEASE_KEY.search(key)) else (0.8 if both else 0.5)
        if not both:
            notes.append("only one trait class among the values: check that the cohort is really one-sided")
        spec.needs_review = spec.confidence < 0.8
    else:
        for source, texts in (("source_name", sources), ("title", titles)):
            found = _from_texts(texts, tw)
            if found is not None:
                mapping, conf = found
                spec.trait_spec = FeatureSpec(source=source, rules=mapping)
                spec.confidence = conf
                spec.needs_review = True
                notes.append(f"trait read from the {source.replace('_', ' ')}s: check the rules")
                break
        else:
            spec.trait_spec = None
            spec.confidence = 0.6
            spec.needs_review = True
            notes.append("no trait information found in characteristics, source names or titles")
    spec.note = "; ".join(notes)
    return spec


def _from_texts(texts: Sequence[str], tw: re.Pattern[str]) -> tuple[list[tuple[str, float]], float] | None:
    """Ordered rules from source names/titles when they split into one control and some case templates."""
    templates = sorted({_template(t) for t in texts if t})
    if len(templates) < 2 or len(templates) > 6:
        return None
    ctrl = [t for t in templates if CONTROL.search(t)]
    case = [t for t in templates if not CONTROL.search(t)]
    if not ctrl or not case:
        return None
    def pat(t: str) -> str:  # the template's words in order, any punctuation/numbers between them
        return r"\b" + r"[\W\d_]+".join(re.escape(w) for w in t.split()) + r"\b"

    rules = [(pat(t), 0.0) for t in ctrl] + [(pat(t), 1.0) for t in case]
    conf = 0.8 if any(tw.search(t) for t in case) else 0.6
    return rules, conf


def suggest_tcga(trait: str, directory: str, clinical_columns: Sequence[str]) -> CohortSpec:
    """Barcode trait plus the usual Xena age/gender columns when present."""
    cols = {c.lower(): c for c in clinical_columns}
    age = next((cols[c] for c in AGE_COLUMNS if c in cols), None)
    gender = next((cols[c] for c in GENDER_COLUMNS if c in cols), None)
    missing = [n for n, v in (("age", age), ("gender", gender)) if v is None]
    return CohortSpec(trait=trait, cohort="TCGA", kind="TCGA", tcga_directory=directory, age_column=age,
                      gender_column=gender, confidence=0.95 if not missing else 0.8, needs_review=bool(missing),
                      note=("no " + " or ".join(missing) + " column") if missing else "")
