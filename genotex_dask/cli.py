"""`genotex-dask` command line: parses arguments, calls genotex_dask.api, prints where results went."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

from genotex_dask import api
from genotex_dask.errors import (
    EXIT_CLUSTER,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    UserError,
    exit_code_table,
)

log = logging.getLogger("genotex_dask")

EXAMPLES = {
    "synth": ["genotex-dask synth corpus --traits 3 --cohorts-per-trait 3 --samples 40 --seed 0"],
    "ingest": ["genotex-dask ingest corpus --store out/store",
               "genotex-dask ingest s3://bucket/genotex --store s3://bucket/store --scheduler tcp://host:8786"],
    "suggest": ["genotex-dask specs suggest corpus --out out/specs --store out/store"],
    "preprocess": ["genotex-dask preprocess corpus --specs out/specs --out out",
                   "genotex-dask preprocess tests/data/genotex_gse781 --specs genotex_dask/specs --out gse781_out "
                   "--compat genotex"],
    "analyze": ["genotex-dask analyze corpus --out out --mode fast --nworkers 2"],
    "evaluate": ["genotex-dask evaluate --pred out --truth corpus/truth.json --report out/report",
                 "genotex-dask evaluate --pred out --ref genotex_run --report out/report"],
    "run": ["genotex-dask run corpus --out out",
            "genotex-dask run my_geo_tree --out out --platforms s3://bucket/platforms -v"],
    "demo": ["genotex-dask demo --out demo_out"],
}


def _epilog(name: str) -> str:
    lines = ["examples:"] + [f"  {e}" for e in EXAMPLES.get(name, [])]
    return "\n".join(lines) + "\n\nexit codes:\n" + exit_code_table()


def _cluster_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (default: an embedded LocalCluster)")
    g.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                                       "(or set DASK_SCHEDULER_ADDRESS)")
    g.add_argument("--workers", "--nworkers", dest="workers", type=int,
                   help="LocalCluster worker processes (default: one per core)")
    g.add_argument("--threads", "--nthreads", dest="threads", type=int, default=1,
                   help="threads per LocalCluster worker (default 1)")
    g.add_argument("--memory-limit", default="auto", help="memory limit per LocalCluster worker, e.g. 4GB")
    g.add_argument("--no-progress", action="store_true", help="do not draw progress bars")


def _output_options(p: argparse.ArgumentParser, top: bool) -> None:
    """--json, --debug, -q, -v: accepted before or after the subcommand (sub-level ones only override if given)."""
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", default=d(False), help="print the whole run summary as JSON")
    p.add_argument("--debug", action="store_true", default=d(False),
                   help="show the traceback of an error (default: one line)")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="only errors and the final summary (no progress bars, no cluster banner)")
    p.add_argument("-v", "--verbose", action="count", default=d(0), help="more log output (-vv: debug)")


def _cluster_kw(a: argparse.Namespace) -> dict[str, Any]:
    return {"scheduler": a.scheduler, "workers": a.workers, "threads": a.threads,
            "memory_limit": a.memory_limit, "quiet": a.quiet}


def _progress(a: argparse.Namespace) -> bool:
    return not (a.no_progress or a.quiet)


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
    return api.ingest(a.root, a.store, progress=_progress(a), float64=a.float64, platforms=a.platforms,
                      **_cluster_kw(a))


def _cmd_specs_suggest(a: argparse.Namespace) -> dict:
    return api.suggest_specs(a.root, a.out, store=a.store)


def _cmd_specs_import(a: argparse.Namespace) -> dict:
    return api.import_specs(a.genotex_dir, a.out, root=a.root)


def _cmd_preprocess(a: argparse.Namespace) -> dict:
    return api.preprocess(a.root, a.specs, a.out, compat=a.compat, store=a.store,
                          progress=_progress(a), platforms=a.platforms, **_cluster_kw(a))


def _cmd_analyze(a: argparse.Namespace) -> dict:
    return api.analyze(a.root, a.out, mode=a.mode, progress=_progress(a), **_cluster_kw(a))


def _cmd_evaluate(a: argparse.Namespace) -> dict:
    return api.evaluate(a.pred, ref=a.ref, report=a.report, truth=a.truth)


def _cmd_run(a: argparse.Namespace) -> dict:
    return api.run(a.root, a.out, specs=a.specs, mode=a.mode, compat=a.compat, ref=a.ref, report=a.report,
                   progress=_progress(a), platforms=a.platforms, **_cluster_kw(a))


def _cmd_demo(a: argparse.Namespace) -> dict:
    from genotex_dask.demo import run_demo

    return run_demo(a.out, traits=a.traits, cohorts_per_trait=a.cohorts_per_trait, samples=a.samples,
                    probes=a.probes, seed=a.seed, real_root=a.real, mode=a.mode, **_cluster_kw(a))


def build_parser() -> argparse.ArgumentParser:
    from genotex_dask import __version__

    p = argparse.ArgumentParser(prog="genotex-dask", description=__doc__, epilog="exit codes:\n" + exit_code_table(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"genotex-dask {__version__}")
    _output_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], dict], help: str, cluster: bool = True,
            parent: Any = sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help, epilog=_epilog(name),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=fn)
        _output_options(sp, top=False)
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
    sp.add_argument("--platforms", help="directory (any fsspec URL) of GEO platform files shared by all cohorts: "
                                        "GPL96.txt.gz, GPL570.annot.gz, GPL6244_family.soft.gz, GPL96-tbl-1.txt")

    specs = sub.add_parser("specs", help="cohort specs").add_subparsers(dest="specs_command", required=True)
    sp = add("suggest", _cmd_specs_suggest, "propose cohort specs, one file per trait", False, specs)
    sp.add_argument("root")
    sp.add_argument("--out", required=True)
    sp.add_argument("--store")
    sp = add("import", _cmd_specs_import, "import GenoTEX's notebook decisions as specs, one file per trait",
             False, specs)
    sp.add_argument("genotex_dir", help="a GenoTEX checkout (any fsspec URL) holding code/<Trait>/<cohort>.ipynb")
    sp.add_argument("--out", required=True)
    sp.add_argument("--root", help="GenoTEX input tree: series matrices complete values capped in the notebooks")

    sp = add("preprocess", _cmd_preprocess, "preprocess cohorts into OUT/preprocess (GenoTEX layout)")
    sp.add_argument("root")
    sp.add_argument("--specs", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--store", help="cohort store (default OUT/store)")
    sp.add_argument("--compat", choices=["genotex"], help="reproduce the reference's behaviour exactly")
    sp.add_argument("--platforms", help="directory (any fsspec URL) of GEO platform files (default: the one ingest used): "
                                        "GPL96.txt.gz, GPL570.annot.gz, GPL6244_family.soft.gz, GPL96-tbl-1.txt")

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
    sp.add_argument("--platforms", help="directory (any fsspec URL) of GEO platform files shared by all cohorts: "
                                        "GPL96.txt.gz, GPL570.annot.gz, GPL6244_family.soft.gz, GPL96-tbl-1.txt")

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
        for k, what in (("skipped", "skipped"), ("kept_edited", "kept as edited"), ("needs_review", "needs review")):
            items = summary.get(k)
            if items and name in ("specs", "result") and "overview" not in result \
                    and "overview" not in (result.get("summary") or {}):
                shown = list(items.items()) if isinstance(items, dict) else [(i, "") for i in items]
                for item, why in shown[:20]:
                    print(f"{name:>10}: {what}: {item}" + (f" ({why})" if why else ""))
                if len(shown) > 20:
                    print(f"{name:>10}: {what}: ... {len(shown) - 20} more (see {summary.get('out')})")
    for k in ("corpus", "output", "report"):
        if k in result:
            print(f"{k:>10}: {result[k]}")
    ov = result.get("overview") or (result.get("summary") or {}).get("overview")
    if isinstance(ov, dict):
        for line in overview_lines(ov):
            print(line)


SCORE_KEYS = ("f1", "composite_similarity_correlation")


def _scores(d: Any, path: str = "") -> list[str]:
    """``path.metric=value`` for the headline metrics people compare first."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            p = f"{path}.{k}" if path else str(k)
            if k in SCORE_KEYS and isinstance(v, (int, float)):
                out.append(f"{p}={v:.1f}" if isinstance(v, float) else f"{p}={v}")
            elif isinstance(v, dict):
                out += _scores(v, p)
    return out


