"""Fast-mode Lasso grid per CV fold: the older working-set strategy against the resumed walk, side by side.

One fold's solve in ``tuning.tune_fast`` is ``models.lasso_grid`` on n train samples x p genes over the
7-value grid (1 .. 1e-6).  Both strategies are run on the same data in one process, single-threaded BLAS
(as on the engine's workers):

* ``old``: first working set max(24n, 500) genes, the whole LARS path on it, KKT on all genes, violators
  (<= 2n) join and the path restarts from lambda_max (``resume=False``);
* ``new``: first working set max(min(2n, 1000), 500), KKT on all genes every max(40, n/10) breakpoints and at
  each grid value, strong-rule look-ahead, and the walk resumes from the last certified point (the default).

Reported per case: CPU seconds of each (best of ``--repeat``), rounds, final working set, the largest
coefficient difference between them (absolute and relative to the largest coefficient), and the worst
relative duality gap and KKT violation of the new one on all genes.  Cases: synthetic expression-like
designs (a factor model, standardized like a fold design; binary trait driven by 20 genes) at GenoTEX's
sizes, and fold designs given as ``--npz`` files with arrays ``X`` (normalized train design) and ``y``
(residualized trait), e.g. dumped from ``tuning.fold_designs`` of a problem of a preprocessed corpus
(the committed results use fold 1 of three unconditional problems of the GenoTEX-scale synth corpus, 1/32
sample, after preprocessing: genes and samples shaped by the pipeline, not i.i.d.).

    .venv/bin/python -m benchmarks.bench_lars [--sizes 138,296,415,900] [--npz a.npz ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
P_GENES = 19_736  # genes after GenoTEX's preprocessing of a GPL570 cohort


def synthetic_fold(n: int, p: int = P_GENES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An expression-like fold design: genes share 40 latent programs (correlated columns, as in real data)."""
    from genotex_dask.analysis import models

    rng = np.random.default_rng(seed + n)
    k = 40
    F = rng.standard_normal((n, k))
    load = rng.standard_normal((k, p)) * rng.gamma(0.7, 0.5, size=p)
    X = F @ load + rng.standard_normal((n, p))
    X = models.normalize(X)[0]
    planted = rng.choice(p, 20, replace=False)
    eta = X[:, planted] @ rng.normal(0, 0.6, 20)
    y = (eta + rng.logistic(size=n) > 0).astype(float)
    e, _ = models.residualize(y[:, None], None)
    return np.ascontiguousarray(X), e.ravel()


def _timed(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def run_case(name: str, X: np.ndarray, y: np.ndarray, repeat: int) -> dict:
    from genotex_dask.analysis import models, tuning

    n, p = X.shape
    t_old, old = _timed(lambda: models.lasso_grid(X, y, tuning.GRID, resume=False, init_ws=max(24 * n, 500)),
                        repeat)
    t_new, new = _timed(lambda: models.lasso_grid(X, y, tuning.GRID), repeat)
    diff = float(np.abs(new.coef - old.coef).max())
    scale = float(np.abs(old.coef).max()) or 1.0
    return {
        "case": name, "n": n, "p": p,
        "old_cpu_s": round(t_old, 4), "new_cpu_s": round(t_new, 4), "speedup": round(t_old / t_new, 1),
        "old_rounds": old.rounds, "new_rounds": new.rounds,
        "old_working_set": old.working_set, "new_working_set": new.working_set,
        "max_abs_coef_diff": diff, "max_rel_coef_diff": diff / scale,
        "support_equal": bool(np.array_equal(new.coef != 0, old.coef != 0)),
        "new_max_rel_gap": float(new.rel_gap.max()), "new_max_kkt_violation": float(new.kkt_violation.max()),
        "old_max_rel_gap": float(old.rel_gap.max()),
    }


def _markdown(rows: list[dict], load: tuple) -> str:
    head = ("| case | n x p | old CPU s | new CPU s | speedup | rounds old/new | working set old/new "
            "| max abs / rel coef diff | support equal | new max rel gap | new max KKT viol. |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['case']} | {r['n']} x {r['p']} | {r['old_cpu_s']:.3f} | {r['new_cpu_s']:.3f} | {r['speedup']}x "
        f"| {r['old_rounds']}/{r['new_rounds']} | {r['old_working_set']}/{r['new_working_set']} "
        f"| {r['max_abs_coef_diff']:.1e} / {r['max_rel_coef_diff']:.1e} | {r['support_equal']} "
        f"| {r['new_max_rel_gap']:.1e} | {r['new_max_kkt_violation']:.1e} |\n" for r in rows)
    return ("# Lasso grid per CV fold: old working-set rounds vs resumed walk\n\n"
            "`python -m benchmarks.bench_lars`; one fold's `lasso_grid` on the 7-value grid, CPU seconds "
            f"(best of the repeats), single-threaded BLAS; load average at start {load[0]:.2f}, "
            f"{os.cpu_count()} cores.\n\n" + head + body)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="138,296,415,900", help="synthetic train sizes n (comma-separated)")
    ap.add_argument("--genes", type=int, default=P_GENES)
    ap.add_argument("--npz", nargs="*", default=[], help="real fold designs (arrays X, y)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "lars"), help="writes <out>.json and <out>.md")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from genotex_dask.analysis import models, tuning

    threadpool_limits(1)
    load = os.getloadavg()
    models.lasso_grid(np.random.default_rng(0).standard_normal((40, 300)), np.arange(40.0), tuning.GRID)  # compile
    rows = []
    for path in a.npz:
        d = np.load(path, allow_pickle=False)
        rows.append(run_case(f"fold {Path(path).stem}", np.ascontiguousarray(d["X"], dtype=float),
                             np.asarray(d["y"], dtype=float).ravel(), a.repeat))
        print(json.dumps(rows[-1]), flush=True)
    for n in [int(s) for s in a.sizes.split(",") if s]:
        X, y = synthetic_fold(n, a.genes)
        rows.append(run_case(f"synthetic n={n}", X, y, a.repeat))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"load_avg": load, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(_markdown(rows, load))
    return rows


if __name__ == "__main__":
    main()
