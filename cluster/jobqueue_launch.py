"""Run the genotex_dask pipeline on SLURM (or PBS) workers started by dask-jobqueue.

Run this on a login node (or inside a small batch job) with ``cluster/jobqueue.yaml`` in
``~/.config/dask/`` or ``DASK_CONFIG`` pointing at this directory::

    python cluster/jobqueue_launch.py s3://bucket/genotex s3://bucket/genotex-out --jobs 32
    python cluster/jobqueue_launch.py /scratch/genotex /scratch/genotex-out --system pbs --jobs 16

The scheduler runs in this process; every job is one single-threaded worker. ``adapt`` lets the
queue grow and shrink the pool between the I/O-bound ingest and the CPU-bound analysis.
"""

from __future__ import annotations

import argparse


def make_cluster(system: str, **overrides):
    """A dask-jobqueue cluster (no job submitted yet) configured by the ``jobqueue.<system>`` section."""
    import dask_jobqueue

    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[system]
    return cls(**overrides)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="GenoTEX root (input/, metadata/): a path or s3://, gs:// URL")
    ap.add_argument("out", help="output root in GenoTEX's output/ layout")
    ap.add_argument("--store", help="Zarr cohort store (default: OUT/store)")
    ap.add_argument("--specs", help="cohort specs (default: suggested into OUT/specs)")
    ap.add_argument("--system", choices=["slurm", "pbs"], default="slurm")
    ap.add_argument("--jobs", type=int, default=8, help="maximum number of worker jobs")
    ap.add_argument("--queue", help="partition/queue (overrides jobqueue.yaml)")
    ap.add_argument("--print-job-script", action="store_true", help="show the job script and exit")
    a = ap.parse_args(argv)

    overrides = {"queue": a.queue} if a.queue else {}
    cluster = make_cluster(a.system, **overrides)
    if a.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return
    cluster.adapt(minimum=1, maximum=a.jobs)

    from distributed import Client

    from genotex_dask import api

    store = a.store or f"{a.out.rstrip('/')}/store"
    specs = a.specs or f"{a.out.rstrip('/')}/specs"
    with Client(cluster) as client:
        print(f"dashboard: {client.dashboard_link}", flush=True)
        print(api.ingest(a.root, store, client=client))
        if not a.specs:
            print(api.suggest_specs(a.root, specs, store=store))
        print(api.preprocess(a.root, specs, a.out, store=store, client=client))
        print(api.analyze(a.root, a.out, client=client))
    cluster.close()


if __name__ == "__main__":
    main()
