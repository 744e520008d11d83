"""Propose cohort specs from what a series says about its samples, with a confidence and a review flag.

Order of evidence (GenoTEX's curators look in the same places):

1. characteristics: every ``key: value`` key across rows is a field, and so is every row whose cells carry no
   key (``female`` / ``male``, ``Old Control`` / ``Parkinson's Disease``), read by its position.  Age keys
   (``age``, ``age (yrs)``, ``age at diagnosis``...) with numbers are Age; sex keys, or any field whose values
   are all female/male words, are Gender.  The trait is the best-scoring remaining field: controls (healthy,
   control, normal, non-tumour, adjacent...) -> 0 and the class naming the trait most specifically (its words,
   its initials, cancer words for a cancer trait, or an abbreviation of such a class, e.g. ``HCC``) -> 1.  Any
   other class (the other disease of a RA / OA / healthy series) is left out, never folded into the cases, and
   the cohort is flagged for review with the classes and their counts.
2. otherwise source names, then titles: grouped by template (numbers and bracketed tags removed), classified
   the same way; rules use letter boundaries (a title ``Control_1`` still matches) and are kept only if they
   reproduce their classes on the titles they came from, else the exact texts are listed.
3. otherwise no trait (``source: none``): GenoTEX would record the cohort as trait-unavailable.

Every suggestion is applied to the cohort's own cells before it is returned: the confidence is the evidence's
strength (0.95 for controls vs a class naming the trait under a disease-like key, 0.8 for other two-class
fields, at most 0.6 with classes left out, 0.5 for one class) times the share of samples the rules label, and
rules that label nothing are dropped.  TCGA cohorts take the barcode trait and the usual Xena columns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np

from genotex_dask.preprocess.clinical import (
    DEFAULT_GENDER_RULES,
    DEFAULT_NUMBER,
    apply_rules,
    cell_key,
    cell_value,
    compile_rules,
    parse_number,
    select_characteristic,
)
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


def _trait_alternatives(trait: str) -> list[str]:
    """Patterns for values naming the trait: its words (>= 4 letters, stem of 5), its initials, cancer words."""
    words = [w for w in re.split(r"[_\s'-]+", trait) if w]
    alts = [re.escape(w[:5].lower()) for w in words if len(w) >= 4]
    initials = "".join(w[0] for w in words if w[0].isalpha())
    if len(initials) >= 2:
        alts.append(r"\b" + re.escape(initials.lower()) + r"\b")
    if CANCER_TRAIT.search(trait):
        alts.append(CANCER_WORDS.pattern)
    return alts




def trait_score(trait: str) -> Callable[[str], int]:
    """How many of the trait's words/initials a value names: 'rheumatoid arthritis' scores 2 for
    Rheumatoid_Arthritis, 'osteoarthritis' only 1 (its 'arthr'), so the more specific class wins."""
    pats = [re.compile(a, re.IGNORECASE) for a in _trait_alternatives(trait)]
    return lambda v: sum(bool(p.search(v)) for p in pats)


GENDER_VALUE = re.compile(r"^\s*(f|m|female|male|woman|man|women|men|girl|boy)\s*$", re.IGNORECASE)
MAX_CLASSES = 12          # more distinct values than this is free text per sample, not a label


def _template(s: str) -> str:
    """A title/source name without sample numbers and bracketed tags, as lower-case words."""
    s = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", s)
    return " ".join(re.findall(r"[a-z]+", s.lower()))


def _template_pattern(t: str) -> str:
    """The template's words in order with anything but letters between them; letter boundaries instead of \\b
    (a word next to a digit or '_' , as in 'ND_1', must still match), written without lookaround so that the
    rule runs on the linear-time engine that specs use (:mod:`genotex_dask.safe_regex`)."""
    return r"(?:^|[^a-z])" + r"[^a-z]+".join(re.escape(w) for w in t.split()) + r"(?:[^a-z]|$)"


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


def _keyless_rows(rows: Sequence[Sequence[object]]) -> list[int]:
    """Rows whose cells mostly carry no ``key:`` prefix (``female``, ``Old Control``): read by position."""
    out = []
    for i, r in enumerate(rows):
        present = [c for c in r if c is not None and str(c).strip()]
        if present and sum(cell_key(c) is None for c in present) * 2 > len(present):
            out.append(i)
    return out


@dataclass
class _Field:
    """One place a per-sample label can come from, and what its cells read."""

    source: str                 # characteristics | source_name | title
    key: str | None = None
    row: int | None = None
    cells: list = dc_field(default_factory=list)

    @property
    def strip(self) -> bool:
        return self.source == "characteristics"

    def values(self) -> list[str | None]:
        return [cell_value(c, self.strip) for c in self.cells]

    def feature(self, **kw) -> FeatureSpec:
        return FeatureSpec(source=self.source, key=self.key, row=self.row if self.key is None else None, **kw)

    def label(self) -> str:
        if self.source != "characteristics":
            return self.source.replace("_", " ")
        return f"characteristics key {self.key!r}" if self.key is not None else f"characteristics row {self.row}"


def _count(values: Sequence[str | None]) -> Counter:
    return Counter(v for v in values if v)


def _apply(spec: FeatureSpec, f: _Field, gender: bool = False) -> np.ndarray:
    """What a suggested feature spec gives on the cohort's own cells (the same rules preprocess applies)."""
    out = np.full(len(f.cells), np.nan)
    if spec.values:
        lut = {k.strip().lower(): v for k, v in spec.values.items()}
        for i, v in enumerate(f.values()):
            if v is not None and v.lower() in lut:
                out[i] = lut[v.lower()]
    rules = spec.rules or (DEFAULT_GENDER_RULES if gender and not spec.values else [])
    if rules:
        ruled = apply_rules(f.cells, compile_rules(rules), f.strip)
        out = np.where(np.isnan(out), ruled, out)
    return out


