"""Reviewed specs shipped with the package override suggestions for the cohorts they cover, and only those."""

from __future__ import annotations

from genotex_dask.pipelines.specs import REVIEWED_SPECS, apply_reviewed_specs, write_spec_unless_edited
from genotex_dask.preprocess.specs import CohortSpec, FeatureSpec, dump_specs, parse_specs

TRAIT = "Kidney_Clear_Cell_Carcinoma"


def _suggested(tmp_path):
    # a plausible but wrong suggestion for GSE781 (title words), next to a cohort the reviewed file lacks
    wrong = CohortSpec(TRAIT, "GSE781", trait_spec=FeatureSpec(source="title",
                                                               rules=[("carcinoma", 1.0), ("normal", 0.0)]))
    other = CohortSpec(TRAIT, "GSE1", trait_spec=FeatureSpec(source="characteristics", key="disease state",
                                                             values={"ccrcc": 1.0, "normal": 0.0}))
    d = tmp_path / "specs"
    d.mkdir()
    # written as `specs suggest` writes it (with its digest line): a generated file, not a hand-edited one
    write_spec_unless_edited(str(d / f"{TRAIT}.yaml"), dump_specs(TRAIT, {"GSE781": wrong, "GSE1": other}))
    return d


def test_reviewed_spec_wins_for_its_cohorts_only(tmp_path):
    d = _suggested(tmp_path)
    replaced = apply_reviewed_specs(str(d))
    assert replaced == [f"{TRAIT}/GSE781"]
    merged = parse_specs((d / f"{TRAIT}.yaml").read_text())
    reviewed = parse_specs(open(f"{REVIEWED_SPECS}/{TRAIT}.yaml").read())
    assert merged["GSE781"].trait_spec.source == "source_name"
    assert merged["GSE781"].trait_spec.rules == reviewed["GSE781"].trait_spec.rules
    assert merged["GSE1"].trait_spec.key == "disease state"


def test_no_overlay_without_a_matching_trait_file(tmp_path):
    d = tmp_path / "specs"
    d.mkdir()
    assert apply_reviewed_specs(str(d)) == []
    assert list(d.iterdir()) == []


def test_a_hand_edited_suggestion_is_not_overlaid(tmp_path):
    d = _suggested(tmp_path)
    f = d / f"{TRAIT}.yaml"
    f.write_text(f.read_text().replace("disease state", "disease"))
    before = f.read_text()
    assert apply_reviewed_specs(str(d)) == []
    assert f.read_text() == before
