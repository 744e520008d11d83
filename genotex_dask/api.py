"""The public Python API; the CLI is a thin layer over these functions.

Each stage takes fsspec URLs and an optional ``distributed.Client``.  Without a client, a LocalCluster
is started for the call (see :mod:`genotex_dask.cluster`) and closed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client

from genotex_dask import cluster, layout
from genotex_dask.io import fs


@contextmanager
def _client(client: Client | None, **cluster_kw: Any) -> Iterator[Client]:
    if client is not None:
        yield client
        return
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
           float64: bool = False, **cluster_kw: Any) -> dict:
    """Ingest every cohort under ``root``/input into the Zarr cohort store ``store``."""
    from genotex_dask.pipelines.ingest import run_ingest

    fs.sweep_temporaries(store)
    with _client(client, **cluster_kw) as c:
        return run_ingest(root, store, client=c, progress=progress, float64=float64)


def suggest_specs(root: str, out_specs: str, store: str | None = None) -> dict:
    """Propose a cohort spec file per trait from the cohorts' characteristics, titles and source names."""
    from genotex_dask.pipelines.preprocess import run_suggest_specs

    return run_suggest_specs(root, out_specs, store=store)


def preprocess(root: str, specs: str, out: str, compat: str | None = None, store: str | None = None,
               client: Client | None = None, progress: bool = True, **cluster_kw: Any) -> dict:
    """Preprocess every cohort named in ``specs`` into OUT/preprocess (GenoTEX layout) and the Zarr store."""
    from genotex_dask.pipelines.preprocess import run_preprocess

    for sub in ("preprocess", "preprocess_meta", "preprocess_store"):
        fs.sweep_temporaries(layout.join(out, sub))
    with _client(client, **cluster_kw) as c:
        return run_preprocess(root, specs, out, client=c, compat=compat, store=store, progress=progress)


def analyze(root: str, out: str, mode: str = "fast", client: Client | None = None, progress: bool = True,
            **cluster_kw: Any) -> dict:
    """Solve every trait/condition problem of ROOT/metadata/task_info.json into OUT/regress."""
    from genotex_dask.pipelines.analyze import run_analyze

    fs.sweep_temporaries(layout.regress_dir(out))
    with _client(client, **cluster_kw) as c:
        return run_analyze(root, out, client=c, mode=mode, progress=progress)


def evaluate(pred: str, ref: str | None = None, report: str | None = None, truth: str | None = None,
             client: Client | None = None) -> dict:
    """Score a run in GenoTEX's output layout against a reference run and/or a planted truth."""
    from genotex_dask.evaluation.evaluate import run_evaluate

    return run_evaluate(pred, ref=ref, report=report, truth=truth, client=client)


def run(root: str, out: str, specs: str | None = None, mode: str = "fast", compat: str | None = None,
        ref: str | None = None, report: str | None = None, client: Client | None = None,
        progress: bool = True, **cluster_kw: Any) -> dict:
    """Every stage in order, resumable: ingest → specs → preprocess → analyze → evaluate.

    ``specs`` defaults to suggested specs written to OUT/specs (reviewed specs shipped with the package
    take precedence for the cohorts they cover).  Evaluation scores against ``ref`` (another run) and/or
    ROOT/truth.json when the corpus is synthetic; the HTML report goes to ``report`` (default OUT/report).
    """
    store = layout.join(out, "store")
    summary: dict[str, Any] = {}
    with _client(client, **cluster_kw) as c:
        summary["ingest"] = ingest(root, store, client=c, progress=progress)
        if specs is None:
            specs = layout.join(out, "specs")
            summary["specs"] = suggest_specs(root, specs, store=store)
            from genotex_dask.pipelines.preprocess import apply_reviewed_specs

            summary["specs"]["reviewed"] = apply_reviewed_specs(specs)
        summary["preprocess"] = preprocess(root, specs, out, compat=compat, store=store, client=c,
                                           progress=progress)
        summary["analyze"] = analyze(root, out, mode=mode, client=c, progress=progress)
        truth = layout.join(root, "truth.json")
        report = report or layout.join(out, "report")
        summary["evaluate"] = evaluate(out, ref=ref, report=report,
                                       truth=truth if fs.exists(truth) else None, client=c)
    fs.write_json_atomic(layout.join(out, "run_summary.json"), fs.json_safe(summary))
    return summary
