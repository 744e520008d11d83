"""The whole pipeline on real processes: an external scheduler, lost workers, an interrupted client, S3.

One tiny synthetic corpus (2 traits x 2 cohorts x 30 samples x 300 probes) is run once on an embedded
LocalCluster; that run is the reference every other run must reproduce:

* (a) ``genotex-dask run --scheduler`` against ``dask scheduler`` + 2 ``dask worker`` processes;
* (b) preprocess + analyze while a worker SIGKILLs itself at the start of the first cohort's finalize
  task, and again at the start of the first analysis task (the nannies restart them; the scheduler
  recomputes what was lost, including the finished sample blocks the dead worker held);
* (c) ``genotex-dask analyze`` interrupted with SIGINT once the first problem is written, then rerun:
  the rerun skips exactly the problems already finished, and nothing partial is left anywhere;
* (d) inputs read from and outputs written to ``s3://`` on a moto server.

"Equal" means byte-for-byte for every JSON/CSV/YAML output except the run records that hold timings
(``*summary*.json``), and value-for-value (X, obs, var) for the Zarr cohort store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from _chaos import KillEachOnce, KillOnce, running_tasks

from genotex_dask import api, cluster, layout
from genotex_dask.io import fs, store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
# Task keys of the stages (their pipelines name them): where the chaos plugin strikes.
TASK_MATCH = {"preprocess": "finalize-", "analyze": "_fast_task"}

CORPUS = {"traits": 2, "cohorts_per_trait": 2, "samples": 30, "probes": 300, "platforms": 1, "seed": 0}
GENOTEX_DASK = str(Path(sys.executable).parent / "genotex-dask")
# Run summaries and resume records hold wall times and input fingerprints (mtimes), so two correct runs
# differ there (OUT/preprocess_meta, OUT/regress/<Trait>/.records, *summary.json). Everything else must
# be identical: the GenoTEX-layout CSV/JSON outputs byte for byte, the Zarr stores value for value.
VOLATILE_SUFFIX = "summary.json"
VOLATILE_PARTS = ("/.records/",)
COMPARED_DIRS = ("preprocess", "regress")
ZARR_DIRS = ("store", "preprocess_store")


# ---- helpers ------------------------------------------------------------------------------------

def _files(root: str, subdirs: tuple[str, ...] = COMPARED_DIRS) -> dict[str, bytes]:
    """Relative path -> bytes of every output file under ROOT/<subdir> (any fsspec URL)."""
    out: dict[str, bytes] = {}
    for sub in subdirs:
        base = layout.join(root, sub)
        fsys, path = fs.get_fs(base)
        fsys.invalidate_cache()
        if not fsys.exists(path):
            continue
        for p in fsys.find(path):
            rel = f"{sub}/{p[len(path) + 1:]}"
            if not rel.endswith(VOLATILE_SUFFIX) and not any(v in rel for v in VOLATILE_PARTS):
                out[rel] = fsys.cat_file(p)
    return out


def assert_same_outputs(got_root: str, ref_root: str, subdirs: tuple[str, ...] = COMPARED_DIRS) -> None:
    got, ref = _files(got_root, subdirs), _files(ref_root, subdirs)
    assert sorted(got) == sorted(ref), "different sets of output files"
    differ = [k for k in ref if got[k] != ref[k]]
    assert not differ, f"outputs differ from the LocalCluster run: {differ[:10]}"
    assert any(k.startswith("regress/") for k in ref) and any(k.startswith("preprocess/") for k in ref)


def _cohort_groups(store_url: str) -> list[str]:
    """Relative paths of the cohort groups (``GEO/<Trait>/<cohort>.zarr``, ``TCGA/<dir>.zarr``)."""
    fsys, path = fs.get_fs(store_url)
    fsys.invalidate_cache()
    groups = set()
    for p in fsys.find(path):
        rel = p[len(path.rstrip("/")) + 1:]
        head = rel.split(".zarr/", 1)
        if len(head) == 2:
            groups.add(head[0] + ".zarr")
    return sorted(groups)


def assert_same_stores(got_out: str, ref_out: str, subdirs: tuple[str, ...] = ZARR_DIRS) -> None:
    """The cohort store and the preprocessed store: same groups, each complete, same X/obs/var values."""
    for sub in subdirs:
        got_store, ref_store = layout.join(got_out, sub), layout.join(ref_out, sub)
        got, ref = _cohort_groups(got_store), _cohort_groups(ref_store)
        assert got == ref and ref, f"{sub}: cohort groups differ: {got} vs {ref}"
        for rel in ref:
            a, b = layout.join(got_store, rel), layout.join(ref_store, rel)
            assert fs.is_complete_dir(a), f"{a} is not a complete group"
            ga, gb = ad.read_zarr(store.zarr_store(a, read_only=True)), ad.read_zarr(store.zarr_store(b, True))
            np.testing.assert_array_equal(np.asarray(ga.X), np.asarray(gb.X), err_msg=rel)
            pd.testing.assert_frame_equal(ga.obs, gb.obs, obj=f"{rel} obs")
            pd.testing.assert_frame_equal(ga.var, gb.var, obj=f"{rel} var")


def assert_nothing_partial(*roots: str) -> None:
    """No temporary left behind, and every JSON/CSV output parses."""
    for root in roots:
        assert fs.leftover_temporaries(root) == [], f"temporaries left under {root}"
        fsys, path = fs.get_fs(root)
        for p in fsys.find(path):
            if ".zarr/" in p:
                continue
            if p.endswith(".json"):
                json.loads(fsys.cat_file(p))
            elif p.endswith(".csv"):
                with fsys.open(p, "rb") as f:
                    pd.read_csv(f)


def run_stages(root: str, out: str, client, specs: str | None = None) -> dict:
    """ingest -> specs suggest -> preprocess -> analyze with the given client (the stages of `genotex-dask run`
    without evaluation)."""
    st = layout.join(out, "store")
    specs = specs or layout.join(out, "specs")
    res = {"ingest": api.ingest(root, st, client=client, progress=False)}
    res["specs"] = api.suggest_specs(root, specs, store=st)
    res["preprocess"] = api.preprocess(root, specs, out, store=st, client=client, progress=False)
    res["analyze"] = api.analyze(root, out, client=client, progress=False)
    return res


def _cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([GENOTEX_DASK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env or dict(os.environ), **kw)


def _problems(out: str) -> list[str]:
    fsys, path = fs.get_fs(layout.regress_dir(out))
    fsys.invalidate_cache()
    if not fsys.exists(path):
        return []
    return sorted(p for p in fsys.find(path) if p.rsplit("/", 1)[-1].startswith("significant_genes"))


# ---- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    from genotex_dask.synth.corpus import write_corpus

    root = str(tmp_path_factory.mktemp("corpus"))
    write_corpus(root, **CORPUS)
    return root


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict:
    """The embedded-LocalCluster run that every other run must reproduce."""
    out = str(tmp_path_factory.mktemp("ref") / "out")
    with cluster.connect(workers=2, threads=1, memory_limit="2GiB", quiet=True) as client:
        summaries = run_stages(corpus, out, client)
    assert not summaries["ingest"]["failed"]
    assert _problems(out), "the reference run solved no problem: nothing to compare"
    return {"out": out, "store": layout.join(out, "store"), "summaries": summaries}


# ---- (a) an external scheduler through the CLI ---------------------------------------------------

def test_cli_on_external_scheduler_equals_local_run(corpus, reference, dask_cluster, tmp_path):
    out = str(tmp_path / "out")
    env = dict(os.environ)
    env.pop(cluster.SCHEDULER_ENV, None)
    steps = [
        ["ingest", corpus, "--store", layout.join(out, "store")],
        ["specs", "suggest", corpus, "--out", layout.join(out, "specs"), "--store", layout.join(out, "store")],
        ["preprocess", corpus, "--specs", layout.join(out, "specs"), "--out", out, "--store", layout.join(out, "store")],
        ["analyze", corpus, "--out", out],
    ]
    for step in steps:
        cluster_args = [] if step[0] == "specs" else ["--scheduler", dask_cluster.address, "--no-progress"]
        p = _cli(*step, *cluster_args, env=env)
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, f"{step[0]} failed:\n{stderr.decode()[-3000:]}"
        if cluster_args:
            assert f"connected to scheduler {dask_cluster.address}" in stdout.decode()
            assert "dashboard: http://127.0.0.1:" in stdout.decode()
    assert_same_outputs(out, reference["out"], (*COMPARED_DIRS, "specs"))
    assert_same_stores(out, reference["out"])
    assert_nothing_partial(out)


# ---- (b) a worker SIGKILLed mid-stage -----------------------------------------------------------

def test_sigkilled_workers_do_not_change_results(reference, corpus, dask_cluster, tmp_path):
    """Preprocess and analyze (from the reference's cohort store) while workers die mid-stage."""
    out = str(tmp_path / "out")
    flags = {stage: str(tmp_path / f"killed-in-{stage}") for stage in ("preprocess", "analyze")}
    with dask_cluster.client(timeout=30) as client:
        plugins = [KillOnce(TASK_MATCH[stage], flag) for stage, flag in flags.items()]
        for plugin in plugins:
            client.register_plugin(plugin)
        try:
            pre = api.preprocess(corpus, layout.join(reference["out"], "specs"), out, store=reference["store"],
                                 client=client, progress=False)
            ana = api.analyze(corpus, out, client=client, progress=False)
        finally:
            for plugin in plugins:
                client.unregister_worker_plugin(plugin.name)
        client.wait_for_workers(2, timeout=60)  # the nannies restarted the killed workers
        pids_after = set(client.run(os.getpid).values())
    for stage, flag in flags.items():
        assert os.path.exists(flag), f"no worker was killed during {stage}"
        killed_pid = int(Path(flag).read_text().split()[0])
        assert killed_pid not in pids_after, "the killed worker is still registered"
    assert pre["skipped"] == 0 and pre["done"] == reference["summaries"]["preprocess"]["done"]
    assert not pre["failed"] and ana["failed"] == 0
    assert ana["written"] == reference["summaries"]["analyze"]["written"]
    assert_same_outputs(out, reference["out"])
    assert_same_stores(out, reference["out"], ("preprocess_store",))
    assert_nothing_partial(out)


def test_analyze_survives_losing_every_worker_at_once(corpus, reference, dask_cluster, tmp_path):
    """Both workers die at their first analysis task, so the scheduler has no worker for a moment and the
    problems routed to the dead addresses are resubmitted unrouted (distributed would leave them waiting)."""
    out = tmp_path / "out"
    for sub in ("preprocess", "preprocess_meta", "preprocess_store"):
        shutil.copytree(Path(reference["out"]) / sub, out / sub)
    flag_dir = tmp_path / "killed"
    flag_dir.mkdir()
    with dask_cluster.client(timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        names = sorted(str(w["name"]) for w in client.scheduler_info(n_workers=-1)["workers"].values())
        plugin = KillEachOnce(TASK_MATCH["analyze"], str(flag_dir))
        client.register_plugin(plugin)
        try:
            ana = api.analyze(corpus, str(out), client=client, progress=False)
        finally:
            client.unregister_worker_plugin(plugin.name)
        client.wait_for_workers(2, timeout=60)
    assert sorted(p.name for p in flag_dir.iterdir()) == names, "not every worker was killed"
    assert ana["failed"] == 0 and ana["written"] == reference["summaries"]["analyze"]["written"]
    ref_regress = Path(reference["out"]) / "regress"
    for f in ref_regress.rglob("*.json"):
        if f.name != "run_summary.json":
            assert (out / "regress" / f.relative_to(ref_regress)).exists(), f
    assert_nothing_partial(str(out))


# ---- (c) the client interrupted with SIGINT, then rerun ------------------------------------------

def test_sigint_then_rerun_resumes_without_recomputing(corpus, reference, dask_cluster, tmp_path):
    # Exact mode: each problem is 36 tasks (7 values x 5 folds + the final fit), so after the first problem is
    # written the others are still far from done when the interrupt lands (fast-mode problems on this small
    # corpus take milliseconds: all of them could finish between the first write and the signal).
    outs = {}
    for name in ("out", "straight"):
        outs[name] = tmp_path / name
        for sub in ("preprocess", "preprocess_meta", "preprocess_store"):  # analysis starts from these
            shutil.copytree(Path(reference["out"]) / sub, outs[name] / sub)
        (outs[name] / "preprocess" / "run_summary.json").unlink()
    out, straight = str(outs["out"]), str(outs["straight"])
    env = dict(os.environ)
    env.pop(cluster.SCHEDULER_ENV, None)
    env["DASK_GENOTEX_DASK__ANALYZE__BATCH_PROBLEMS"] = "1"

    def args(o: str) -> list[str]:
        return ["analyze", corpus, "--out", o, "--mode", "exact", "--scheduler", dask_cluster.address,
                "--no-progress"]

    p = _cli(*args(straight), env=env)  # the same analysis without an interrupt: what the resumed run must equal
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr.decode()[-3000:]
    total = len(_problems(straight))
    assert total == len(_problems(reference["out"]))

    p = _cli(*args(out), env=env)
    deadline = time.monotonic() + 120
    while not _problems(out):
        assert p.poll() is None, f"analyze ended before any problem was written: {p.stderr.read().decode()}"
        assert time.monotonic() < deadline, "no problem written within 120 s"
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr.decode()[-2000:]
    # Tasks already running on the workers still finish (the scheduler cannot stop a running thread) and
    # write their outputs atomically; wait until no worker runs anything before counting.
    with dask_cluster.client(timeout=30) as client:
        deadline = time.monotonic() + 60
        while sum(client.run(running_tasks).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert_nothing_partial(out)
    finished = _problems(out)
    assert 0 < len(finished) < total, f"interrupt came too late to test resuming ({len(finished)}/{total})"

    p = _cli(*args(out), env=env)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr.decode()[-3000:]
    summary = fs.read_json(layout.join(layout.regress_dir(out), "run_summary.json"))
    assert summary["skipped_up_to_date"] == len(finished), summary
    assert summary["written"] == total - len(finished) and summary["failed"] == 0, summary
    assert_same_outputs(out, straight)
    assert_nothing_partial(out)


# ---- (d) object storage -------------------------------------------------------------------------

def test_s3_inputs_and_outputs_equal_local_run(corpus, reference, dask_cluster, moto_s3):
    bucket = moto_s3.new_bucket()
    s3, _ = fs.get_fs(bucket)
    s3.put(corpus.rstrip("/") + "/", f"{bucket[5:]}/corpus/", recursive=True)
    root, out = f"{bucket}/corpus", f"{bucket}/out"
    with dask_cluster.client(timeout=30) as client:
        summaries = run_stages(root, out, client, specs=layout.join(reference["out"], "specs"))
    assert not summaries["ingest"]["failed"]
    assert_same_outputs(out, reference["out"])
    assert_same_stores(out, reference["out"])
    assert_nothing_partial(out)


# ---- the whole run scored: against the planted truth and against itself ---------------------------

def test_full_run_evaluates_with_planted_truth_and_against_itself(corpus, reference, tmp_path):
    report = str(tmp_path / "report")
    summary = api.evaluate(reference["out"], ref=reference["out"], truth=corpus, report=report)
    assert summary["failed"] == 0 and not summary["errors"]
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    truth = json.loads((Path(corpus) / "truth.json").read_text())
    planted = metrics["planted_truth"]["per_problem"]
    assert {(p["trait"], p["condition"]) for p in planted} == {(p["trait"], p["condition"]) for p in truth["problems"]}
    assert any(p["scored"] and p["f1"] > 0 for p in planted), "no planted gene recovered anywhere"
    # a run scored against itself is perfect on every task it has answers for
    assert metrics["filtering"]["average"]["f1"] == 100.0
    assert metrics["selection"]["average"]["accuracy"] == 100.0
    assert all(p["f1"] == 100.0 for p in metrics["analysis"]["per_problem"])
    html = (tmp_path / "report" / "index.html").read_text()
    assert "Planted" in html and html.count("<img") >= 3
