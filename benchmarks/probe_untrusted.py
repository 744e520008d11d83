"""Probe: bad inputs and security cases against the engine's entry points (issue 14).

Each bad input is fed to the function a stage would call on it and classified:
``named``   a named error (one line, names the file or item, our error classes) or the documented handling;
``crashed`` any other exception (bare MemoryError, KeyError, JSONDecodeError without a file, ...);
``silent``  no error although the input is wrong (or the documented handling did not happen).
Each security case is ``held`` (nothing outside OUT/ROOT written or read, memory and time bounded) or ``broken``.

    .venv/bin/python -m benchmarks.probe_untrusted [--out benchmarks/results]

Runs in about a minute on 2 cores; writes probe_untrusted.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GZIP_MAGIC = b"\x1f\x8b"

sys.path.insert(0, str(REPO))  # run as a script too: the shared test-file writers live in tests/
from tests._geo_files import GSE781_ROOT, matrix_text, traversal_specs_tree  # noqa: E402
from tests._geo_files import GSE781_TRAIT as TRAIT  # noqa: E402


def _named_classes() -> tuple[type, ...]:
    from genotex_dask.cluster import ClusterPausedError, MemoryLimitError
    from genotex_dask.io.errors import InputFormatError
    from genotex_dask.layout import UnsafePathError
    from genotex_dask.metadata import MetadataError
    from genotex_dask.preprocess.specs import SpecError
    from genotex_dask.safe_regex import RegexError

    return (InputFormatError, SpecError, MetadataError, UnsafePathError, RegexError, MemoryLimitError,
            ClusterPausedError)


_ROWS = [['"p1"', "1.5", "2", "3"], ['"p2"', "4", "5", "6"]]
_CHARS = [["state: RA", "state: ctrl", "state: RA"]]


def _matrix(rows=None, chars=None, begin=True, end=True, header=None, samples=("GSM1", "GSM2", "GSM3")) -> str:
    """tests._geo_files.matrix_text with clean default cells, so each case breaks only what it names."""
    return matrix_text(samples, _ROWS if rows is None else rows, _CHARS if chars is None else chars,
                       table_begin=begin, table_end=end, header=header)


def _bomb(path: Path, gib: float, newlines: bool) -> Path:
    unit = (b"!Sample_x\t" + b"0\t" * 63 + b"0\n") * (1 << 20) if newlines else b"0" * (64 << 20)
    member = gzip.compress(unit, compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(_matrix(begin=False).encode() if not newlines else b'!Series_title\t"b"\n'))
        for _ in range(int(gib * (1 << 30)) // len(unit)):
            f.write(member)
    return path


def _classify(fn: Callable[[], object], expect: Callable[[object], bool] | None = None,
              must_name: str | None = None) -> tuple[str, str]:
    """Run ``fn``; ``expect(result)`` True means the documented handling happened (no error expected)."""
    named = _named_classes()
    try:
        res = fn()
    except named as exc:
        msg = str(exc)
        ok = "\n" not in msg and (must_name is None or must_name in msg)
        return ("named" if ok else "crashed"), f"{type(exc).__name__}: {msg[:160]}"
    except Exception as exc:  # noqa: BLE001 - anything else is what the probe looks for
        return "crashed", f"{type(exc).__name__}: {str(exc)[:160]}"
    if expect is not None and expect(res):
        return "named", f"handled: {str(res)[:160]}"
    return "silent", f"no error: {str(res)[:160]}"


def bad_inputs(tmp: Path) -> list[dict]:
    from genotex_dask.io.geo import read_series_matrix, read_soft_platforms
    from genotex_dask.io.tcga import read_xena_clinical, read_xena_expression
    from genotex_dask.metadata import check_gene_synonyms, check_task_info
    from genotex_dask.pipelines.ingest import discover, ingest_cohort
    from genotex_dask.pipelines.preprocess import _feature
    from genotex_dask.preprocess.specs import FeatureSpec, parse_specs

    d = tmp / "bad"
    d.mkdir()
    good = gzip.compress(_matrix(rows=[[f'"p{i}"', "1", "2", "3"] for i in range(50000)]).encode())
    cases: list[tuple[str, Callable[[], object], Callable | None, str | None]] = []

    def matrix_case(name: str, data: bytes | str) -> None:
        gz = isinstance(data, bytes) and data[:2] == GZIP_MAGIC
        p = d / (f"{name}_series_matrix.txt" + (".gz" if gz else ""))
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        for fast in (False, True):
            cases.append((f"matrix: {name} (fast={fast})", lambda p=p, f=fast: read_series_matrix(str(p), fast=f),
                          None, str(p)))

    matrix_case("truncated-gzip", good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(flipped) // 3: len(flipped) // 3 + 64] = os.urandom(64)
    matrix_case("corrupt-gzip", bytes(flipped))
    matrix_case("empty", "")
    matrix_case("empty-gzip", gzip.compress(b""))
    matrix_case("no-begin-marker", _matrix(begin=False))
    matrix_case("no-end-marker", _matrix(end=False))
    matrix_case("ragged-row", _matrix(rows=[['"p1"', "1", "2", "3"], ['"p2"', "1", "2"]]))
    matrix_case("non-numeric", _matrix(rows=[['"p1"', "1", "two", "3"]]))
    matrix_case("duplicate-gsm", _matrix(samples=("GSM1", "GSM1", "GSM3")))
    matrix_case("header-only", _matrix(rows=[]))
    matrix_case("no-sample-columns", '!Series_title\t"x"\n!series_matrix_table_begin\n"ID_REF"\n"p1"\n'
                                     "!series_matrix_table_end\n")
    matrix_case("50MB-header-line", _matrix(chars=[["a: " + "x" * (50 << 20), "b", "c"]]))
    matrix_case("50MB-table-line", _matrix(rows=[['"p1"', "1" * (50 << 20), "2", "3"]]))
    matrix_case("binary-garbage", os.urandom(1 << 20))
    matrix_case("utf16", _matrix().encode("utf-16"))
    bomb0 = _bomb(d / "bomb0_series_matrix.txt.gz", 2.0, False)
    cases.append(("matrix: 2 GiB zeros gzip bomb", lambda: read_series_matrix(str(bomb0)), None, str(bomb0)))
    bomb1 = _bomb(d / "bomb1_series_matrix.txt.gz", 2.0, True)
    cases.append(("matrix: 2 GiB repeated-lines gzip bomb", lambda: read_series_matrix(str(bomb1)), None,
                  str(bomb1)))
    x1 = d / "hdr_HiSeqV2_PANCAN"
    x1.write_text("sample\tS1\tS2\n")
    cases.append(("xena expression: header only", lambda: read_xena_expression(str(x1)), None, str(x1)))
    x2 = d / "dup_HiSeqV2_PANCAN"
    x2.write_text("sample\tS1\tS1\nG1\t1\t2\n")
    cases.append(("xena expression: duplicate samples", lambda: read_xena_expression(str(x2)), None, str(x2)))
    x3 = d / "empty_clinicalMatrix"
    x3.write_text("")
    cases.append(("xena clinical: empty", lambda: read_xena_clinical(str(x3)), None, str(x3)))
    s1 = d / "trunc_family.soft.gz"
    s1.write_bytes((GSE781_ROOT / f"input/GEO/{TRAIT}/GSE781/GSE781_family.soft.gz").read_bytes()[:300_000])
    cases.append(("soft: truncated", lambda: read_soft_platforms(str(s1), ["GPL96"]), None, str(s1)))
    s2 = GSE781_ROOT / f"input/GEO/{TRAIT}/GSE781/GSE781_family.soft.gz"
    cases.append(("soft: platform absent", lambda: read_soft_platforms(str(s2), ["GPL1"]), None, str(s2)))

    for name, text in (("malformed", '{"A": {"conditions": []},}'), ("list", '["A"]'),
                       ("entry-not-object", '{"A": ["IL6"]}'), ("conditions-not-list", '{"A": {"conditions": "Age"}}'),
                       ("empty-object", "{}")):
        p = d / f"task_info_{name}.json"
        p.write_text(text)
        cases.append((f"task_info.json: {name}", lambda p=p: check_task_info(str(p)), None, str(p)))
    for name, text in (("malformed", '{"A1B": "SNTB1"'), ("values-are-lists", '{"A1BG": ["ABG"]}'),
                       ("empty", "{}"), ("list", '[["A", "B"]]')):
        p = d / f"gene_synonym_{name}.json"
        p.write_text(text)
        cases.append((f"gene_synonym.json: {name}", lambda p=p: check_gene_synonyms(str(p)), None, str(p)))
    cases.append(("spec: YAML syntax", lambda: parse_specs("trait: T\ncohorts: {GSE1: [}\n", "T.yaml"), None,
                  "T.yaml"))
    import pandas as pd

    obs = pd.DataFrame({"title": ["aa", "bb"], "source_name_ch1": ["x", "y"]})
    cases.append(("spec: regex with backreference", lambda: _feature(
        FeatureSpec(source="title", rules=[(r"(a)\1", 1.0)], line=3), obs, None, "T.yaml"), None, "T.yaml"))

    from genotex_dask import cluster

    for lim in ("300MB", "400MB"):
        cases.append((f"--memory-limit {lim}", lambda lim=lim: cluster.check_memory_limit(lim, 2), None, lim))

    # an inf cell: documented handling = counted and made missing at ingest
    root = tmp / "inf_root"
    m = root / "input/GEO/T/GSE1/GSE1_series_matrix.txt"
    m.parent.mkdir(parents=True)
    m.write_text(_matrix(rows=[['"p1"', "inf", "2", "-Infinity"], ['"p2"', "4", "5", "6"]]))

    def ingest_inf():
        (job,) = discover(str(root), str(root / "store"))
        return ingest_cohort(job)

    cases.append(("matrix: inf cells", ingest_inf,
                  lambda r: r.get("status") == "ingested" and r.get("infinite_as_missing") == {"inf": 2}, None))

    out = []
    for name, fn, expect, must in cases:
        t0 = time.perf_counter()
        verdict, detail = _classify(fn, expect, must)
        out.append({"case": name, "verdict": verdict, "detail": detail,
                    "seconds": round(time.perf_counter() - t0, 2)})
    return out


def _tree(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


def security_cases(tmp: Path) -> list[dict]:
    from distributed import Client, LocalCluster

    from genotex_dask import layout
    from genotex_dask.io import fs
    from genotex_dask.pipelines import analyze
    from genotex_dask.pipelines.ingest import discover
    from genotex_dask.pipelines.preprocess import run_preprocess
    from genotex_dask.pipelines.specs import run_suggest_specs

    results: list[dict] = []

    def record(name: str, held: bool, detail: str) -> None:
        results.append({"case": name, "verdict": "held" if held else "broken", "detail": detail[:200]})

    base = tmp / "sec"
    root, specs, body = traversal_specs_tree(base)
    (specs / "Nul.yaml").write_text(f"trait: \"A\\0B\\\\..\\\\x\"\ncohorts:\n{body}")
    abs_target = base / f"ABS_{uuid.uuid4().hex}"
    task = json.loads((root / "metadata/task_info.json").read_text())
    task[TRAIT]["conditions"] = ["../../../ESC_COND"]
    task["../../../ESC_TRAIT"] = {"related_genes": [], "conditions": []}
    task[str(abs_target)] = {"related_genes": [], "conditions": []}
    task["Fake"] = {"related_genes": [], "conditions": []}
    (root / "metadata/task_info.json").write_text(json.dumps(task))
    out = base / "a" / "b" / "out"
    before = _tree(base)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            Client(lc) as client:
        s = run_preprocess(str(root), str(specs), str(out), client, progress=False)
        fake = out / "preprocess" / "Fake"
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "cohort_info.json").write_text(json.dumps({"../../../../ESC_C": {
            "is_usable": True, "is_gene_available": True, "is_trait_available": True, "is_available": True,
            "is_biased": False, "has_age": False, "has_gender": False, "sample_size": 50, "note": ""}}))
        a = analyze.run_analyze(str(root), str(out), client, mode="fast", progress=False)
    escaped = {p for p in _tree(base) - before if not p.startswith("a/b/out") and p not in ("a", "a/b")}
    reasons = {d["problem"]: d["reason"] for d in a["no_cohort_problems"]}
    record("spec cohort name '../../../ESC_COHORT'",
           "unsafe cohort name" in s["failed"].get(f"{TRAIT}/../../../ESC_COHORT", "") and not escaped, str(escaped))
    record("spec trait name '../../../ESC_TRAIT'",
           "unsafe trait name" in s["failed"].get("../../../ESC_TRAIT/GSE781", "") and not escaped, str(escaped))
    record("spec trait name with NUL and backslashes",
           any("unsafe trait name" in v for k, v in s["failed"].items() if k.startswith("A\x00")), str(s["failed"]))
    record("task_info trait '../../../ESC_TRAIT'",
           "unsafe trait name" in reasons.get("../../../ESC_TRAIT/significant_genes_condition_None", ""), str(reasons))
    record("task_info absolute trait", "unsafe trait name" in reasons.get(
        f"{abs_target}/significant_genes_condition_None", "") and not abs_target.exists(), str(reasons))
    record("task_info condition '../../../ESC_COND'", "unsafe condition name" in reasons.get(
        f"{TRAIT}/significant_genes_condition_../../../ESC_COND", ""), str(reasons))
    record("cohort_info cohort '../../../../ESC_C'",
           "unsafe cohort name" in reasons.get("Fake/significant_genes_condition_None", ""), str(reasons))
    record("nothing outside OUT after preprocess + analyze", not escaped and a["written"] == 1,
           f"escaped={sorted(escaped)} written={a['written']}")

    # listings: symlinks leaving ROOT, unsafe object keys
    lroot = base / "lroot"
    shutil.copytree(GSE781_ROOT, lroot)
    outside = base / "outside" / "GSE999"
    shutil.copytree(lroot / "input/GEO" / TRAIT / "GSE781", outside)
    os.symlink(outside.parent, lroot / "input/GEO/Leaving")
    os.symlink(outside, lroot / "input/GEO" / TRAIT / "GSE999")
    keys = sorted(j.key for j in discover(str(lroot), str(base / "store")))
    sug = run_suggest_specs(str(lroot), str(base / "lspecs"))
    record("directory symlinks leaving ROOT (ingest and suggest)",
           keys == [f"GEO/{TRAIT}/GSE781"] and sorted(sug["confidence"]) == [f"{TRAIT}/GSE781"],
           f"ingest={keys} suggest={sorted(sug['confidence'])}")
    mem = f"memory://probe-{uuid.uuid4().hex}"
    mfs, _ = fs.get_fs(mem)
    mfs.pipe_file(f"{mem[9:]}/input/GEO/T/../../ESC/x_series_matrix.txt", b"x")
    mfs.pipe_file(f"{mem[9:]}/input/GEO/T/GSE1/GSE1_series_matrix.txt", b"x")
    record("object-store key with '..' segments", ".." not in fs.listdir(layout.join(mem, "input/GEO/T")),
           str(fs.listdir(layout.join(mem, "input/GEO/T"))))
    try:
        layout.join(str(out), "a::memory://elsewhere")
        record("join with a protocol switch ('::', '://')", False, "accepted")
    except layout.UnsafePathError as exc:
        record("join with a protocol switch ('::', '://')", True, str(exc))

    # bounded: bomb in the client process (suggest), regex time
    broot = base / "broot"
    _bomb((broot / "input/GEO/T/GSE1").mkdir(parents=True) or broot / "input/GEO/T/GSE1/GSE1_series_matrix.txt.gz",
          2.0, False)
    code = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
            "from genotex_dask.pipelines.specs import run_suggest_specs\n"
            "s = run_suggest_specs(sys.argv[2], sys.argv[2] + '/specs')\n"
            "hwm = next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:'))\n"
            "print(json.dumps({'err': s['errors'], 'peak_mb': int(hwm.split()[1]) / 1024}))\n")
    res = subprocess.run([sys.executable, "-c", code, str(REPO), str(broot)], capture_output=True, text=True,
                         timeout=300)
    info = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {"peak_mb": 1e9}
    record("2 GiB gzip bomb read by `specs suggest` in the client",
           info["peak_mb"] < 600 and "MAX_" in json.dumps(info.get("err")), json.dumps(info))
    code = ("import sys, time; sys.path.insert(0, sys.argv[1])\n"
            "from genotex_dask.preprocess.clinical import apply_rules, compile_rules\n"
            "t = time.perf_counter(); apply_rules(['a' * 100000 + '!'], compile_rules([('(a+)+$', 1.0)]), False)\n"
            "print(time.perf_counter() - t)\n")
    try:
        res = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=60)
        record("regex (a+)+$ on a 100,000-character cell", res.returncode == 0 and float(res.stdout) < 5,
               f"{res.stdout.strip()} s")
    except subprocess.TimeoutExpired:
        record("regex (a+)+$ on a 100,000-character cell", False, "still running after 60 s")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="probe-untrusted-"))
    try:
        bad = bad_inputs(tmp)
        sec = security_cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = {"bad_inputs": {"tried": len(bad), **{v: sum(r["verdict"] == v for r in bad)
                                                 for v in ("named", "crashed", "silent")}},
              "security": {"tried": len(sec), **{v: sum(r["verdict"] == v for r in sec) for v in ("held", "broken")}}}
    doc = {"counts": counts, "bad_inputs": bad, "security": sec}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "probe_untrusted.json").write_text(json.dumps(doc, indent=2))
    lines = ["# Untrusted-input probe", "",
             f"bad inputs tried {counts['bad_inputs']['tried']} / named error {counts['bad_inputs']['named']} / "
             f"crashed {counts['bad_inputs']['crashed']} / silently wrong {counts['bad_inputs']['silent']}; "
             f"security cases tried {counts['security']['tried']} / held {counts['security']['held']} / "
             f"broken {counts['security']['broken']}", "", "| case | verdict | detail |", "|---|---|---|"]
    for r in bad + sec:
        lines.append(f"| {r['case']} | {r['verdict']} | {r['detail'].replace('|', '/')[:140]} |")
    Path(args.out, "probe_untrusted.md").write_text("\n".join(lines) + "\n")
    print(lines[2])
    for r in bad + sec:
        if r["verdict"] not in ("named", "held"):
            print(f"  {r['verdict']}: {r['case']}: {r['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
