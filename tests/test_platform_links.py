"""Cohorts on a platform the store knows hard-link their var files from the store's platform entry
(STORE/platforms/<key>/files) instead of writing the same bytes again: one copy per platform on disk.  A linked
group reads back exactly as a written one (our reader and anndata's), and an entry file that is not the
object's bytes by size, or is a symbolic link, is never linked: the bytes are written instead."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anndata as ad
import pytest

from genotex_dask.io import store
from genotex_dask.pipelines import ingest as ing
from genotex_dask.synth.corpus import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("links") / "corpus"
    write_corpus(str(root), traits=1, cohorts_per_trait=4, samples=12, probes=300, platforms=1, seed=5)
    return root


def _var_files(group: str) -> dict[str, os.stat_result]:
    top = Path(group)
    return {str(p.relative_to(top)): p.lstat() for p in sorted((top / "var").rglob("*")) if p.is_file()}


def _ingest_all(root: Path, st: Path, fresh_worker: bool = True) -> list[dict]:
    if fresh_worker:  # the first cohort parses the table and saves the entry
        ing._platform_memory.clear()
    jobs = sorted((j for j in ing.discover(str(root), str(st)) if j.kind == "GEO"), key=lambda j: j.key)
    out = [ing.ingest_cohort(j) for j in jobs]
    assert [r["status"] for r in out] == ["ingested"] * len(jobs) and len(jobs) >= 3
    return out


def _entry_files(st: Path) -> Path:
    (entry,) = [p for p in (st / ing.PLATFORMS_DIR).iterdir() if not p.name.startswith(".")]
    return entry / ing.ENTRY_FILES


def test_known_platform_groups_link_the_entry_files(corpus, tmp_path):
    st = tmp_path / "store"
    res = _ingest_all(corpus, st)
    files = _entry_files(st)
    entry = {str(p.relative_to(files)): p.lstat() for p in sorted(files.rglob("*")) if p.is_file()}
    assert entry and all(k.startswith("var/") for k in entry)
    groups = [_var_files(r["store"]) for r in res]
    for g in groups:  # every var file of every group is the entry's inode (the first group's were linked into it)
        assert g.keys() == entry.keys()
        assert all(g[k].st_ino == entry[k].st_ino and g[k].st_nlink == len(groups) + 1 for k in g)
    # the same group as one written without links, byte for byte, and readable by anndata
    ing._platform_memory.clear()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(store, "_link_same", lambda src, dst, size: False)  # a file system without hard links
        plain = _ingest_all(corpus, tmp_path / "plain")
    skip = {store.COMPLETE_MARK, "genotex_ingest.json"}  # the marker, and the record's completion time
    for a, b in zip(res, plain):
        fa, fb = ({str(p.relative_to(g)): p.read_bytes() for p in Path(g).rglob("*")
                   if p.is_file() and p.name not in skip} for g in (a["store"], b["store"]))
        assert fa == fb
        assert all(s.st_nlink == 1 for s in _var_files(b["store"]).values())
    last = res[-1]["store"]
    assert store.read_var(last).equals(ad.read_zarr(last).var)
    # removing the entry leaves the groups whole
    shutil.rmtree(st / ing.PLATFORMS_DIR)
    assert store.read_var(last).equals(store.read_var(plain[-1]["store"]))


def test_entry_files_that_differ_are_written_not_linked(corpus, tmp_path):
    st = tmp_path / "store"
    first = _ingest_all(corpus, st)[0]
    files = _entry_files(st)
    chunks = sorted(p for p in files.rglob("c/0") if p.is_file())
    wrong_size, as_symlink = chunks[0], chunks[1]
    wrong_size.unlink()
    wrong_size.write_bytes(b"not the object")
    target = Path(first["store"]) / as_symlink.relative_to(files)
    as_symlink.unlink()
    as_symlink.symlink_to(target)
    again = _ingest_all(corpus, tmp_path / "again")  # a new store: its own entry, unaffected
    # re-ingest the first cohort of the store with the damaged entry in place (memory holds the objects)
    shutil.rmtree(first["store"])
    job = next(j for j in ing.discover(str(corpus), str(st)) if j.out == first["store"])
    assert ing.ingest_cohort(job)["status"] == "ingested"
    g = _var_files(first["store"])
    for bad in (wrong_size, as_symlink):
        rel = str(bad.relative_to(files))
        assert g[rel].st_nlink == 1 and not Path(first["store"], rel).is_symlink()
    assert store.read_var(first["store"]).equals(store.read_var(again[0]["store"]))


def test_platform_known_to_the_worker_but_new_to_the_store(corpus, tmp_path):
    _ingest_all(corpus, tmp_path / "a")
    with pytest.MonkeyPatch.context() as m:  # the worker remembers the annotation: nothing parsed
        m.setattr(ing, "read_soft_platforms", lambda *a, **k: pytest.fail("parsed a known platform table"))
        m.setattr(ing, "soft_table_from_bytes", lambda *a, **k: pytest.fail("parsed a known platform table"))
        res = _ingest_all(corpus, tmp_path / "b", fresh_worker=False)
    files = _entry_files(tmp_path / "b")  # saved into the new store from the first group, as links
    entry = {str(p.relative_to(files)): p.lstat().st_ino for p in files.rglob("*") if p.is_file()}
    for r in res:
        assert {k: v.st_ino for k, v in _var_files(r["store"]).items()} == entry