@dataclass
class _Choice:
    """A field's reading as the trait: value -> 0/1 for the mapped classes, and why."""

    field: _Field
    mapping: dict[str, float]
    score: float
    base: float                  # confidence when every sample is labelled
    notes: list[str]
    review: bool


ABBREVIATION = re.compile(r"^[A-Za-z]{0,2}[A-Z]{2,6}$")


def abbreviates(short: str, long: str) -> bool:
    """'HCC' / 'ccRCC' / 'LUAD' stand for 'hepatocellular carcinoma' / 'clear cell renal cell carcinoma' /
    'lung adenocarcinoma': a short capitalised token whose letters start the long text and follow in it in order."""
    s = short.strip()
    if not ABBREVIATION.match(s):
        return False
    letters = [ch for ch in long.lower() if ch.isalpha()]
    want = s.lower()
    if not letters or letters[0] != want[0]:
        return False
    it = iter(letters)
    return all(ch in it for ch in want)


def _classes_note(counts: Counter, mapping: dict[str, float]) -> str:
    parts = [f"{v!r} ({n}{'' if v in mapping else ', left out'})" for v, n in counts.most_common()]
    return f"{len(counts)} classes in the {{}}: " + ", ".join(parts)


def _read_trait(f: _Field, counts: Counter, score_of: Callable[[str], int], keyword: str | None) -> _Choice | None:
    """Controls -> 0 and the class(es) naming the trait most specifically -> 1; any other class is left out
    (never folded into the cases) and the cohort flagged for review with the classes and their counts."""
    if len(counts) > MAX_CLASSES or not counts:
        return None
    controls = [v for v in counts if CONTROL.search(v)]
    scores = {v: score_of(v) for v in counts if v not in controls}
    top = max(scores.values(), default=0)
    cases = [v for v, sc in scores.items() if top > 0 and sc == top]
    others = [v for v in scores if v not in cases]
    abbrev = [v for v in others if any(abbreviates(v, c) for c in cases)]  # 'HCC' beside 'hepatocellular ...'
    cases += abbrev
    others = [v for v in others if v not in abbrev]
    notes: list[str] = []
    review = False
    if not cases and len(others) == 1 and controls:
        cases, others = others, []         # the one non-control class, though it does not name the trait
        notes.append(f"the case class {cases[0]!r} does not name the trait: check it")
        review = True
    if not cases and not controls:
        return None
    mapping = {**{v: 0.0 for v in controls}, **{v: 1.0 for v in cases}}
    if others:
        review = True
        notes.append(_classes_note(counts, mapping).format(f.label()) + "; only the class naming the trait is "
                     "compared with the controls")
    score = (2.0 if controls and cases else 0.0) + (2.0 if controls else 0.0) + (2.0 if top > 0 else 0.0) \
        + (1.0 if keyword and DISEASE_KEY.search(keyword) else 0.0)
    if controls and cases:
        base = 0.95 if (top > 0 and (keyword is None or DISEASE_KEY.search(keyword))) else 0.8
    else:
        base = 0.5
        review = True
        notes.append("only one trait class among the values: check that the cohort is really one-sided")
    if others:
        base = min(base, 0.6)
    return _Choice(f, mapping, score, base, notes, review)


def _text_field_choice(f: _Field, score_of: Callable[[str], int]) -> _Choice | None:
    """Titles / source names: group by template (numbers and tags removed), classify the templates."""
    temps = [_template(v) if v else None for v in f.values()]
    counts = _count(temps)
    if len(counts) < 2 or len(counts) > 6:
        return None
    ch = _read_trait(f, counts, score_of, None)
    if ch is None or not (0.0 in ch.mapping.values() and 1.0 in ch.mapping.values()):
        return None
    ch.review = True
    ch.base = min(ch.base, 0.8)
    ch.notes.append(f"trait read from the {f.label()}s: check the rules")
    return ch


