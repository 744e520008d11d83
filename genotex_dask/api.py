"""The public Python API; the CLI is a thin layer over these functions.

Each stage takes fsspec URLs and an optional ``distributed.Client``.  Without one, a running default client
(``distributed.default_client()``, e.g. one made by ``with connect() as client:`` or ``Client(...)``) is reused;
only when there is none is a LocalCluster started for the call (see :mod:`genotex_dask.cluster`) and closed
afterwards.  What a stage is given is checked before any cluster starts (:mod:`genotex_dask.preflight`): a bad
path or spec raises :class:`genotex_dask.errors.UserError` (or ``SpecError``) with one line naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client

from genotex_dask import cluster, layout, metadata, preflight
from genotex_dask.io import fs

log = logging.getLogger("genotex_dask")


def _running_default_client() -> Client | None:
    """The process's default client when one is running (``distributed.default_client``), else None."""
    from distributed import default_client

    try:
        c = default_client()
    except ValueError:
        return None
    return c if c.status == "running" else None


@contextmanager
def _client(client: Client | None, **cluster_kw: Any) -> Iterator[Client]:
    if client is not None:
        yield client
        return
    if not preflight.scheduler_address(cluster_kw.get("scheduler")):
        running = _running_default_client()
        if running is not None:
            log.info("reusing the running default client (%s)", running.scheduler.address)
            yield running
            return
    preflight.require_scheduler(cluster_kw.get("scheduler"))
    with cluster.connect(**cluster_kw) as c:
        yield c


def synth(out: str, traits: int = 4, cohorts_per_trait: int = 3, samples: int = 40, probes: int = 2000,
          platforms: int = 2, seed: int = 0, scale: str | None = None, fraction: float = 1.0,
          progress: bool = False) -> dict:
    """Write a synthetic GenoTEX corpus (input/, metadata/, truth.json) to ``out`` (``scale="genotex"``: the
    benchmark's full shape, ``fraction`` 1/k a stratified sample of it)."""
    from genotex_dask.synth.corpus import write_corpus

    return write_corpus(out, traits=traits, cohorts_per_trait=cohorts_per_trait, samples=samples,
                        probes=probes, platforms=platforms, seed=seed, scale=scale, fraction=fraction,
                        progress=progress)


def ingest(root: str, store: str, client: Client | None = None, progress: bool = True,
           float64: bool = False, platforms: str | list[str] | None = None, **cluster_kw: Any) -> dict:
    """Ingest every cohort under ``root``/input into the Zarr cohort store ``store``.

    ``platforms``: directories (fsspec URLs) of GEO platform files (``GPL570.annot.gz``, ``GPL96.txt.gz``, ...)
    shared by all cohorts; files beside a cohort are always looked at."""
    from genotex_dask.pipelines.ingest import run_ingest

    preflight.require_input_tree(root)
    for d in [platforms] if isinstance(platforms, str) else (platforms or []):
        preflight.require_path(d, "platform directory (--platforms)")
    fs.sweep_temporaries(store)
    with _client(client, **cluster_kw) as c:
        return run_ingest(root, store, client=c, progress=progress, float64=float64, platforms=platforms)


def suggest_specs(root: str, out_specs: str, store: str | None = None, client: Client | None = None) -> dict:
    """Propose a cohort spec file per trait from the cohorts' characteristics, titles and source names.

    With ``store`` and ``client``, the stored cohorts are read on that cluster (one task each); otherwise in
    this process (no cluster is started for it)."""
    from genotex_dask.pipelines.specs import run_suggest_specs

    preflight.require_input_tree(root)
    return run_suggest_specs(root, out_specs, store=store, client=client)


def preprocess(root: str, specs: str, out: str, compat: str | None = None, store: str | None = None,
               client: Client | None = None, progress: bool = True, platforms: str | list[str] | None = None,
               **cluster_kw: Any) -> dict:
    """Preprocess every cohort named in ``specs`` into OUT/preprocess (GenoTEX layout) and the Zarr store."""
    from genotex_dask.pipelines.preprocess import run_preprocess

    specs = shipped_specs(specs)
    preflight.require_path(root, "ROOT")
    metadata.check_metadata(root, task_info=False)  # the synonym table, by name, before any work
    preflight.require_specs(specs)
    for sub in ("preprocess", "preprocess_meta", "preprocess_store"):
        fs.sweep_temporaries(layout.join(out, sub))
    with _client(client, **cluster_kw) as c:
        return run_preprocess(root, specs, out, client=c, compat=compat, store=store, progress=progress,
                              platforms=platforms)


def shipped_specs(specs: Any) -> Any:
    """``"genotex"`` names the spec set imported from GenoTEX's notebooks and shipped with the package."""
    if specs == "genotex":
        from genotex_dask.specs_import import SHIPPED

        return SHIPPED
    return specs


def import_specs(genotex_dir: str, out: str, root: str | None = None) -> dict:
    """Import GenoTEX's notebook decisions (``GENOTEX_DIR/code/<Trait>/<cohort>.ipynb``) as one spec file per
    trait in ``out``; ``root`` (a GenoTEX input tree) completes capped printed values from the series matrices."""
    from genotex_dask.specs_import.write import import_tree

    return import_tree(genotex_dir, out, root=root)


