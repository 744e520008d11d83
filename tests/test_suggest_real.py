"""Spec suggestion on real GEO series (tests/data) and on the row shapes real series have: suggestion accuracy
per series against the series' own ground truth, and no series gets a confident (needs_review: false) wrong label.

Ground truth comes from fields the suggestion does not read for that decision (GSE55235: the source names;
GSE29746: the sample accessions of each group as the series lists them; GSE55457 and GSE7621: the titles; GSE20986:
no disease at all, only four endothelial tissues; GSE781: the hand-reviewed spec shipped
in genotex_dask/specs, checked against GEO's curated GDS507).  The accuracy table in the README is printed by
``python -m tests.test_suggest_real``.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genotex_dask.io.geo import read_series_matrix
from genotex_dask.pipelines.preprocess import _feature
from genotex_dask.preprocess.specs import parse_specs
from genotex_dask.preprocess.suggest import abbreviates, suggest_geo

DATA = Path(__file__).parent / "data"
REVIEWED = Path(__file__).parent.parent / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
NAN = math.nan


def _obs(path: Path) -> pd.DataFrame:
    return read_series_matrix(str(path), values=False).samples


def _chars(obs: pd.DataFrame) -> list[list]:
    return [[None if v == "" else v for v in obs[c].tolist()] for c in obs.columns
            if str(c).startswith("characteristics_ch1")]


def _truth_gse55235(trait: str, obs: pd.DataFrame) -> np.ndarray:
    src = obs["source_name_ch1"].str.lower()
    case = "rheumatoid" if trait == "Rheumatoid_Arthritis" else "osteoarthritic"
    return np.where(src.str.contains("healthy"), 0.0, np.where(src.str.contains(case), 1.0, NAN))


def _truth_gse29746(trait: str, obs: pd.DataFrame) -> np.ndarray:
    acc = obs["geo_accession"].str[3:].astype(int)
    group = np.where(acc <= 737469, "RA", np.where(acc <= 737480, "healthy", "OA"))  # GSM737461-69 / -80 / -91
    case = "RA" if trait == "Rheumatoid_Arthritis" else "OA"
    return np.where(group == "healthy", 0.0, np.where(group == case, 1.0, NAN))


GSE29746_SEX = "FMMFMFFMMMMFFMFMMFFFMMFMFFFMFMF"   # the series' gender row, F = 0, M = 1
GSE29746_AGE = [76, 63, 77, 73, 72, 64, 82, 74, 69, 21, 40, 58, 68, 79, 46, 84, 57, 58, 56, 82, 80, 75, 66, 80, 71,
                56, 73, 76, 74, 80, 72]


def _truth_gse55457(trait: str, obs: pd.DataFrame) -> np.ndarray:
    title = obs["title"]   # 'Normal, synovial membrane ...' / 'Rheumatoid arthritis, ...' / 'Osteoarthritis, ...'
    case = "Rheumatoid arthritis," if trait == "Rheumatoid_Arthritis" else "Osteoarthritis,"
    return np.where(title.str.startswith("Normal,"), 0.0, np.where(title.str.startswith(case), 1.0, NAN))


GSE55457_SEX = "MMFMMMFMMMMFFFFFFFFFMMFFFFFFMMFFF"   # the series' gender row
GSE55457_AGE = [61, 64, 78, 65, 53, 68, 29, 17, 39, 36, 75, 79, 63, 66, 64, 63, 46, 71, 72, 2, 47, 59, 73, 77, 71,
                76, 61, 75, 78, 69, 71, 80, 66]   # the series' age row ('age: 2' for an RA patient, as given)


def _truth_gse7621(trait: str, obs: pd.DataFrame) -> np.ndarray:
    title = obs["title"]   # 'Substantia nigra normal repN' / 'Substantia nigra PD repN'
    return np.where(title.str.contains(" normal rep"), 0.0, np.where(title.str.contains(" PD rep"), 1.0, NAN))


GSE7621_SEX = "FMFFFFMMMMMMMMFMMFMMFMMMM"   # the series' keyless female/male row, F = 0, M = 1


def _truth_gse20986(trait: str, obs: pd.DataFrame) -> np.ndarray:
    return np.full(len(obs), NAN)   # endothelial cells of four tissues (iris, retina, choroid, HUVEC): no disease


def _truth_gse781(trait: str, obs: pd.DataFrame) -> np.ndarray:
    spec = parse_specs(REVIEWED.read_text(), str(REVIEWED))["GSE781"]
    return _feature(spec.trait_spec, obs, None)


SERIES = {  # series -> (matrix, traits, truth function, Age truth, Gender truth)
    "GSE55235": (DATA / "geo_gse55235/GSE55235_series_matrix.txt.gz", ["Rheumatoid_Arthritis", "Osteoarthritis"],
                 _truth_gse55235, None, None),
    "GSE29746": (DATA / "geo_gse29746/GSE29746_series_matrix.txt.gz", ["Rheumatoid_Arthritis", "Osteoarthritis"],
                 _truth_gse29746, GSE29746_AGE, [float(c == "M") for c in GSE29746_SEX]),
    "GSE55457": (DATA / "geo_gse55457/GSE55457_series_matrix.txt.gz", ["Osteoarthritis", "Rheumatoid_Arthritis"],
                 _truth_gse55457, GSE55457_AGE, [float(c == "M") for c in GSE55457_SEX]),
    "GSE7621": (DATA / "geo_gse7621/GSE7621_series_matrix.txt.gz", ["Parkinsons_Disease"], _truth_gse7621, None,
                [float(c == "M") for c in GSE7621_SEX]),
    "GSE20986": (DATA / "geo_gse20986/GSE20986_series_matrix.txt.gz", ["Age-Related_Macular_Degeneration"],
                 _truth_gse20986, None, None),
    "GSE781": (DATA / "genotex_gse781/input/GEO/Kidney_Clear_Cell_Carcinoma/GSE781/GSE781-GPL96_series_matrix.txt.gz",
               ["Kidney_Clear_Cell_Carcinoma"], _truth_gse781, None, None),
}


def _agree(got: np.ndarray, want: np.ndarray) -> int:
    return int(sum((np.isnan(g) and np.isnan(w)) or g == w for g, w in zip(got, want)))


def accuracy(series: str, trait: str) -> dict:
    """k of n samples labelled as the series' own ground truth says (left-out classes count when left out)."""
    path, _, truth, age, sex = SERIES[series]
    obs = _obs(path)
    s = suggest_geo(trait, series, obs["title"].tolist(), obs["source_name_ch1"].tolist(), _chars(obs))
    n = len(obs)
    want = truth(trait, obs)
    got = _feature(s.trait_spec, obs, None) if s.trait_spec else np.full(n, NAN)
    row = {"series": series, "trait": trait, "n": n, "trait_ok": _agree(got, want), "confidence": s.confidence,
           "needs_review": s.needs_review, "note": s.note}
    for name, truth_vals, spec, kind in (("age", age, s.age, "number"), ("gender", sex, s.gender, "gender")):
        w = np.array(truth_vals if truth_vals is not None else [NAN] * n, dtype=float)
        g = _feature(spec, obs, kind) if spec else np.full(n, NAN)
        row[f"{name}_ok"] = _agree(g, w)
        row[f"{name}_in_series"] = truth_vals is not None
    return row


