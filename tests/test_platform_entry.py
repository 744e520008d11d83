"""STORE/platforms/<key> entries: meta.json plus the var objects, as files on local disk (hard-linked into the
cohort groups) and as one blob on an object store.  A saved entry loads back into the same objects in a process
that never saw it (memory cleared); a damaged or hostile entry (sizes that do not match, keys that would leave a
cohort group) is refused, and ingest then parses the table again."""

from __future__ import annotations

import json

import pytest

from genotex_dask.pipelines import ingest as ing


def _entry():
    return {"objects": {"var/zarr.json": b'{"a": 1}', "var/ID/c/0": b"\x00\x01\x02", "var/Gene Symbol/zarr.json": b""},
            "renamed": {"a_b": "a/b"}, "meta": {"n_annotated": 3, "platform": "GPL1"}}


def test_saved_entry_loads_back_in_a_fresh_process(tmp_path):
    store_root = str(tmp_path / "store")
    ing._platform_memory.clear()
    ing.save_platform(store_root, "k1", _entry())
    entry = tmp_path / "store" / ing.PLATFORMS_DIR / "k1"
    files = sorted(p.name for p in entry.iterdir())
    assert ing.ENTRY_BLOB not in files and "meta.json" in files and not (entry / "var").exists()
    assert {str(p.relative_to(entry / ing.ENTRY_FILES)): p.read_bytes()
            for p in (entry / ing.ENTRY_FILES).rglob("*") if p.is_file()} == _entry()["objects"]
    assert ing.platform_link_dir(store_root, "k1") == str(entry / ing.ENTRY_FILES)
    ing._platform_memory.clear()  # as another worker: only the store has it
    got = ing.load_platform(store_root, "k1")
    assert got == _entry()
    assert ing.load_platform(store_root, "other") is None


def test_object_store_entry_is_one_blob(tmp_path):
    import fsspec

    store_root = f"memory://{tmp_path}/store"
    ing._platform_memory.clear()
    ing.save_platform(store_root, "k1", _entry())
    mem = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in mem.find(f"{tmp_path}/store/{ing.PLATFORMS_DIR}/k1"))
    assert ing.ENTRY_BLOB in names and "meta.json" in names and len(names) == 3  # + the .complete marker
    assert ing.platform_link_dir(store_root, "k1") is None
    ing._platform_memory.clear()
    assert ing.load_platform(store_root, "k1") == _entry()


@pytest.mark.parametrize("listed", [
    [["var/zarr.json", 8], ["var/ID/c/0", 2]],                       # sizes short of the blob
    [["var/zarr.json", 8], ["var/ID/c/0", 99]],                      # beyond it
    [["var/../../escape", 11]],                                       # climbs out of the group
    [["/var/zarr.json", 11]], [["obs/zarr.json", 11]], [["var//x", 11]], [["var/zarr.json", -1]],
    [["var/zarr.json", "11"]], [["var/a", 5], ["var/a", 6]],
])
def test_damaged_or_hostile_entries_are_refused(tmp_path, listed):
    store_root = str(tmp_path / "store")
    ing._platform_memory.clear()
    ing.save_platform(store_root, "k1", {"objects": {"var/zarr.json": b'{"a": 1}', "var/ID/c/0": b"xyz"},
                                         "renamed": {}, "meta": {"n_annotated": 0, "platform": "GPL1"}})
    meta = tmp_path / "store" / ing.PLATFORMS_DIR / "k1" / "meta.json"
    m = json.loads(meta.read_text())
    m["objects"] = listed
    meta.write_text(json.dumps(m))
    ing._platform_memory.clear()
    assert ing.load_platform(store_root, "k1") is None
    with pytest.raises(ValueError):
        ing.split_entry(b'{"a": 1}xyz', listed)


def test_entry_file_replaced_by_a_symbolic_link_is_refused(tmp_path):
    store_root = str(tmp_path / "store")
    ing._platform_memory.clear()
    ing.save_platform(store_root, "k1", _entry())
    chunk = tmp_path / "store" / ing.PLATFORMS_DIR / "k1" / ing.ENTRY_FILES / "var" / "ID" / "c" / "0"
    outside = tmp_path / "outside"
    outside.write_bytes(b"abc")  # the object's size: only the link itself tells it apart
    chunk.unlink()
    chunk.symlink_to(outside)
    ing._platform_memory.clear()
    assert ing.load_platform(store_root, "k1") is None