def overview_lines(ov: dict) -> list[str]:
    """The end-of-run account: cohorts, problems, scores, specs to review, where the report is."""
    c, p = ov.get("cohorts") or {}, ov.get("problems") or {}
    reasons = ", ".join(f"{n} {r}" for r, n in list((c.get("reasons") or {}).items())[:4])
    lines = [f"{'cohorts':>10}: {c.get('usable', 0)} usable, {c.get('unusable', 0)} unusable"
             + (f" ({reasons})" if reasons else ""),
             f"{'problems':>10}: {p.get('solved', 0)} solved, {p.get('failed', 0)} failed, "
             f"{p.get('no_usable_cohort', 0)} without a usable cohort"]
    scores = _scores(ov.get("scores") or {})
    if scores:
        lines.append(f"{'scores':>10}: " + ", ".join(scores[:6]) + (" ..." if len(scores) > 6 else ""))
    review = ov.get("specs_needing_review") or []
    if review:
        shown = ", ".join(review[:8]) + (f" and {len(review) - 8} more" if len(review) > 8 else "")
        lines.append(f"{'review':>10}: {len(review)} cohort spec(s) need review in {ov.get('specs')}: {shown}")
    kept = ov.get("specs_kept_as_edited") or []
    if kept:
        lines.append(f"{'specs':>10}: kept as you edited them: {', '.join(kept)}")
    if ov.get("report"):
        lines.append(f"{'report':>10}: {ov['report']}")
    return lines