def _cell(r: dict, name: str) -> str:
    if r[f"{name}_in_series"]:
        return f"{r[name + '_ok']} of {r['n']}"
    return "none in series, none suggested" if r[f"{name}_ok"] == r["n"] else "suggested where there is none"


CASES = [(s, t) for s, (_, traits, *_) in SERIES.items() for t in traits]


@pytest.mark.parametrize("series,trait", CASES)
def test_real_series_are_labelled_right_or_flagged(series, trait):
    r = accuracy(series, trait)
    assert r["age_ok"] == r["n"] and r["gender_ok"] == r["n"], r
    if not r["needs_review"]:
        assert r["trait_ok"] == r["n"], f"confident wrong label: {r}"
    assert r["trait_ok"] == r["n"], r   # and on these series every label is right


def test_three_class_status_is_never_binarised():
    """GSE55235 / GSE29746 / GSE55457 (RA, OA, healthy): for either disease only its own class is a case, the other disease
    is left out, and the cohort is flagged with the classes and their counts."""
    for series in ("GSE55235", "GSE29746", "GSE55457"):
        for trait in ("Rheumatoid_Arthritis", "Osteoarthritis"):
            r = accuracy(series, trait)
            assert r["needs_review"] and "left out" in r["note"] and r["confidence"] < 0.8, r


