"""Fast-mode Lasso grid per CV fold: this tree's ``lasso_grid`` against a baseline commit's, side by side.

One fold's solve in ``tuning.tune_fast`` is ``models.lasso_grid`` on n train samples x p genes over the
7-value grid (1 .. 1e-6).  The baseline is a git ref of this repository (default: the commit before the
float32-screened LARS breakpoints); its ``genotex_dask`` is extracted with ``git archive`` into a temporary
directory and both trees run the same cases in their own subprocesses, alternating, single-threaded BLAS (as
on the engine's workers), best of ``--repeat`` CPU seconds each.

Reported per case: CPU seconds of both, rounds and final working set of both, the largest coefficient
difference (absolute and relative to the largest coefficient), whether the supports are equal, and the worst
relative duality gap and KKT violation of this tree's solution on all genes.  Cases: synthetic
expression-like designs (a factor model, standardized like a fold design; binary trait driven by 20 genes)
at GenoTEX's sizes; a TCGA-like fold (n = 976 of that model, rotated by ``models.lmm_rotation`` as the
sparse-LMM cohorts are); and fold designs given as ``--npz`` files with arrays ``X`` (the design
``lasso_grid`` receives) and ``y`` (e.g. captured from ``tuning.tune_fast`` on a preprocessed corpus).

    .venv/bin/python -m benchmarks.bench_lars [--sizes 138,296,415,900] [--tcga 976] [--npz a.npz ...]
        [--baseline REF]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent
P_GENES = 19_736  # genes after GenoTEX's preprocessing of a GPL570 cohort
#: the commit before the float32-screened breakpoints (same resumed walk, float64 scan of the whole working set)
BASELINE = "a0b1e33"


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


def tcga_like_fold(n: int, p: int = P_GENES) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fold of TCGA size as the sparse-LMM cohorts hand it to the Lasso: rotated and rescaled by the
    kinship eigenvectors (the fold designs of the largest cohorts are of this kind)."""
    from genotex_dask.analysis import models

    X, y = synthetic_fold(n, p, seed=1)
    return np.ascontiguousarray(models.lmm_rotation(X, y)), y


def _pin_blas() -> None:
    import scipy.linalg  # noqa: F401  (threadpoolctl limits only the pools already loaded)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def worker(out_dir: str, cases: list[str]) -> None:
    """Subprocess side: solve each case once (after a compile warm-up) with whichever ``genotex_dask`` is first
    on sys.path; write CPU seconds, rounds and working set as JSON lines and the coefficients as .npy."""
    _pin_blas()
    from genotex_dask.analysis import models, tuning

    models.lasso_grid(np.random.default_rng(0).standard_normal((40, 300)), np.arange(40.0), tuning.GRID)
    for path in cases:
        d = np.load(path, allow_pickle=False)
        X, y = np.ascontiguousarray(d["X"], dtype=float), np.asarray(d["y"], dtype=float).ravel()
        t = time.process_time()
        sol = models.lasso_grid(X, y, tuning.GRID)
        cpu = time.process_time() - t
        stem = Path(path).stem
        np.save(Path(out_dir) / f"{stem}.coef.npy", sol.coef)
        print(json.dumps({"case": stem, "cpu_s": cpu, "rounds": sol.rounds, "working_set": sol.working_set,
                          "max_rel_gap": float(sol.rel_gap.max()),
                          "max_kkt_violation": float(sol.kkt_violation.max())}), flush=True)


def _extract(ref: str, into: Path) -> Path:
    """The ``genotex_dask`` package of ``ref`` (this repository's git history) under ``into``."""
    blob = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref, "genotex_dask"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters (the archive is this repository's own)
            tar.extractall(into)
    return into


def _run(pkg_root: Path, out_dir: Path, cases: list[Path]) -> dict[str, dict]:
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
            "from benchmarks.bench_lars import worker; worker(sys.argv[3], sys.argv[4:])")
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", code, str(pkg_root), str(REPO), str(out_dir)]
                          + [str(c) for c in cases], check=True, capture_output=True, text=True, cwd=pkg_root)
    return {r["case"]: r for r in map(json.loads, proc.stdout.splitlines())}


