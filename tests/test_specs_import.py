"""Importing GenoTEX notebook decisions: notebook-shaped fixtures for each decision shape, the safety of the
import path (nothing from a notebook runs), the spec format additions, golden checks and the shipped set.

The fixture notebooks are written here (GenoTEX's notebook shape, our own text): cells as GenoTEX's agent
writes them, with execution counts and printed outputs chosen per case.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genotex_dask.preprocess import clinical, golden
from genotex_dask.preprocess.annotation_parsers import gene_assignment_symbols
from genotex_dask.preprocess.specs import SpecError, parse_specs
from genotex_dask.specs_import.importer import import_geo, import_tcga
from genotex_dask.specs_import.notebooks import NotebookError, parse_notebook
from genotex_dask.specs_import.resolve import parse_printed_dict
from genotex_dask.specs_import.write import dump_trait, import_tree

SHIPPED = Path(__file__).parent.parent / "genotex_dask" / "specs" / "genotex"

SETUP = 'from tools.preprocess import *\ntrait = "T"\ncohort = "GSE1"\n'
READ = ("background_info, clinical_data = get_background_and_clinical_data(matrix_file, "
        "['!Series_title'], ['!Sample_geo_accession', '!Sample_characteristics_ch1'])\n"
        "sample_characteristics_dict = get_unique_values_by_row(clinical_data)\n"
        "print('Sample Characteristics Dictionary:')\nprint(sample_characteristics_dict)\n")
CHARS = {0: ["tissue: tumor", "tissue: normal"], 1: ["age: 61", "age: 45", "age: 70"],
         2: ["gender: female", "gender: male"]}
CONVERTERS = '''
def convert_trait(value):
    v = value.split(':', 1)[1].strip().lower()
    if v == 'tumor':
        return 1
    return 0

def convert_age(value):
    try:
        return float(value.split(':')[1].strip())
    except (ValueError, IndexError):
        return None

def convert_gender(value):
    v = value.split(':')[1].strip().lower()
    if v == 'female':
        return 0
    if v == 'male':
        return 1
    return None
'''
SELECT = ("selected = geo_select_clinical_features(clinical_data, trait, trait_row, convert_trait, age_row, "
          "convert_age, gender_row, convert_gender)\n")
MAPPING = ("gene_annotation = get_gene_annotation(soft_file)\n"
           "mapping = get_gene_mapping(gene_annotation, 'ID', 'Gene Symbol')\n"
           "gene_data = apply_gene_mapping(gene_data, mapping)\n")
OUTCOME = ("For the feature 'T', the least common label is '0' with 10 occurrences. This represents 25.00% of the "
           "dataset.\nLinked data shape after handling missing values: (40, 1203)\n"
           "Linked data saved to ../../output/preprocess/T/GSE1.csv\n")


def nb(*cells) -> bytes:
    """A notebook: each cell (source, execution_count or None, printed text)."""
    out = []
    for src, count, text in cells:
        outputs = [{"output_type": "stream", "name": "stdout", "text": text}] if text else []
        out.append({"cell_type": "code", "execution_count": count, "source": src, "outputs": outputs,
                    "metadata": {}})
    return json.dumps({"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def chars_text(d: dict) -> str:
    return "Sample Characteristics Dictionary:\n" + repr(d) + "\n"


def geo(*cells, chars=CHARS, matrix_rows=None, cohort="GSE1"):
    first = [(SETUP, 1, ""), (READ, 2, chars_text(chars))]
    return import_geo(parse_notebook(nb(*first, *cells), "code/T/GSE1.ipynb"), "T", cohort, matrix_rows)


def standard(decisions: str = "trait_row = 0\nage_row = 1\ngender_row = 2\n", converters: str = CONVERTERS,
             **kw):
    return geo((decisions + converters + SELECT, 3, ""), (MAPPING, 4, ""), ("pass", 5, OUTCOME), **kw)


# ---- decision shapes -------------------------------------------------------------------------------------

def test_clean_import_tables_and_golden_values():
    imp = standard()
    assert imp.klass == "clean", imp.reasons
    s = imp.spec
    assert s["trait"] == {"source": "characteristics", "row": 0, "match": "cell",
                          "values": {"tissue: normal": 0.0, "tissue: tumor": 1.0}, "default": 0.0}
    assert s["gender"]["values"] == {"gender: female": 0.0, "gender: male": 1.0} and "default" not in s["gender"]
    assert s["age"]["pattern"] and "values" not in s["age"]   # the numeric rule reproduces every printed age
    assert s["annotation"] == {"gene_column": "Gene Symbol"}
    assert s["expect"] == {"trait_counts": {"0": 10, "1": 30}, "is_usable": True, "sample_size": 40,
                           "has_age": True, "has_gender": True}
    assert s["import"]["notebook"] == "code/T/GSE1.ipynb" and s["import"]["cell"] == 2
    assert len(s["import"]["converters"]["trait"]) == 64
    # the written spec parses and its tables give the converter's values on real cells
    spec = parse_specs(dump_trait("T", {"GSE1": s}), "T.yaml")["GSE1"]
    obs = pd.DataFrame({"characteristics_ch1_0": ["tissue: tumor", "tissue: normal", "tissue: other", ""],
                        "characteristics_ch1_1": ["age: 61", "age: 45", "age: 80", "age: 70"],
                        "characteristics_ch1_2": ["gender: male", "gender: female", "", "gender: male"]})
    np.testing.assert_array_equal(clinical.feature_values(spec.trait_spec, obs, None), [1, 0, 0, np.nan])
    np.testing.assert_array_equal(clinical.feature_values(spec.age, obs, "number"), [61, 45, 80, 70])
    np.testing.assert_array_equal(clinical.feature_values(spec.gender, obs, "gender"), [1, 0, np.nan, 1])


def test_retry_cell_reassigning_trait_row_wins_and_unexecuted_cells_do_not_count():
    imp = geo(("trait_row = 2\nage_row = None\ngender_row = None\n" + CONVERTERS + SELECT, 3, ""),
              ("trait_row = 0\n" + SELECT, 4, ""),            # the retry cell: the decision in force
              ("trait_row = 1\n" + SELECT, None, ""),          # written but never run
              (MAPPING, 5, ""), ("pass", 6, OUTCOME))
    assert imp.spec["trait"]["row"] == 0 and imp.spec["import"]["cell"] == 3
    assert imp.spec["age"] is None and imp.spec["gender"] is None


def test_capped_dictionary_numeric_rule_matrix_cells_and_review():
    ages = [f"age: {a}" for a in range(20, 50)]                # 30 values: GenoTEX's cap
    tissues = [f"tissue: tumor {i}" for i in range(29)] + ["tissue: normal"]
    chars = {0: tissues, 1: ages, 2: ["gender: female", "gender: male"]}
    conv = CONVERTERS.replace("if v == 'tumor':", "if v.startswith('tumor'):")
    imp = standard(converters=conv, chars=chars)
    assert imp.spec["age"]["pattern"]   # the number rule covers the ages GenoTEX did not print
    # the trait table is complete thanks to the converter's "anything else" answer (default)
    assert imp.spec["trait"]["default"] == 0.0
    # a converter without a default answer: the capped table is partial -> review, unless the matrix is at hand
    conv2 = conv.replace("    return 0\n\ndef convert_age", "    if v == 'normal':\n        return 0\n    return None\n\n"
                                                        "def convert_age")
    partial = standard(converters=conv2, chars=chars)
    assert partial.klass == "review" and any("capped at 30" in r for r in partial.reasons)
    rows = [tissues + ["tissue: tumor 99"], ages + ["age: 88"], ["gender: female", "gender: male"]]
    full = standard(converters=conv2, chars=chars, matrix_rows=rows)
    assert full.klass == "clean", full.reasons
    assert full.spec["trait"]["values"]["tissue: tumor 99"] == 1.0


def test_converter_with_helper_function_and_constant():
    conv = '''
HEALTHY = ['normal', 'control']

def _clean(value):
    return value.split(':')[-1].strip().lower()

def convert_trait(value):
    return 0 if _clean(value) in HEALTHY else 1
''' + CONVERTERS.split("def convert_age")[0].replace("def convert_trait", "def _unused") + \
        "def convert_age" + CONVERTERS.split("def convert_age")[1]
    imp = standard(converters=conv)
    assert imp.klass == "clean", imp.reasons
    assert imp.spec["trait"]["values"] == {"tissue: normal": 0.0, "tissue: tumor": 1.0}


def test_ids_already_symbols_and_gene_assignment_column():
    dec = "trait_row = 0\nage_row = None\ngender_row = None\n"
    sym = geo((dec + CONVERTERS + SELECT, 3, ""), ("requires_gene_mapping = False\n"
                                                  "gene_data = normalize_gene_symbols_in_index(gene_data)\n", 4, ""),
              ("pass", 5, OUTCOME))
    assert sym.spec["annotation"] == {"symbols": True}
    ga = geo((dec + CONVERTERS + SELECT, 3, ""),
             ("probe_col = 'ID'\ngene_col = 'gene_assignment'\n"
              "mapping = get_gene_mapping(gene_annotation, probe_col, gene_col)\n", 4, ""), ("pass", 5, OUTCOME))
    assert ga.spec["annotation"] == {"gene_column": "gene_assignment", "parser": "gene_assignment"}
    cell = "NM_001 // A1BG // alpha-1-B glycoprotein // 19q13 // 1 /// NR_015380 // A1BG-AS1 // antisense // --- "
    assert gene_assignment_symbols(cell) == "A1BG A1BG-AS1"
    assert gene_assignment_symbols("---") is None


def test_excluded_cohort_is_an_explicit_decision():
    imp = geo(("is_gene_available = True\ntrait_row = None\nis_trait_available = trait_row is not None\n"
               "validate_and_save_cohort_info(is_final=False, cohort=cohort, info_path=json_path, "
               "is_gene_available=is_gene_available, is_trait_available=is_trait_available)\n", 3, ""))
    assert imp.klass == "excluded"
    assert imp.spec["excluded"]["initial_filter"] == {"is_gene_available": True, "is_trait_available": False}
    spec = parse_specs(dump_trait("T", {"GSE1": imp.spec}), "T.yaml")["GSE1"]
    assert spec.excluded["reason"].startswith("GenoTEX's initial filter") and spec.trait_spec is None


def test_edited_after_execution_is_flagged():
    preview = "Preview of selected clinical features:\n" + repr({"GSM1": [1.0, 61.0, 0.0], "GSM2": [0.0, 45.0, 1.0]})
    ok = geo(("trait_row = 0\nage_row = 1\ngender_row = 2\n" + CONVERTERS + SELECT, 3, preview),
             (MAPPING, 4, ""), ("pass", 5, OUTCOME))
    assert ok.klass == "clean", ok.reasons
    # the code now selects no gender, but the printed preview (from the run that produced the outputs) had 3 rows
    edited = geo(("trait_row = 0\nage_row = 1\ngender_row = None\n" + CONVERTERS + SELECT, 3, preview),
                 (MAPPING, 4, ""), ("pass", 5, OUTCOME))
    assert edited.klass == "review"
    assert any(r.startswith("edited after execution") for r in edited.reasons)
    # same rows, but a trait value the converter in the code cannot give (the code was changed after the run)
    other = "Preview of selected clinical features:\n" + repr({"GSM1": [2.0, 61.0, 0.0], "GSM2": [0.0, 45.0, 1.0]})
    changed = geo(("trait_row = 0\nage_row = 1\ngender_row = 2\n" + CONVERTERS + SELECT, 3, other),
                  (MAPPING, 4, ""), ("pass", 5, OUTCOME))
    assert changed.reasons == ["edited after execution: the printed preview shows trait = 2, which the imported "
                               "converter gives no printed value"]


def test_female_as_male_bug_published_in_compat_corrected_by_default():
    buggy = CONVERTERS.replace("""    if v == 'female':
        return 0
    if v == 'male':
        return 1""", """    if 'male' in v:
        return 1
    if 'female' in v:
        return 0""")
    imp = standard(converters=buggy)
    assert imp.spec["gender"]["values"] == {"gender: female": 0.0, "gender: male": 1.0}
    (corr,) = imp.spec["corrections"]
    assert corr["field"] == "gender" and corr["genotex"]["values"]["gender: female"] == 1.0
    spec = parse_specs(dump_trait("T", {"GSE1": imp.spec}), "T.yaml")["GSE1"]
    obs = pd.DataFrame({"characteristics_ch1_0": ["tissue: tumor"] * 2, "characteristics_ch1_1": ["age: 1"] * 2,
                        "characteristics_ch1_2": ["gender: female", "gender: male"]})
    np.testing.assert_array_equal(clinical.feature_values(spec.gender, obs, "gender"), [0, 1])
    published = spec.for_compat("genotex")
    np.testing.assert_array_equal(clinical.feature_values(published.gender, obs, "gender"), [1, 1])
    assert spec.for_compat(None) is spec


def test_clinical_table_typed_from_printed_dictionary_is_a_correction():
    fabricated = ("clinical_data = pd.DataFrame(sample_characteristics_dict)\n")
    not_usable = "The distribution of the feature 'T' in this dataset is severely biased.\n"
    imp = geo((fabricated + "trait_row = 0\nage_row = None\ngender_row = None\n" + CONVERTERS + SELECT, 3, ""),
              (MAPPING, 4, ""), ("pass", 5, not_usable))
    assert imp.klass == "clean", imp.reasons
    (corr,) = imp.spec["corrections"]
    assert corr["field"] == "excluded" and "printed characteristics dictionary" in corr["reason"]
    spec = parse_specs(dump_trait("T", {"GSE1": imp.spec}), "T.yaml")["GSE1"]
    assert spec.excluded is None and spec.for_compat("genotex").excluded is not None


def test_tcga_days_to_birth_and_directory_mix_up():
    cells = nb(("tcga_root_dir = '../../input/TCGA'\ntrait = 'T'\n", 1, ""),
               ("cohort_dir = os.path.join(tcga_root_dir, 'TCGA_Kidney_Chromophobe_(KICH)')\n"
                "clinical_file_path, genetic_file_path = tcga_get_relevant_filepaths(cohort_dir)\n"
                "genetic_df = pd.read_csv(genetic_file_path, sep='\\t', index_col=0)\n", 2, ""),
               ("cohort_dir = os.path.join(tcga_root_dir, 'TCGA_Kidney_Clear_Cell_Carcinoma_(KIRC)')\n"
                "clinical_file_path, _ = tcga_get_relevant_filepaths(cohort_dir)\n"
                "clinical_df = pd.read_csv(clinical_file_path, sep='\\t', index_col=0)\n"
                "age_col = 'days_to_birth'\ngender_col = 'gender'\n", 3, ""),
               ("features = tcga_select_clinical_features(clinical_df, trait=trait, age_col=age_col, "
                "gender_col=gender_col)\ngenes = normalize_gene_symbols_in_index(genetic_df)\n", 4,
                "Abnormality detected in the cohort: TCGA. Preprocessing failed.\n"))
    imp = import_tcga(parse_notebook(cells, "code/T/TCGA.ipynb"), "T")
    assert imp.spec["tcga"] == {"directory": "TCGA_Kidney_Clear_Cell_Carcinoma_(KIRC)", "age_column": "days_to_birth",
                                "gender_column": "gender", "age_unit": "days"}
    assert "KICH" in imp.spec["corrections"][0]["reason"] and imp.spec["expect"] == {"is_usable": False}
    spec = parse_specs(dump_trait("T", {"TCGA": imp.spec}), "T.yaml")["TCGA"]
    assert spec.age_unit == "days"
    days = ["-26349", "-18303", "nan"]
    np.testing.assert_allclose(clinical.tcga_age(days, "days"), [26349 / 365.25, 18303 / 365.25, np.nan])
    np.testing.assert_array_equal(clinical.tcga_age(days, "days", "genotex"), [26349, 18303, np.nan])


def test_printed_dictionary_is_parsed_without_evaluation():
    d = parse_printed_dict("x\nSample Characteristics Dictionary:\n{0: ['a: 1', nan, \"b'c\"], 1: [-2.5]}\ntail")
    assert d == {0: ["a: 1", None, "b'c"], 1: [-2.5]}
    assert parse_printed_dict("Sample Characteristics Dictionary:\n{0: [__import__('os').system('x')]}") is None
    assert parse_printed_dict("no dictionary here") is None


# ---- safety ----------------------------------------------------------------------------------------------

def test_crafted_notebooks_import_with_review_and_run_nothing(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    s = str(sentinel)
    bodies = {
        "dunder import": f"    __import__('os').system('touch {s}')\n    return 1",
        "open": f"    open({s!r}, 'w').write('x')\n    return 1",
        "os.system": f"    import os\n    os.system('touch {s}')\n    return 1",
        "exit": "    exit()\n    return 1",
        "while True": "    while True:\n        pass",
        "huge power": "    return 10 ** 10 ** 10",
        "catastrophic regex": "    import re\n    return 1 if re.match(r'(a+)+$', 'a' * 60 + value) else 0",
    }
    top_level = f"open({s!r}, 'w').write('x')\nimport os\nos.system('touch {s}')\n"
    t0 = time.perf_counter()
    for name, body in bodies.items():
        conv = CONVERTERS.replace("def convert_trait(value):\n    v = value.split(':', 1)[1].strip().lower()\n"
                                  "    if v == 'tumor':\n        return 1\n    return 0",
                                  "def convert_trait(value):\n" + body)
        imp = geo((top_level + "trait_row = 0\nage_row = None\ngender_row = None\n" + conv + SELECT, 3, ""),
                  (MAPPING, 4, ""), ("pass", 5, OUTCOME))
        assert imp.klass == "review", (name, imp.reasons)
        assert any(r.startswith("trait: ") for r in imp.reasons), (name, imp.reasons)
        assert not sentinel.exists(), name
    assert time.perf_counter() - t0 < 20


def test_unreadable_notebooks_are_named_reasons(tmp_path):
    with pytest.raises(NotebookError, match="not JSON"):
        parse_notebook(b"{not json", "x.ipynb")
    with pytest.raises(NotebookError, match="larger than"):
        parse_notebook(b" " * (5 * 1024 * 1024), "x.ipynb")
    root = tmp_path / "gx"
    (root / "code" / "T").mkdir(parents=True)
    (root / "code" / "T" / "GSE1.ipynb").write_bytes(b"[]")
    (root / "code" / "T" / "GSE2.ipynb").write_bytes(nb(("trait_row = 0\n", None, "")))
    (root / "code" / "T" / "TCGA.ipynb").write_bytes(nb())
    s = import_tree(str(root), str(tmp_path / "out"))
    assert s["classes"] == {"unimportable": 3}
    reasons = {k: v["reasons"][0] for k, v in s["cohorts"].items()}
    assert reasons == {"T/GSE1": "unreadable notebook: not a notebook (no 'cells' list)",
                       "T/GSE2": "notebook never executed", "T/TCGA": "notebook is empty"}


# ---- spec format, golden checks --------------------------------------------------------------------------

@pytest.mark.parametrize("body, where, what", [
    ("    matrix: [1, 2]\n    trait: {source: none}\n", 4, "'matrix' must be a non-empty string"),
    ("    trait: {source: none}\n    annotation: {gene_column: 5}\n", 5, "annotation.gene_column"),
    ("    tcga: {directory: D, colour: red}\n", 4, "unknown field 'colour'"),
    ("    trait: {source: title, rules: [], default: high}\n", 4, "'default' must be a number"),
    ("    trait: {source: characteristics, row: 0, match: exact, values: {a: 1}}\n", 4, "'match' must be one of"),
    ("    trait: {source: none}\n    expect: {sample_size: -1}\n", 5, "non-negative integer"),
    ("    trait: {source: none}\n    review: {needs_review: 'yes'}\n", 5, "'needs_review' must be true or false"),
    ("    trait: {source: none}\n    corrections: [{field: platform, reason: x}]\n", 5, "correction field"),
    ("    excluded: {reason: ''}\n", 4, "excluded.reason"),
])
def test_every_spec_field_is_type_checked(body, where, what):
    with pytest.raises(SpecError) as e:
        parse_specs("trait: T\ncohorts:\n  G:\n" + body, "s/T.yaml")
    assert str(e.value).startswith(f"s/T.yaml:{where}: ") and what in str(e.value), str(e.value)


def test_golden_check_reports_every_mismatch():
    expect = {"sample_size": 45, "trait_counts": {"0": 9, "1": 36}, "is_usable": True, "n_genes": 19848,
              "has_age": True}
    rec = {"sample_size": 45, "is_usable": True, "has_age": False}
    got = golden.check(expect, {"record": rec, "n_genes": 19861, "trait_counts": golden.trait_counts(
        np.array([0.0] * 9 + [1.0] * 35 + [np.nan]))})
    assert got == [{"field": "trait_counts", "expected": {"0": 9, "1": 36}, "got": {"0": 9, "1": 35}},
                   {"field": "has_age", "expected": True, "got": False},
                   {"field": "n_genes", "expected": 19848, "got": 19861}]
    assert golden.check({}, {"record": rec}) == []


# ---- the shipped set -------------------------------------------------------------------------------------

def test_shipped_set_is_complete_and_valid():
    summary = json.loads((SHIPPED / "import_summary.json").read_text())
    assert summary["notebooks"] == 997 and summary["commit"] == "d8547df"
    assert sum(summary["classes"].values()) == 997
    specs = {}
    for f in sorted(SHIPPED.glob("*.yaml")):
        for cid, spec in parse_specs(f.read_text(), str(f)).items():
            specs[f"{spec.trait}/{cid}"] = spec
    with_spec = {k for k, v in summary["cohorts"].items() if v["class"] != "unimportable"}
    assert set(specs) == with_spec                    # 100%: a spec, or a named reason in the summary
    assert all(v["reasons"] for k, v in summary["cohorts"].items() if v["class"] in ("review", "unimportable"))
    for key, spec in specs.items():
        assert spec.provenance["notebook"] == f"code/{key.rsplit('/', 1)[0]}/{key.rsplit('/', 1)[1]}.ipynb"
        assert spec.needs_review == (summary["cohorts"][key]["class"] == "review")
    assert "larger than 4 MiB" in summary["cohorts"]["Glioblastoma/GSE39144"]["reasons"][0]


def _write_matrix(path: Path, rows: list[list[str]]) -> None:
    lines = ['!Series_title\t"x"', '!Sample_geo_accession\t' + "\t".join(f'"GSM{i}"' for i in range(len(rows[0])))]
    lines += ['!Sample_characteristics_ch1\t' + "\t".join(f'"{c}"' for c in r) for r in rows]
    lines += ["!series_matrix_table_begin", '"ID_REF"\t' + "\t".join(f'"GSM{i}"' for i in range(len(rows[0]))),
              '"p1"\t' + "\t".join("1.0" for _ in rows[0]), "!series_matrix_table_end"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_root_series_matrix_completes_capped_values(tmp_path):
    from genotex_dask.specs_import.write import matrix_rows

    root = tmp_path / "root"
    _write_matrix(root / "input/GEO/T/GSE1/GSE1_series_matrix.txt.gz",
                  [["tissue: a", "tissue: b", "tissue: a"], ["age: 3", "age: 4", ""]])
    assert matrix_rows(str(root), "T", "GSE1") == [["tissue: a", "tissue: b"], ["age: 3", "age: 4"]]
    assert matrix_rows(str(root), "T", "GSE2") is None and matrix_rows(None, "T", "GSE1") is None


def test_import_tree_with_root_reads_the_matrix_only_for_capped_rows(tmp_path):
    tissues = [f"tissue: tumor {i}" for i in range(29)] + ["tissue: normal"]
    conv = CONVERTERS.replace("    if v == 'tumor':\n        return 1\n    return 0",
                              "    if v.startswith('tumor'):\n        return 1\n    if v == 'normal':\n"
                              "        return 0\n    return None")
    cells = [(SETUP, 1, ""), (READ, 2, chars_text({0: tissues})),
             ("trait_row = 0\nage_row = None\ngender_row = None\n" + conv + SELECT, 3, ""), (MAPPING, 4, ""),
             ("pass", 5, OUTCOME)]
    gx = tmp_path / "gx"
    (gx / "code" / "T").mkdir(parents=True)
    (gx / "code" / "T" / "GSE1.ipynb").write_bytes(nb(*cells))
    root = tmp_path / "root"
    _write_matrix(root / "input/GEO/T/GSE1/GSE1_series_matrix.txt.gz", [tissues + ["tissue: tumor 77"]])
    without = import_tree(str(gx), str(tmp_path / "a"))
    assert without["cohorts"]["T/GSE1"]["class"] == "review"
    with_root = import_tree(str(gx), str(tmp_path / "b"), root=str(root))
    assert with_root["cohorts"]["T/GSE1"]["class"] == "clean"
    spec = parse_specs((tmp_path / "b" / "T.yaml").read_text(), "T.yaml")["GSE1"]
    assert spec.trait_spec.values["tissue: tumor 77"] == 1.0 and len(spec.trait_spec.values) == 31


def test_pathological_cells_are_bounded():
    deep = "x = " + "(" * 150 + "1" + ")" * 150 + "\n" + "y = " + " + ".join(["1"] * 20000) + "\n"
    t0 = time.perf_counter()
    imp = geo((deep + "trait_row = 0\nage_row = None\ngender_row = None\n" + CONVERTERS + SELECT, 3, ""),
              (MAPPING, 4, ""), ("pass", 5, OUTCOME))
    assert imp.klass == "unimportable" and imp.reasons[0].startswith("executed cell 2 cannot be parsed")
    assert time.perf_counter() - t0 < 10


def test_yaml_syntax_error_is_one_line_with_file_and_line():
    text = "trait: T\ncohorts:\n  GSE1: {trait: [a, b\n  x: 1\n"
    with pytest.raises(SpecError) as err:
        parse_specs(text, "T.yaml")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("T.yaml:4: YAML syntax:") and "column 4" in msg