def test_gse7621_keyless_rows_and_null_cells():
    """GSE7621 (real): characteristics rows without 'key:' ('Old Control' / "Parkinson's Disease", then
    'female' / 'male') are read by position with full confidence; its spike-in probes are 'null' in every
    sample and read as missing, the other values as numbers."""
    path = SERIES["GSE7621"][0]
    obs = _obs(path)
    s = suggest_geo("Parkinsons_Disease", "GSE7621", obs["title"].tolist(), obs["source_name_ch1"].tolist(),
                    _chars(obs))
    assert (s.trait_spec.key, s.trait_spec.row, s.gender.key, s.gender.row) == (None, 0, None, 1)
    assert s.confidence >= 0.8 and not s.needs_review
    m = read_series_matrix(str(path))
    spike = np.array([p.startswith("AFFX-LysX") for p in m.probes])
    assert spike.sum() == 3 and np.isnan(m.values[spike]).all() and np.isfinite(m.values[~spike]).all()
    assert m.values.shape == (13, 25) and m.values[0, 0] == 1538.87


def test_gse20986_already_log2_and_no_trait():
    """GSE20986 (real, gcrma): values are already log2 and read as they are; its classes are tissues, not a
    disease, so no trait is suggested for an eye disease and the cohort is flagged."""
    path = SERIES["GSE20986"][0]
    m = read_series_matrix(str(path))
    assert m.values.shape == (10, 12) and m.values[0, 0] == 2.867330709
    # every value exactly as the file writes it (an independent parse of the table lines), no rescaling
    with gzip.open(path, "rt") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line and not line.startswith(("!", '"ID_REF"'))]
    assert np.array_equal(m.values, np.array([[float(v) for v in r[1:]] for r in rows if len(r) > 1]))
    obs = _obs(path)
    s = suggest_geo("Age-Related_Macular_Degeneration", "GSE20986", obs["title"].tolist(),
                    obs["source_name_ch1"].tolist(), _chars(obs))
    assert s.trait_spec is None and s.needs_review and s.age is None and s.gender is None


@pytest.mark.parametrize("series,trait", [("GSE7621", "Parkinsons_Disease"), ("GSE55457", "Osteoarthritis"),
                                          ("GSE55457", "Rheumatoid_Arthritis")])
def test_real_titles_alone_label_every_sample(series, trait):
    """Labels only in titles: the real titles of GSE7621 ('Substantia nigra PD rep10') and GSE55457
    ('Osteoarthritis, synovial membrane patient EB_21 (U133A)'), with the characteristics withheld (as in a
    series that has none), give title rules that label every sample as its title says, and are flagged."""
    path, _, truth, *_ = SERIES[series]
    obs = _obs(path)
    s = suggest_geo(trait, series, obs["title"].tolist(), obs["source_name_ch1"].tolist(), [])
    assert s.trait_spec.source == "title" and s.needs_review
    assert _agree(_feature(s.trait_spec, obs, None), truth(trait, obs)) == len(obs)


