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