def analyze(root: str, out: str, mode: str = "fast", client: Client | None = None, progress: bool = True,
            estimator: Any = None, param_grid: dict | None = None, method: str | None = None,
            scoring: Any = None, **cluster_kw: Any) -> dict:
    """Solve every trait/condition problem of ROOT/metadata/task_info.json into OUT/regress.

    With ``estimator`` (any scikit-learn-compatible estimator exposing ``coef_``) and ``param_grid``, the
    problems are solved by that method instead, tuned with dask-ml's GridSearchCV on the cluster, into
    OUT/methods/<method>/ (default method name: the class name in lower case); ``mode`` is then unused.
    """
    from genotex_dask.pipelines.analyze import run_analyze, run_estimator

    metadata.check_metadata(root, synonyms=False)  # task_info.json, by name, before any work
    preflight.require_path(layout.preprocess_dir(out), "preprocessed cohorts (run preprocess first)")
    if estimator is not None:
        fs.sweep_temporaries(layout.join(out, "methods"))
        with _client(client, **cluster_kw) as c:
            return run_estimator(root, out, c, estimator, param_grid or {}, method=method, scoring=scoring,
                                 progress=progress)
    fs.sweep_temporaries(layout.regress_dir(out))
    with _client(client, **cluster_kw) as c:
        return run_analyze(root, out, client=c, mode=mode, progress=progress)


def evaluate(pred: str, ref: str | None = None, report: str | None = None, truth: str | None = None,
             client: Client | None = None) -> dict:
    """Score a run in GenoTEX's output layout against a reference run and/or a planted truth."""
    from genotex_dask.evaluation.evaluate import run_evaluate

    preflight.require_path(pred, "predicted run (--pred)")
    if ref:
        preflight.require_path(ref, "reference run (--ref)")
    if truth:
        preflight.require_path(truth, "planted truth (--truth)")
    return run_evaluate(pred, ref=ref, report=report, truth=truth, client=client)


def run(root: str, out: str, specs: str | None = None, mode: str = "fast", compat: str | None = None,
        ref: str | None = None, report: str | None = None, client: Client | None = None,
        progress: bool = True, platforms: str | list[str] | None = None, **cluster_kw: Any) -> dict:
    """Every stage in order, resumable: ingest → specs → preprocess → analyze → evaluate (with ``specs`` given:
    preprocess, each spec cohort ingested in its own task, then ingest of the rest → analyze → evaluate).

    ``specs`` defaults to suggested specs written to OUT/specs (reviewed specs shipped with the package
    take precedence for the cohorts they cover).  Evaluation scores against ``ref`` (another run) and/or
    ROOT/truth.json when the corpus is synthetic; the HTML report goes to ``report`` (default OUT/report).
    """
    specs = shipped_specs(specs)
    preflight.require_input_tree(root)
    metadata.check_metadata(root)  # both metadata files, by name, before any stage starts
    if specs is not None:
        preflight.require_specs(specs)
    if ref:
        preflight.require_path(ref, "reference run (--ref)")
    store = layout.join(out, "store")
    summary: dict[str, Any] = {}
    # Given specs, each spec cohort is ingested inside its own preprocess task (no stage barrier, the parsed matrix
    # mapped without decoding the store); the ingest stage then brings the cohorts no spec names into the store
    # and finds the others unchanged.  Suggested specs need the whole store first.
    pipelined = specs is not None
    with _client(client, **cluster_kw) as c:
        if not pipelined:
            log.info("run: ingest %s -> %s", root, store)
            summary["ingest"] = ingest(root, store, client=c, progress=progress, platforms=platforms)
        if specs is None:
            specs = layout.join(out, "specs")
            log.info("run: suggesting specs into %s", specs)
            summary["specs"] = suggest_specs(root, specs, store=store, client=c)
            from genotex_dask.pipelines.specs import apply_reviewed_specs, specs_needing_review

            summary["specs"]["reviewed"] = apply_reviewed_specs(specs)
            summary["specs"]["needs_review"] = specs_needing_review(specs)  # as the files now read
        elif isinstance(specs, str) and fs.isdir(specs):
            from genotex_dask.pipelines.specs import specs_needing_review

            summary["specs"] = {"out": specs, "needs_review": specs_needing_review(specs)}
        log.info("run: preprocess with specs %s", specs)
        summary["preprocess"] = preprocess(root, specs, out, compat=compat, store=store, client=c,
                                           progress=progress, platforms=platforms)
        if pipelined:
            log.info("run: ingest the cohorts no spec names, %s -> %s", root, store)
            summary["ingest"] = ingest(root, store, client=c, progress=progress, platforms=platforms)
        log.info("run: analyze (%s mode)", mode)
        summary["analyze"] = analyze(root, out, mode=mode, client=c, progress=progress)
        truth = layout.join(root, "truth.json")
        report = report or layout.join(out, "report")
        log.info("run: evaluate into %s", report)
        summary["evaluate"] = evaluate(out, ref=ref, report=report,
                                       truth=truth if fs.exists(truth) else None, client=c)
    from genotex_dask.pipelines.overview import run_overview

    summary["overview"] = run_overview(out, summary, report)
    fs.write_json_atomic(layout.join(out, "run_summary.json"), fs.json_safe(summary))
    return summary


# ---- loaders: results as AnnData, pandas and Dask DataFrames (genotex_dask.results) ----------------------
from genotex_dask.results import (  # noqa: E402, F401 - re-exported as part of the public API
    load_cohort,
    preprocessed_cohort,
    read_results,
    recurrent_genes,
    results_dataset,
    significant_genes,
)
