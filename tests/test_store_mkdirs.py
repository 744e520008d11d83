"""store._mkdirs under concurrency: cohort tasks on one worker's threads create the same store directories at once.

The race is forced: a directory appears between our attempt that found its parent missing and our second attempt,
as when another thread creates it (seen as a flaky FileExistsError in the pipelined preprocess test)."""

from __future__ import annotations

import os
import threading

import pytest

from genotex_dask.io import store


def test_a_directory_made_by_another_thread_meanwhile_is_fine(tmp_path, monkeypatch):
    target = tmp_path / "piped" / "store" / ".tmp-group" / "var"
    real_mkdir = os.mkdir
    raced: list[str] = []

    def mkdir(path, *args, **kwargs):
        path = os.fspath(path)
        if path == str(tmp_path / "piped" / "store") and os.path.isdir(os.path.dirname(path)) and not raced:
            raced.append(path)
            real_mkdir(path)  # the other thread wins the race
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(store.os, "mkdir", mkdir)
    made: set[str] = set()
    store._mkdirs(str(target), made)
    assert raced and target.is_dir() and str(target) in made


def test_a_file_in_the_way_still_raises(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    with pytest.raises(FileExistsError):
        store._mkdirs(str(tmp_path / "a"), set())
    with pytest.raises((FileExistsError, NotADirectoryError)):
        store._mkdirs(str(tmp_path / "a" / "b"), set())


def test_threads_making_one_tree_at_once(tmp_path):
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def make(i: int) -> None:
        start.wait()
        try:
            for j in range(20):
                store._mkdirs(str(tmp_path / "s" / f"d{j}" / "g" / f"t{i}"), set())
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all((tmp_path / "s" / f"d{j}" / "g" / f"t{i}").is_dir() for i in range(8) for j in range(20))
