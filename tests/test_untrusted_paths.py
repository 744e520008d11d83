"""Names from inputs never build a path outside their root (issue 14): spec trait/cohort names, task_info.json
traits, cohort_info.json cohorts, directory listings (unsafe names, symbolic links leaving ROOT/input)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from genotex_dask import layout
from genotex_dask.io import fs
from genotex_dask.pipelines import analyze
from genotex_dask.pipelines.ingest import discover
from genotex_dask.pipelines.preprocess import run_preprocess
from genotex_dask.pipelines.specs import run_suggest_specs
from tests._geo_files import GSE781_ROOT, traversal_specs_tree
from tests._geo_files import GSE781_TRAIT as TRAIT


def _tree(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


@pytest.mark.parametrize("bad", ["../x", "..", "a/../../b", "/etc/passwd", "a\\b", "a\x00b", "", " ", ".",
                                 "memory://x", "a::file://b"])
def test_check_name_rejects_path_syntax(bad):
    with pytest.raises(layout.UnsafePathError, match="unsafe trait name"):
        layout.check_name(bad, "trait name", "spec.yaml:3")
    assert not layout.is_safe_name(bad)


@pytest.mark.parametrize("root", ["/out", "out", "memory://bucket/out", "s3://bucket/out"])
def test_join_stays_under_its_root(root):
    assert layout.join(root, "preprocess", "GSE1.csv") == f"{root}/preprocess/GSE1.csv"
    assert layout.join(root, "/abs/name") == f"{root}/abs/name"  # an absolute part lands under root
    for part in ("../x", "a/../../x", "..", "a\\..\\x", "x\x00", "memory://y", "a::s3://b"):
        with pytest.raises(layout.UnsafePathError):
            layout.join(root, "preprocess", part)
    with pytest.raises(layout.UnsafePathError):
        _ = layout.PreprocessPaths(root, "../../ESC", "GSE1").cohort_info
    with pytest.raises(layout.UnsafePathError):
        layout.significant_genes_path(root, "../ESC", None)


def test_traversal_names_in_specs_and_task_info_stay_inside_out(tmp_path, client):
    """A spec with '../' trait/cohort names and a task_info with '../' or absolute traits: named errors for
    those items, the real cohort and problem finish, and nothing exists outside OUT afterwards."""
    root, specs, good = traversal_specs_tree(tmp_path)
    abs_target = tmp_path / f"ABS_{uuid.uuid4().hex}"
    task = json.loads((root / "metadata/task_info.json").read_text())
    task["../../../ESC_TRAIT"] = {"related_genes": [], "conditions": ["../../../ESC_COND"]}
    task[str(abs_target)] = {"related_genes": [], "conditions": []}
    task["Fake"] = {"related_genes": [], "conditions": []}
    (root / "metadata/task_info.json").write_text(json.dumps(task))
    out = tmp_path / "deep" / "er" / "out"
    before = _tree(tmp_path) - {"deep", "deep/er"}

    s = run_preprocess(str(root), str(specs), str(out), client, progress=False)
    assert s["done"] == 1 and f"{TRAIT}/GSE781" in s["usable"]
    assert "unsafe cohort name '../../../ESC_COHORT'" in s["failed"][f"{TRAIT}/../../../ESC_COHORT"]
    assert f"{TRAIT}.yaml:" in s["failed"][f"{TRAIT}/../../../ESC_COHORT"]
    assert "unsafe trait name" in s["failed"]["../../../ESC_TRAIT/GSE781"]
    # a cohort_info.json naming a cohort with '../' (e.g. edited by hand): analyze refuses that name too
    fake = out / "preprocess" / "Fake"
    fake.mkdir(parents=True)
    (fake / "cohort_info.json").write_text(json.dumps({"../../../../ESC_C": {
        "is_usable": True, "is_gene_available": True, "is_trait_available": True, "is_available": True,
        "is_biased": False, "has_age": False, "has_gender": False, "sample_size": 50, "note": ""}}))

    a = analyze.run_analyze(str(root), str(out), client, mode="fast", progress=False)
    assert a["written"] == 1 and a["failed"] == 0
    reasons = {d["problem"]: d["reason"] for d in a["no_cohort_problems"]}
    assert "unsafe trait name '../../../ESC_TRAIT'" in reasons["../../../ESC_TRAIT/significant_genes_condition_None"]
    assert "task_info.json" in reasons["../../../ESC_TRAIT/significant_genes_condition_None"]
    assert "unsafe trait name" in reasons[f"{abs_target}/significant_genes_condition_None"]
    assert "unsafe cohort name '../../../../ESC_C'" in reasons["Fake/significant_genes_condition_None"]
    assert (out / "regress" / TRAIT / "significant_genes_condition_None.json").exists()

    # evaluation against a reference run (itself) reports the unsafe names and scores the rest
    from genotex_dask.evaluation.evaluate import evaluate_metrics

    ev = evaluate_metrics(str(out), ref=str(out), task_info=str(root / "metadata/task_info.json"))
    unsafe = {e["item"] for e in ev["summary"]["errors"] if e["task"] == "task_info"}
    assert unsafe == {"../../../ESC_TRAIT", str(abs_target)}
    assert ev["summary"]["problems_analysis"] >= 1

    after = _tree(tmp_path) - {"deep", "deep/er"}
    escaped = {p for p in after - before if not p.startswith("deep/er/out")}
    assert escaped == set(), escaped
    assert not abs_target.exists()
    assert not any("ESC" in p for p in _tree(tmp_path / "deep"))


def test_listing_skips_unsafe_names_and_links_leaving_root(tmp_path):
    """Ingest discovery (and every fs.listdir caller) skips symlinks that leave ROOT/input, follows the ones that
    stay inside, and never lists a name that is unsafe as a path component."""
    root = tmp_path / "root"
    shutil.copytree(GSE781_ROOT, root)
    outside = tmp_path / "outside" / "GSE999"
    shutil.copytree(root / "input/GEO" / TRAIT / "GSE781", outside)
    geo = root / "input/GEO"
    os.symlink(outside.parent, geo / "Leaving")                      # trait dir leaving ROOT
    os.symlink(outside, geo / TRAIT / "GSE999")                      # cohort dir leaving ROOT
    os.symlink(geo / TRAIT, geo / "Inside")                           # stays inside ROOT/input: followed
    (geo / "Other").mkdir()
    os.symlink("/etc/hostname", geo / "Other" / "x_series_matrix.txt")  # a file link leaving ROOT
    jobs = discover(str(root), str(tmp_path / "store"))
    keys = sorted(j.key for j in jobs)
    assert keys == ["GEO/Inside/GSE781", f"GEO/{TRAIT}/GSE781"]
    assert all(not j.error for j in jobs)
    assert fs.listdir(str(geo / TRAIT)) == ["GSE781"]
    assert "Leaving" not in fs.listdir(str(geo)) and "Inside" in fs.listdir(str(geo))
    # spec suggestion lists through the same helper: the same cohorts, nothing behind the escaping links
    s = run_suggest_specs(str(root), str(tmp_path / "specs"))
    assert sorted(s["confidence"]) == ["Inside/GSE781", f"{TRAIT}/GSE781"], s
    assert not s["errors"], s["errors"]


def test_object_store_listing_skips_dotdot_keys():
    """Object stores allow keys with '..' segments; listings never hand them on as names."""
    base = f"memory://gtx-{uuid.uuid4().hex}"
    memfs, _ = fs.get_fs(base)
    memfs.pipe_file(f"{base[len('memory://'):]}/input/GEO/T/GSE1/GSE1_series_matrix.txt", b"x")
    memfs.pipe_file(f"{base[len('memory://'):]}/input/GEO/T/../../ESC/m_series_matrix.txt", b"x")
    names = fs.listdir(layout.join(base, "input", "GEO", "T"))
    assert ".." not in names and "GSE1" in names
