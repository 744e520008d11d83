"""`genotex-dask` command line: parses arguments, calls genotex_dask.api, prints where results went."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from genotex_dask import api


def _cluster_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (default: an embedded LocalCluster)")
    g.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                                       "(or set DASK_SCHEDULER_ADDRESS)")
    g.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    g.add_argument("--threads", type=int, default=1, help="threads per LocalCluster worker (default 1)")
    g.add_argument("--memory-limit", default="auto", help="memory limit per LocalCluster worker, e.g. 4GB")
    g.add_argument("--no-progress", action="store_true", help="do not draw progress bars")


def _cluster_kw(a: argparse.Namespace) -> dict[str, Any]:
    return {"scheduler": a.scheduler, "workers": a.workers, "threads": a.threads,
            "memory_limit": a.memory_limit}


def _cmd_synth(a: argparse.Namespace) -> dict:
    return api.synth(a.out, traits=a.traits, cohorts_per_trait=a.cohorts_per_trait, samples=a.samples,
                     probes=a.probes, platforms=a.platforms, seed=a.seed, scale=a.scale,
                     fraction=_fraction(a.fraction))


def _fraction(text: str) -> float:
    """``1/8`` or ``0.125``."""
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"--fraction: not a fraction: {text!r}") from None


def _cmd_ingest(a: argparse.Namespace) -> dict:
    return api.ingest(a.root, a.store, progress=not a.no_progress, float64=a.float64, **_cluster_kw(a))


def _cmd_specs_suggest(a: argparse.Namespace) -> dict:
    return api.suggest_specs(a.root, a.out, store=a.store)


def _cmd_preprocess(a: argparse.Namespace) -> dict:
    return api.preprocess(a.root, a.specs, a.out, compat=a.compat, store=a.store,
                          progress=not a.no_progress, **_cluster_kw(a))


def _cmd_analyze(a: argparse.Namespace) -> dict:
    return api.analyze(a.root, a.out, mode=a.mode, progress=not a.no_progress, **_cluster_kw(a))


def _cmd_evaluate(a: argparse.Namespace) -> dict:
    return api.evaluate(a.pred, ref=a.ref, report=a.report, truth=a.truth)


def _cmd_run(a: argparse.Namespace) -> dict:
    return api.run(a.root, a.out, specs=a.specs, mode=a.mode, compat=a.compat, ref=a.ref, report=a.report,
                   progress=not a.no_progress, **_cluster_kw(a))


def _cmd_demo(a: argparse.Namespace) -> dict:
    from genotex_dask.demo import run_demo

    return run_demo(a.out, traits=a.traits, cohorts_per_trait=a.cohorts_per_trait, samples=a.samples,
                    probes=a.probes, seed=a.seed, real_root=a.real, mode=a.mode, **_cluster_kw(a))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genotex-dask", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the whole run summary as JSON")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], dict], help: str, cluster: bool = True,
            parent: Any = sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(func=fn)
        if cluster:
            _cluster_options(sp)
        return sp

    def corpus_knobs(sp: argparse.ArgumentParser, traits: int, cohorts: int, samples: int, probes: int) -> None:
        sp.add_argument("--traits", type=int, default=traits)
        sp.add_argument("--cohorts-per-trait", type=int, default=cohorts)
        sp.add_argument("--samples", type=int, default=samples, help="mean samples per cohort")
        sp.add_argument("--probes", type=int, default=probes, help="probes per platform")
        sp.add_argument("--seed", type=int, default=0)

    sp = add("synth", _cmd_synth, "write a synthetic GenoTEX corpus (input/, metadata/, truth.json)", False)
    sp.add_argument("out")
    corpus_knobs(sp, 4, 3, 40, 2000)
    sp.add_argument("--platforms", type=int, default=2)
    sp.add_argument("--scale", choices=["genotex"], help="GenoTEX's shape: 132 traits, 911 cohorts, 1,384 problems "
                    "(the shape options are ignored)")
    sp.add_argument("--fraction", default="1", help="with --scale: a stratified 1/k sample (e.g. 1/8) of that corpus")

    sp = add("ingest", _cmd_ingest, "ingest ROOT/input into a Zarr cohort store")
    sp.add_argument("root")
    sp.add_argument("--store", required=True)
    sp.add_argument("--float64", action="store_true", help="store X as float64 (exact values)")

    specs = sub.add_parser("specs", help="cohort specs").add_subparsers(dest="specs_command", required=True)
    sp = add("suggest", _cmd_specs_suggest, "propose cohort specs, one file per trait", False, specs)
    sp.add_argument("root")
    sp.add_argument("--out", required=True)
    sp.add_argument("--store")

    sp = add("preprocess", _cmd_preprocess, "preprocess cohorts into OUT/preprocess (GenoTEX layout)")
    sp.add_argument("root")
    sp.add_argument("--specs", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--store", help="cohort store (default OUT/store)")
    sp.add_argument("--compat", choices=["genotex"], help="reproduce the reference's behaviour exactly")

    sp = add("analyze", _cmd_analyze, "solve every trait/condition problem into OUT/regress")
    sp.add_argument("root")
    sp.add_argument("--out", required=True)
    sp.add_argument("--mode", choices=["exact", "fast"], default="fast")

    sp = add("evaluate", _cmd_evaluate, "score a run against a reference run and/or a planted truth", False)
    sp.add_argument("--pred", required=True)
    sp.add_argument("--ref")
    sp.add_argument("--truth", help="truth.json of a synthetic corpus")
    sp.add_argument("--report", help="directory for the HTML report")

    sp = add("run", _cmd_run, "every stage, resumable")
    sp.add_argument("root")
    sp.add_argument("--out", required=True)
    sp.add_argument("--specs", help="cohort specs (default: suggested into OUT/specs)")
    sp.add_argument("--mode", choices=["exact", "fast"], default="fast")
    sp.add_argument("--compat", choices=["genotex"])
    sp.add_argument("--ref", help="a reference run to evaluate against")
    sp.add_argument("--report", help="directory for the HTML report (default OUT/report)")

    sp = add("demo", _cmd_demo, "the demo: synthetic corpus + real GSE781, every stage, on a LocalCluster")
    sp.add_argument("--out", default="demo_out")
    corpus_knobs(sp, 3, 3, 40, 1500)
    sp.add_argument("--real", help="GenoTEX-layout tree of a real cohort (default: tests/data/genotex_gse781)")
    sp.add_argument("--mode", choices=["exact", "fast"], default="fast")
    return p


def _headline(summary: dict) -> str:
    """One line of a stage summary: its scalar fields (counts, seconds, paths), nested detail left out."""
    parts = [f"{k}={v}" for k, v in summary.items()
             if not isinstance(v, (dict, list)) and k not in ("stage", "version")]
    for k in ("failed", "errors"):
        v = summary.get(k)
        if isinstance(v, (dict, list)) and v:
            parts.append(f"{k}={len(v)}")
    return ", ".join(parts)


STAGES = ("ingest", "specs", "preprocess", "analyze", "evaluate")


def _print_result(result: dict, full: bool) -> None:
    """A short account per stage (or the whole JSON with --json); failures go to stderr with their cause."""
    if full:
        print(json.dumps(result, indent=2, default=str))
        return
    stages = result.get("summary", result)
    per_stage = {k: stages[k] for k in STAGES if isinstance(stages.get(k), dict)} or {"result": stages}
    for name, summary in per_stage.items():
        print(f"{name:>10}: {_headline(summary)}")
        failed = summary.get("failed")
        if isinstance(failed, dict):
            for item, why in failed.items():
                print(f"{name:>10}: failed {item}: {why}", file=sys.stderr)
    for k in ("corpus", "output", "report"):
        if k in result:
            print(f"{k:>10}: {result[k]}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
    _print_result(result, full=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