# ---- the row shapes of real series the issue names (made-up cells in those shapes, marked as such) ------------

def test_keyless_characteristics_rows_are_read_by_their_values():
    """GSE7621's shape: characteristics without 'key:' (trait 'Old Control' / "Parkinson's Disease" in one row,
    'female' / 'male' in the next); made-up 6 samples in that shape."""
    status = ["Old Control", "Parkinson's Disease", "Old Control", "Parkinson's Disease", "Parkinson's Disease",
              "Old Control"]
    sex = ["female", "male", "male", "female", "male", "female"]
    s = suggest_geo("Parkinsons_Disease", "GSE0", [f"s{i}" for i in range(6)], ["substantia nigra"] * 6,
                    [status, sex])
    assert s.trait_spec.row == 0 and s.trait_spec.values == {"Old Control": 0.0, "Parkinson's Disease": 1.0}
    assert s.gender is not None and s.gender.row == 1
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(6)], "source_name_ch1": ["x"] * 6,
                        "characteristics_ch1_0": status, "characteristics_ch1_1": sex})
    assert _feature(s.trait_spec, obs, None).tolist() == [0, 1, 0, 1, 1, 0]
    assert _feature(s.gender, obs, "gender").tolist() == [0, 1, 1, 0, 1, 0]
    assert s.confidence >= 0.8


def test_gender_key_spacing_and_confidence_from_labelled_samples():
    """'Gender:M' beside 'Gender: F' (one key, two spellings); a disease key whose values label only part of the
    samples gets its confidence cut and a review flag."""
    chars = [["Gender:M", "Gender: F", "Gender:F", "Gender: M"],
             ["disease: control", "disease: asthma", "disease: asthma", None]]
    s = suggest_geo("Asthma", "GSE0", ["a", "b", "c", "d"], ["x"] * 4, chars)
    obs = pd.DataFrame({"title": list("abcd"), "source_name_ch1": ["x"] * 4,
                        "characteristics_ch1_0": chars[0], "characteristics_ch1_1": chars[1]})
    assert _feature(s.gender, obs, "gender").tolist() == [1, 0, 0, 1]
    assert s.confidence == pytest.approx(0.95 * 3 / 4, abs=0.005) and s.needs_review and "label 3 of 4" in s.note


def test_title_rules_match_the_titles_they_come_from():
    """Titles like 'Control_1' / 'RA_2': the old rules stripped the digits and anchored with \\b, so 'control_\\b'
    matched none of them.  Rules are now checked against the titles they come from."""
    titles = ["Control_1", "Control_2", "RA_1", "RA_2", "RA_3"]
    s = suggest_geo("Rheumatoid_Arthritis", "GSE0", titles, ["synovium"] * 5, [])
    obs = pd.DataFrame({"title": titles, "source_name_ch1": ["synovium"] * 5})
    assert s.trait_spec.source == "title"
    assert _feature(s.trait_spec, obs, None).tolist() == [0, 0, 1, 1, 1]
    assert s.needs_review  # labels from titles are always flagged


def test_abbreviations_join_their_class_only():
    assert abbreviates("HCC", "hepatocellular carcinoma") and abbreviates("ccRCC", "clear cell renal cell carcinoma")
    assert not abbreviates("OA", "rheumatoid arthritis") and not abbreviates("RA", "osteoarthritis")
    assert not abbreviates("healthy", "hepatocellular carcinoma")


if __name__ == "__main__":  # the README's accuracy table
    print("| series | trait | trait labels right | Age | Gender | confidence | needs review |")
    print("|---|---|---|---|---|---|---|")
    for series, trait in CASES:
        r = accuracy(series, trait)
        print(f"| {series} | {trait} | {r['trait_ok']} of {r['n']} | {_cell(r, 'age')} | {_cell(r, 'gender')} | "
              f"{r['confidence']} | {'yes' if r['needs_review'] else 'no'} |")