def _setup_logging(a: argparse.Namespace) -> None:
    """Python logging on stderr: WARNING by default, INFO with -v, DEBUG with -vv, ERROR only with -q."""
    level = logging.ERROR if a.quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(a.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    # distributed's own client-side chatter only when asked for
    logging.getLogger("distributed").setLevel(level if a.verbose >= 2 else max(level, logging.ERROR))


def failures(result: dict) -> list[str]:
    """Every cohort/problem that failed in any stage of a result, as ``stage: item: cause`` lines."""
    stages = result.get("summary", result)
    per_stage = {k: stages[k] for k in STAGES if isinstance(stages.get(k), dict)} or {"": stages}
    out = []
    for name, s in per_stage.items():
        pre = f"{name}: " if name else ""
        failed = s.get("failed")
        if isinstance(failed, dict):
            out += [f"{pre}{k}: {v}" for k, v in failed.items()]
        errors = s.get("errors")
        if isinstance(errors, dict):
            out += [f"{pre}{k}: {v}" for k, v in errors.items()]
        elif isinstance(errors, list) and name != "evaluate":
            out += [f"{pre}{e.get('problem', '?')}: {e.get('error', '')}" for e in errors if isinstance(e, dict)]
    return out


def exit_code(result: dict) -> int:
    """0 when nothing failed, 1 when some cohort or problem failed (the run itself finished)."""
    return EXIT_PARTIAL if failures(result) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = _user_error_code(exc)
        if code is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"genotex-dask: error: {exc}", file=sys.stderr)
        return code
    _print_result(result, full=args.json)
    return exit_code(result)


def _user_error_code(exc: BaseException) -> int | None:
    """The exit code of an error the user can fix (one line, no traceback), None for a bug."""
    from genotex_dask.cluster import ClusterPausedError, MemoryLimitError
    from genotex_dask.io.errors import InputFormatError
    from genotex_dask.layout import UnsafePathError
    from genotex_dask.metadata import MetadataError
    from genotex_dask.preprocess.specs import SpecError
    from genotex_dask.safe_regex import RegexError
    from genotex_dask.specs_import.notebooks import NotebookError

    if isinstance(exc, UserError):
        return exc.exit_code
    if isinstance(exc, ClusterPausedError):
        return EXIT_CLUSTER
    if isinstance(exc, (SpecError, InputFormatError, FileNotFoundError, MetadataError, UnsafePathError,
                        RegexError, MemoryLimitError, NotebookError)):
        return EXIT_USAGE
    return None


if __name__ == "__main__":
    sys.exit(main())
