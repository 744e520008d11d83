"""`specs suggest` / `run` never overwrite a spec a person edited, and list the cohorts still needing review."""

from __future__ import annotations

import shutil
from pathlib import Path

from genotex_dask.pipelines.specs import run_suggest_specs, spec_was_edited

GSE781_ROOT = Path(__file__).parent / "data" / "genotex_gse781"
TRAIT = "Kidney_Clear_Cell_Carcinoma"


def test_edited_spec_survives_a_new_suggestion(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(GSE781_ROOT, root)
    specs = tmp_path / "specs"
    s1 = run_suggest_specs(str(root), str(specs))
    f = specs / f"{TRAIT}.yaml"
    text = f.read_text()
    assert not spec_was_edited(text) and s1["kept_edited"] == []
    assert s1["needs_review"] == [f"{TRAIT}/GSE781"]          # a source-name guess: flagged
    # unchanged generated file: a rerun may rewrite it (same content)
    s2 = run_suggest_specs(str(root), str(specs))
    assert f.read_text() == text and s2["kept_edited"] == []
    # the user reviews it: edits the rules and clears the flag
    edited = text.replace("needs_review: true", "needs_review: false")
    assert edited != text
    f.write_text(edited)
    assert spec_was_edited(edited)
    s3 = run_suggest_specs(str(root), str(specs))
    assert f.read_text() == edited
    assert s3["kept_edited"] == [f"{TRAIT}.yaml"] and s3["needs_review"] == []


def test_review_list_of_a_suggestion_equals_the_files_read_back(tmp_path):
    """The files just written are taken as written (not parsed back); any other spec file in the directory is
    still read: the list is the one reading every file gives."""
    from genotex_dask.pipelines.specs import specs_needing_review

    root = tmp_path / "root"
    shutil.copytree(GSE781_ROOT, root)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "Other_Trait.yaml").write_text(  # a hand-written spec of another trait, flagged for review
        "trait: Other_Trait\ncohorts:\n  GSE9:\n    trait:\n      source: characteristics\n      key: disease\n"
        "      values: {a: 1.0, b: 0.0}\n    review: {needs_review: true}\n")
    res = run_suggest_specs(str(root), str(specs))
    assert res["needs_review"] == specs_needing_review(str(specs))
    assert res["needs_review"] == [f"{TRAIT}/GSE781", "Other_Trait/GSE9"]
