"""The full-scale benchmark's projection: sample-to-corpus work ratios from synth's plan, not a flat k."""

import math

from benchmarks import bench_fullscale as bf


def test_fit_beta_recovers_a_power_law():
    pairs = [[n, 2e-7 * n ** 2.6] for n in (120, 180, 300, 520, 900)]
    assert math.isclose(bf.fit_beta(pairs), 2.6, rel_tol=1e-6)
    assert bf.fit_beta([[300, 1.0], [300, 2.0]]) == bf.DEFAULT_BETA  # one size: nothing to fit


def test_corpus_measures_grow_with_the_sample_and_hold_its_plan():
    from genotex_dask.synth.corpus import plan_genotex

    m8, m1 = bf.corpus_measures(8, 3.0), bf.corpus_measures(1, 3.0)
    assert all(m1[st] > m8[st] > 0 for st in bf.STAGES)
    plan = plan_genotex(0, 1.0)
    assert m1["specs"] == len(plan["cohorts"]) == 911
    assert m1["evaluate"] == 1384  # every problem of GenoTEX's shape
    assert m1["ingest"] == sum(c["est_gz_bytes"] for c in plan["cohorts"])


def test_analyze_work_counts_only_usable_cohorts():
    """A trait is regressed on its largest usable cohort: an unusable bigger one must not set its cost."""
    from genotex_dask.synth.corpus import UNUSABLE_SCENARIOS, plan_genotex

    plan = plan_genotex(0, 1 / 8)
    kept = set(plan["kept_traits"])
    usable_max: dict[str, int] = {}
    for c in plan["cohorts"]:
        if c["scenario"] not in UNUSABLE_SCENARIOS:
            usable_max[c["trait"]] = max(usable_max.get(c["trait"], 0), c["n_samples"])
    # the 1/8 sample holds a trait whose largest cohort is unusable: the case that matters
    assert any(c["n_samples"] > usable_max.get(c["trait"], 0) for c in plan["cohorts"])
    expect = sum((1 + len(t["conditions"])) * usable_max.get(t["name"], 0) ** 2.0
                 for t in plan["traits"] if t["name"] in kept)
    assert math.isclose(bf.corpus_measures(8, 2.0)["analyze"], expect)


def test_scale_factors_are_ratios_and_project_uses_them():
    f = bf.scale_factors(8, 4, 3.0)
    a, b = bf.corpus_measures(8, 3.0), bf.corpus_measures(4, 3.0)
    assert all(math.isclose(f[st], b[st] / a[st]) for st in bf.STAGES)
    stage = {"groups": [4.0, 2.0, 1.0], "client_scheduler_cpu_s": 0.0, "n_tasks": 3, "critical_chain_s": 4.0,
             "wall_s": 4.0}
    run = {"workers": 1, "stages": {"analyze": stage}}
    # one worker: the projected wall is the scaled total work (7 s x factor) plus no fixed overhead
    p = bf.project(run, 2, (1,), {"analyze": 3.0})[1]
    assert math.isclose(p["stages"]["analyze"], 7.0 * 3.0)
    assert math.isclose(bf.project(run, 2, (1,))[1]["stages"]["analyze"], 14.0)  # default: k times


def test_idle_decomposition_splits_each_workers_wall_time():
    tasks = [{"worker": "a", "start": 1.0, "stop": 3.0, "seconds": 2.0},
             {"worker": "a", "start": 3.5, "stop": 4.0, "seconds": 0.5},
             {"worker": "b", "start": 2.0, "stop": 9.0, "seconds": 7.0}]
    d = bf.idle_decomposition(tasks, start=0.5, stop=10.0, workers=["a", "b", "c"])
    assert d["a"] == {"busy": 2.5, "head": 0.5, "gaps": 0.5, "tail": 6.0}
    assert d["b"] == {"busy": 7.0, "head": 1.5, "gaps": 0.0, "tail": 1.0}
    assert d["c"] == {"busy": 0.0, "head": 9.5, "gaps": 0.0, "tail": 0.0}  # never got a task: all of it idle
    for w in "ab":  # busy + idle = the stage's wall time, per worker
        assert math.isclose(sum(d[w].values()), 9.5)


def _stage(wall, n_tasks, cpu, per_worker, client=0.5):
    return {"wall_s": wall, "n_tasks": n_tasks, "task_cpu_s_sum": cpu, "per_worker": per_worker,
            "client_scheduler_cpu_s": client}