def _compare(name: str, n: int, p: int, old: dict, new: dict, c_old: np.ndarray, c_new: np.ndarray) -> dict:
    diff = float(np.abs(c_new - c_old).max())
    scale = float(np.abs(c_old).max()) or 1.0
    return {
        "case": name, "n": n, "p": p,
        "old_cpu_s": round(old["cpu_s"], 4), "new_cpu_s": round(new["cpu_s"], 4),
        "speedup": round(old["cpu_s"] / new["cpu_s"], 2),
        "old_rounds": old["rounds"], "new_rounds": new["rounds"],
        "old_working_set": old["working_set"], "new_working_set": new["working_set"],
        "max_abs_coef_diff": diff, "max_rel_coef_diff": diff / scale,
        "support_equal": bool(np.array_equal(c_new != 0, c_old != 0)),
        "new_max_rel_gap": new["max_rel_gap"], "new_max_kkt_violation": new["max_kkt_violation"],
    }


def _markdown(rows: list[dict], load: tuple, baseline: str) -> str:
    head = ("| case | n x p | baseline CPU s | new CPU s | speedup | rounds old/new | working set old/new "
            "| max abs / rel coef diff | support equal | new max rel gap | new max KKT viol. |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['case']} | {r['n']} x {r['p']} | {r['old_cpu_s']:.3f} | {r['new_cpu_s']:.3f} | {r['speedup']}x "
        f"| {r['old_rounds']}/{r['new_rounds']} | {r['old_working_set']}/{r['new_working_set']} "
        f"| {r['max_abs_coef_diff']:.1e} / {r['max_rel_coef_diff']:.1e} | {r['support_equal']} "
        f"| {r['new_max_rel_gap']:.1e} | {r['new_max_kkt_violation']:.1e} |\n" for r in rows)
    return ("# Lasso grid per CV fold: baseline commit vs this tree\n\n"
            f"`python -m benchmarks.bench_lars`; one fold's `lasso_grid` on the 7-value grid, baseline = commit "
            f"`{baseline}` (same resumed walk, float64 scan of the whole working set at each breakpoint), CPU "
            "seconds (best of the repeats, the two trees alternating in their own processes), single-threaded "
            f"BLAS; load average at start {load[0]:.2f}, {os.cpu_count()} cores.  Cases `fold <name>` are fold "
            "designs given with `--npz` (the committed ones: CV folds of unconditional problems of the "
            "GenoTEX-scale synth corpus, 1/4 sample, after preprocessing, captured from `tuning.tune_fast`; "
            "`lmm_f1`, `lmm_f2` = folds 1 and 2, sparse-LMM rotated, of a TCGA-size cohort of 1,220 samples; "
            "the others fold 1).\n\n" + head + body)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="138,296,415,900", help="synthetic train sizes n (comma-separated)")
    ap.add_argument("--tcga", default="976", help="TCGA-like (LMM-rotated) train sizes n (comma-separated)")
    ap.add_argument("--genes", type=int, default=P_GENES)
    ap.add_argument("--npz", nargs="*", default=[], help="real fold designs (arrays X, y)")
    ap.add_argument("--baseline", default=BASELINE, help="git ref of the code to compare against")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "lars"), help="writes <out>.json and <out>.md")
    a = ap.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_lars_") as tmp:
        tmp = Path(tmp)
        cases: list[tuple[str, Path]] = []
        for path in a.npz:
            cases.append((f"fold {Path(path).stem}", Path(path)))
        made = [(f"synthetic n={n}", synthetic_fold, n) for n in [int(s) for s in a.sizes.split(",") if s]]
        made += [(f"TCGA-like LMM-rotated n={n}", tcga_like_fold, n) for n in [int(s) for s in a.tcga.split(",") if s]]
        for i, (name, make, n) in enumerate(made):
            X, y = make(n, a.genes)
            path = tmp / f"case{i}.npz"
            np.savez(path, X=X, y=y)
            cases.append((name, path))
        trees = {"old": _extract(a.baseline, tmp / "baseline"), "new": REPO}
        best: dict[str, dict[str, dict]] = {"old": {}, "new": {}}
        for rep in range(a.repeat):
            for tag, root in trees.items():
                for stem, r in _run(root, tmp / f"out_{tag}", [c for _, c in cases]).items():
                    if stem not in best[tag] or r["cpu_s"] < best[tag][stem]["cpu_s"]:
                        best[tag][stem] = r
            print(f"repeat {rep + 1}/{a.repeat} done", flush=True)
        rows = []
        for name, path in cases:
            d = np.load(path)
            n, p = d["X"].shape
            stem = path.stem
            rows.append(_compare(name, n, p, best["old"][stem], best["new"][stem],
                                 np.load(tmp / "out_old" / f"{stem}.coef.npy"),
                                 np.load(tmp / "out_new" / f"{stem}.coef.npy")))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"load_avg": load, "baseline": a.baseline, "rows": rows},
                                                   indent=1))
    out.with_suffix(".md").write_text(_markdown(rows, load, a.baseline))
    return rows


if __name__ == "__main__":
    main()
