"""The deployment files in cluster/ are consistent and load with the tools that will read them.

No Kubernetes or SLURM here, so we check what can be checked offline: the manifest is a well-formed
DaskCluster whose workers follow our layout (1 thread, BLAS single-threaded, Dask's memory limit below the
container's), the Dockerfile is made of valid instructions that copy files which exist and install the
cloud extra, and dask-jobqueue renders job scripts from cluster/jobqueue.yaml through dask.config.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import dask.config
import dask_jobqueue  # noqa: F401  (registers its config defaults before we overlay ours)
import pytest
import yaml
from dask.utils import parse_bytes

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"

DOCKER_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


def _docker_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word, rest.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def test_dockerfile_is_valid_and_installs_cloud_extra():
    instr = _docker_instructions((CLUSTER / "Dockerfile").read_text())
    words = [w for w, _ in instr]
    assert words[0] == "FROM"
    bad = [w for w in words if w not in DOCKER_INSTRUCTIONS]
    assert not bad, f"unknown Dockerfile instructions: {bad}"
    # Every COPY source exists relative to the build context (the repository root).
    for word, args in instr:
        if word == "COPY":
            *sources, _dest = args.split()
            for src in sources:
                assert (REPO / src).exists(), f"COPY source {src} missing from the repository"
    pip = " ".join(a for w, a in instr if w == "RUN" and "pip install" in a)
    m = re.search(r'pip install\s+"?\.\[([a-z,]+)\]', pip)
    assert m, f"Dockerfile does not pip-install this package with an extra: {pip!r}"
    assert "cloud" in m.group(1).split(",")
    cloud = [r for r in importlib.metadata.requires("genotex_dask") or [] if 'extra == "cloud"' in r]
    assert any(r.startswith("s3fs") for r in cloud) and any(r.startswith("gcsfs") for r in cloud), cloud
    env = " ".join(a for w, a in instr if w == "ENV")
    assert "OMP_NUM_THREADS=1" in env


def _container(spec: dict, name: str) -> dict:
    (c,) = [c for c in spec["spec"]["containers"] if c["name"] == name]
    return c


def _arg(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def test_kubernetes_daskcluster_manifest():
    doc = yaml.safe_load((CLUSTER / "kubernetes" / "daskcluster.yaml").read_text())
    assert doc["apiVersion"] == "kubernetes.dask.org/v1" and doc["kind"] == "DaskCluster"
    name = doc["metadata"]["name"]
    worker = doc["spec"]["worker"]
    assert int(worker["replicas"]) >= 1
    w = _container(worker, "worker")
    s = _container(doc["spec"]["scheduler"], "scheduler")
    assert w["image"] == s["image"], "scheduler and workers must run the same image"
    assert w["args"][:2] == ["dask", "worker"] and s["args"][:2] == ["dask", "scheduler"]
    assert _arg(w["args"], "--nthreads") == "1"
    dask_limit = parse_bytes(_arg(w["args"], "--memory-limit"))
    k8s_limit = parse_bytes(w["resources"]["limits"]["memory"].replace("Gi", "GiB").replace("Mi", "MiB"))
    assert dask_limit < k8s_limit, "Dask's memory limit must sit below the container's so the nanny acts first"
    env = {e["name"]: e.get("value") for e in w["env"]}
    assert env["OMP_NUM_THREADS"] == "1"
    assert not any(k.startswith("AWS_SECRET") for k in env), "credentials belong in a Secret, not the manifest"
    svc = doc["spec"]["scheduler"]["service"]
    assert svc["selector"]["dask.org/cluster-name"] == name
    container_ports = {p["name"] for p in s["ports"]}
    assert {p["targetPort"] for p in svc["ports"]} <= container_ports
    assert {p["port"] for p in svc["ports"]} == {8786, 8787}


def test_jobqueue_config_loads_with_dask_config():
    cfg = dask.config.collect(paths=[str(CLUSTER / "jobqueue.yaml")], env={})
    for system in ("slurm", "pbs"):
        sec = cfg["jobqueue"][system]
        assert sec["cores"] == 1 and sec["processes"] == 1
        assert parse_bytes(sec["memory"]) >= parse_bytes("1GiB")
        assert any("OMP_NUM_THREADS=1" in line for line in sec["job-script-prologue"])


@pytest.mark.parametrize("system, directive", [("slurm", "#SBATCH"), ("pbs", "#PBS")])
def test_jobqueue_renders_job_script(system, directive):
    """dask-jobqueue turns our config into a job script: 1 thread, memory limit, single-threaded BLAS."""
    spec = importlib.util.spec_from_file_location("jobqueue_launch", CLUSTER / "jobqueue_launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    ours = dask.config.collect(paths=[str(CLUSTER / "jobqueue.yaml")], env={})["jobqueue"][system]
    # Our values overlay dask-jobqueue's defaults key by key, as they would from ~/.config/dask.
    with dask.config.set({f"jobqueue.{system}.{k}": v for k, v in ours.items()}):
        cluster = launch.make_cluster(system, scheduler_options={"host": "127.0.0.1"})
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    assert directive in script
    worker_line = next(line for line in script.splitlines() if "dask_worker" in line)
    assert "--nthreads 1" in worker_line
    assert re.search(r"--memory-limit 8\.00GiB", worker_line), worker_line
    assert "export OMP_NUM_THREADS=1" in script