def _text_rules(ch: _Choice) -> FeatureSpec:
    """Rules (control templates first) when they reproduce the template classes on the cohort's own cells,
    else the exact texts as a value table (always right for the cells it was built from)."""
    f = ch.field
    ordered = sorted(ch.mapping.items(), key=lambda kv: kv[1])
    spec = f.feature(rules=[(_template_pattern(t), v) for t, v in ordered])
    want = np.array([ch.mapping.get(_template(v), np.nan) if v else np.nan for v in f.values()])
    got = _apply(spec, f)
    if np.array_equal(np.isnan(want), np.isnan(got)) and np.allclose(want[~np.isnan(want)], got[~np.isnan(got)]):
        return spec
    exact = {v: ch.mapping[_template(v)] for v in set(f.values()) if v and _template(v) in ch.mapping}
    return f.feature(values=exact)


def suggest_geo(trait: str, cohort: str, titles: Sequence[str], sources: Sequence[str],
                char_rows: Sequence[Sequence[object]], matrix: str | None = None, platform: str | None = None,
                gene_column: str | None = None, symbols: bool | None = None) -> CohortSpec:
    """A proposed spec for one GEO cohort (see the module doc for the evidence order).

    Every suggested rule is applied to the cohort's own cells before it is written: the confidence is the
    evidence's strength times the share of samples the rules label, and rules that label nothing are dropped.
    """
    score_of = trait_score(trait)
    spec = CohortSpec(trait=trait, cohort=cohort, kind="GEO", matrix=matrix, platform=platform,
                      gene_column=gene_column, symbols=symbols)
    n = max([len(titles), len(sources), *(len(r) for r in char_rows)], default=0)
    notes: list[str] = []
    fields: list[_Field] = []
    for key in _group_keys(char_rows):
        fields.append(_Field("characteristics", key=key, cells=select_characteristic(char_rows, n, key=key)))
    for i in _keyless_rows(char_rows):
        fields.append(_Field("characteristics", row=i, cells=list(char_rows[i])))
    candidates: list[_Choice] = []
    for f in fields:
        counts = _count(f.values())
        kw = f.key
        if kw is not None and AGE_KEY.search(kw) and \
                sum(bool(NUMBER.search(v)) for v in counts) >= max(1, len(counts) // 2):
            if spec.age is None:
                spec.age = f.feature()
            continue
        sex_values = bool(counts) and all(GENDER_VALUE.match(v) for v in counts) and \
            (kw is None or len(counts) >= 2)   # a keyed field needs both sexes ('stage: M' alone is not sex)
        if (kw is not None and SEX_KEY.search(kw)) or sex_values:
            if spec.gender is None:
                g = f.feature()
                if np.isfinite(_apply(g, f, gender=True)).sum() * 2 >= max(1, n):
                    spec.gender = g
                else:
                    notes.append(f"{f.label()} looks like sex but the default rules read under half the samples")
            continue
        ch = _read_trait(f, counts, score_of, kw)
        if ch is not None:
            candidates.append(ch)
    best = max(candidates, key=lambda c: (c.score, -len(c.mapping)), default=None)
    text_source = False
    if best is None or best.score < 3:
        best = None
        for source, texts in (("source_name", sources), ("title", titles)):
            ch = _text_field_choice(_Field(source, cells=list(texts)), score_of)
            if ch is not None:
                best, text_source = ch, True
                break
    if best is None:
        spec.trait_spec = None
        spec.confidence = 0.6
        spec.needs_review = True
        notes.append("no trait information found in characteristics, source names or titles")
    else:
        ts = _text_rules(best) if text_source else best.field.feature(values=best.mapping)
        labelled = int(np.isfinite(_apply(ts, best.field)).sum())
        notes += best.notes
        if labelled == 0:
            spec.trait_spec = None
            spec.confidence = 0.0
            spec.needs_review = True
            notes.append(f"rules from the {best.field.label()} label no sample")
        else:
            spec.trait_spec = ts
            spec.confidence = round(best.base * labelled / max(1, n), 2)
            spec.needs_review = best.review or spec.confidence < 0.8
            if labelled < n:
                notes.append(f"trait rules label {labelled} of {n} samples")
    if spec.age is not None:
        f = next(x for x in fields if (x.key, x.row) == (spec.age.key, spec.age.row))
        got = parse_number(f.cells, DEFAULT_NUMBER, 1.0, True)
        if np.isfinite(got).sum() * 2 < max(1, n):
            notes.append(f"age key {spec.age.key!r} gives a number for only {int(np.isfinite(got).sum())} of {n}")
            spec.needs_review = True
    spec.note = "; ".join(notes)
    return spec


def suggest_tcga(trait: str, directory: str, clinical_columns: Sequence[str]) -> CohortSpec:
    """Barcode trait plus the usual Xena age/gender columns when present."""
    cols = {c.lower(): c for c in clinical_columns}
    age = next((cols[c] for c in AGE_COLUMNS if c in cols), None)
    gender = next((cols[c] for c in GENDER_COLUMNS if c in cols), None)
    missing = [n for n, v in (("age", age), ("gender", gender)) if v is None]
    return CohortSpec(trait=trait, cohort="TCGA", kind="TCGA", tcga_directory=directory, age_column=age,
                      gender_column=gender, confidence=0.95 if not missing else 0.8, needs_review=bool(missing),
                      note=("no " + " or ".join(missing) + " column") if missing else "")