def test_scaling_decomposition_is_exact_and_names_the_causes():
    # 1 worker: 20 s = 19.5 s in tasks (19 s of CPU, 0.5 s waiting for a core) + 0.5 s before the first task.
    # 2 workers: 12 s each; 21.5 s in tasks (21 s of CPU: 2 s more), idle 0.5 + 0.5 head, 0.5 gaps, 1 s tail
    one = {"stages": {"analyze": _stage(20.0, 10, 19.0, {"a": {"busy": 19.5, "head": 0.5, "gaps": 0.0,
                                                               "tail": 0.0}})}}
    two = {"stages": {"analyze": _stage(12.0, 10, 21.0, {
        "a": {"busy": 10.0, "head": 0.5, "gaps": 0.5, "tail": 1.0},
        "b": {"busy": 11.5, "head": 0.5, "gaps": 0.0, "tail": 0.0}})}}
    d = bf.scaling_decomposition(one, two)["analyze"]
    assert d["loss_s"] == 2.0  # 12 - 20 / 2
    # (21 - 19) / 2 extra CPU, ((21.5 - 21) - (19.5 - 19)) / 2 waiting, ((2.5) - (0.5)) / 2 idle
    assert (d["extra_cpu"], d["extra_wait"], d["extra_idle"]) == (1.0, 0.0, 1.0)
    assert math.isclose(d["extra_cpu"] + d["extra_wait"] + d["extra_idle"], d["loss_s"])
    assert (d["idle_head_2"], d["idle_gaps_2"], d["idle_tail_2"]) == (0.5, 0.25, 0.5)
    tot = bf.scaling_decomposition(one, two)["total"]
    assert tot["speedup"] == round(20 / 12, 3)


def test_measured_takes_the_run_of_the_asked_fraction(tmp_path):
    import json

    import pytest

    f = tmp_path / "fullscale.json"
    f.write_text(json.dumps({"fraction": 4, "main": {"run": "quarter"}, "check": {"fraction": 8},
                             "check_run": {"run": "eighth"}}))
    assert bf._measured(f, 4)["run"] == "quarter"
    assert bf._measured(f, 8)["run"] == "eighth"
    with pytest.raises(SystemExit, match="no measured 1/2 run"):
        bf._measured(f, 2)


def _pair(fraction: int, one_s: float, two_s: float, cold: bool = True) -> dict:
    def run(wall: float) -> dict:
        st = {"wall_s": wall, "busy_cores": 1.0, "load_avg_end": [1.0, 1.0, 1.0]}
        r = {"stages": {s: dict(st) for s in bf.STAGES}, "total_wall_s": wall * len(bf.STAGES)}
        if cold:
            r["corpus_cold"] = {"files": 3, "gb": 0.1}
        return r
    return {"fraction": fraction, "runs": [run(one_s), run(two_s)]}


def test_pairs_of_another_sample_get_their_own_table():
    res = {"scaling": _pair(8, 2.0, 1.0),
           "scaling_other_runs": [_pair(8, 3.0, 2.0, cold=False), _pair(2, 9.0, 5.0), _pair(2, 8.0, 5.0)]}
    md = bf.to_markdown(res)
    eighth, half = md.split("## 1 vs 2 workers (1/8 sample)")[1].split("## 1 vs 2 workers (1/2 sample)")
    assert "| total | 10.0 | 5.0 | 2.0 |" in eighth
    assert "1.50x (15.0 s vs 10.0 s)" in eighth and "1.80x" not in eighth  # earlier pairs: this sample's only
    assert "| total | 40.0 | 25.0 | 1.6 |" in half  # the latest 1/2 pair is the table, the other one listed
    assert "1.80x (45.0 s vs 25.0 s)" in half
    assert "dropped from the page cache" in eighth


def test_cold_corpus_counts_every_file_it_drops(tmp_path):
    (tmp_path / "input" / "T").mkdir(parents=True)
    (tmp_path / "input" / "T" / "a.gz").write_bytes(b"x" * 1000)
    (tmp_path / "truth.json").write_bytes(b"{}")
    assert bf.cold_corpus(tmp_path) == {"files": 2, "gb": 0.0}
    assert (tmp_path / "input" / "T" / "a.gz").read_bytes() == b"x" * 1000  # dropped from memory, not from disk
