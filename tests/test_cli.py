"""The command line surface: exit codes, one-line user errors checked before a cluster starts, --debug,
logging flags, --version, examples in --help, dask-style cluster flag aliases, per-cohort failures as results."""

from __future__ import annotations

import json
import logging
import shutil
import socket
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from genotex_dask import cli, cluster
from genotex_dask.errors import EXIT_CLUSTER, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

DATA = Path(__file__).parent / "data"
GSE781_ROOT = DATA / "genotex_gse781"
SPEC_781 = Path(__file__).parent.parent / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
TRAIT = "Kidney_Clear_Cell_Carcinoma"


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if anything tries to start or connect a cluster."""
    def boom(*a, **k):
        raise AssertionError("a cluster was started before the arguments were checked")
    monkeypatch.setattr(cluster, "connect", boom)


@pytest.fixture(scope="module")
def default_client():
    """An in-process cluster registered as the default client: the CLI reuses it instead of starting one."""
    lc = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    c = Client(lc, set_as_default=True)
    yield c
    c.close()
    lc.close()


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["ingest", "{tmp}/nope", "--store", "{tmp}/store"],
    ["specs", "suggest", "{tmp}/nope", "--out", "{tmp}/specs"],
    ["run", "{tmp}/nope", "--out", "{tmp}/out"],
    ["preprocess", str(GSE781_ROOT), "--specs", "{tmp}/nope", "--out", "{tmp}/out"],
    ["evaluate", "--pred", "{tmp}/nope"],
])
def test_missing_paths_are_usage_errors_in_one_line(argv, tmp_path, capsys, no_cluster):
    rc = cli.main([a.format(tmp=tmp_path) for a in argv])
    assert rc == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert "nope" in line and "not found" in line


def test_missing_or_empty_input_tree_is_a_usage_error(tmp_path, capsys, no_cluster):
    assert cli.main(["ingest", str(tmp_path), "--store", str(tmp_path / "s")]) == EXIT_USAGE
    assert "no input/ directory" in _one_error_line(capsys.readouterr().err)
    (tmp_path / "input" / "GEO").mkdir(parents=True)
    assert cli.main(["ingest", str(tmp_path), "--store", str(tmp_path / "s")]) == EXIT_USAGE
    assert "no cohorts under input/" in _one_error_line(capsys.readouterr().err)
    assert cli.main(["specs", "suggest", str(tmp_path), "--out", str(tmp_path / "sp")]) == EXIT_USAGE
    assert "no cohorts under input/" in _one_error_line(capsys.readouterr().err)


def test_spec_typo_names_file_and_line_before_any_cluster(tmp_path, capsys, no_cluster):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / f"{TRAIT}.yaml").write_text(f"trait: {TRAIT}\ncohorts:\n  GSE781:\n    trait: {{sorce: title}}\n")
    rc = cli.main(["preprocess", str(GSE781_ROOT), "--specs", str(specs), "--out", str(tmp_path / "out")])
    assert rc == EXIT_USAGE
    line = _one_error_line(capsys.readouterr().err)
    assert f"{TRAIT}.yaml:4:" in line


def test_debug_shows_the_traceback(tmp_path, capsys, no_cluster):
    rc = cli.main(["--debug", "ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "s")])
    assert rc == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" in err and "ROOT not found" in err.strip().splitlines()[-1]


def test_unreachable_scheduler_exit_code(tmp_path, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    out = tmp_path / "out"
    (out / "preprocess").mkdir(parents=True)
    rc = cli.main(["analyze", str(GSE781_ROOT), "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert rc == EXIT_CLUSTER
    assert "not reachable" in _one_error_line(capsys.readouterr().err)


def test_version_help_examples_and_dask_style_aliases(capsys):
    from genotex_dask import __version__

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out
    parser = cli.build_parser()
    for cmd in (["ingest"], ["specs", "suggest"], ["preprocess"], ["analyze"], ["evaluate"], ["run"], ["synth"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*cmd, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and "genotex-dask " + " ".join(cmd) in text and "exit codes:" in text, cmd
    a = parser.parse_args(["analyze", "R", "--out", "O", "--nworkers", "3", "--nthreads", "2", "-q"])
    assert (a.workers, a.threads, a.quiet) == (3, 2, True)
    a = parser.parse_args(["-v", "-v", "analyze", "R", "--out", "O"])
    assert a.verbose == 2 and a.workers is None
    cli._setup_logging(a)
    assert logging.getLogger("genotex_dask").getEffectiveLevel() == logging.DEBUG
    cli._setup_logging(parser.parse_args(["analyze", "R", "--out", "O", "-q"]))
    assert logging.getLogger("genotex_dask").getEffectiveLevel() == logging.ERROR


def test_failed_cohorts_exit_1_without_worker_tracebacks(tmp_path, capsys, caplog, default_client):
    """Every cohort failing at gene mapping: exit 1, one line per cohort, no "Compute Failed" log; the traceback
    sits in the cohort's meta record; the trait was read, so clinical data is written (GenoTEX writes it before
    mapping) and is_trait_available stays true."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / f"{TRAIT}.yaml").write_text(SPEC_781.read_text().replace("gene_column: Gene Symbol",
                                                                      "gene_column: No Such Column"))
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        rc = cli.main(["preprocess", str(GSE781_ROOT), "--specs", str(specs), "--out", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == EXIT_PARTIAL
    assert "Compute Failed" not in caplog.text and "Traceback" not in cap.err
    failed = [ln for ln in cap.err.splitlines() if "failed" in ln and "GSE781" in ln]
    assert len(failed) == 1 and "No Such Column" in failed[0]
    part = json.loads((out / f"preprocess_meta/{TRAIT}/GSE781.json").read_text())
    assert part["status"] == "failed" and "Traceback" in part["traceback"]
    info = json.loads((out / f"preprocess/{TRAIT}/cohort_info.json").read_text())["GSE781"]
    assert info["is_trait_available"] is True and info["is_gene_available"] is False
    clin = (out / f"preprocess/{TRAIT}/clinical_data/GSE781.csv").read_text().splitlines()
    assert clin[1].startswith(TRAIT) and clin[1].count(",1") == 9 and clin[1].count(",0") == 8


def test_all_good_preprocess_exits_0(tmp_path, capsys, default_client):
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(SPEC_781, specs / SPEC_781.name)
    rc = cli.main(["-q", "preprocess", str(GSE781_ROOT), "--specs", str(specs), "--out", str(tmp_path / "o")])
    assert rc == EXIT_OK, capsys.readouterr().err


def test_run_on_a_real_tree_finishes_with_a_report_and_a_summary(tmp_path, capsys, default_client):
    """No truth.json, no reference: exit 0, run_summary.json, a results-only report, and the end-of-run account."""
    out = tmp_path / "out"
    rc = cli.main(["run", str(GSE781_ROOT), "--out", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == EXIT_OK, cap.err
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["overview"]["cohorts"]["usable"] == 1 and summary["overview"]["problems"]["solved"] == 1
    assert (out / "report" / "index.html").exists()
    assert "cohorts: 1 usable, 0 unusable" in cap.out and "problems: 1 solved, 0 failed" in cap.out
    assert f"report: {out / 'report' / 'index.html'}" in cap.out
    assert "need review" not in cap.out   # GSE781's suggestion is replaced by the shipped reviewed spec


def test_overview_lines_show_reasons_scores_and_review():
    ov = {"cohorts": {"usable": 3, "unusable": 2, "reasons": {"no mappable genes": 1, "empty after filtering": 1}},
          "problems": {"solved": 4, "failed": 1, "no_usable_cohort": 2},
          "scores": {"planted_truth": {"overall": {"f1": 41.25, "precision": 50.0}}},
          "specs_needing_review": ["T/GSE1"], "specs": "out/specs", "report": "out/report/index.html"}
    text = "\n".join(cli.overview_lines(ov))
    assert "3 usable, 2 unusable (1 no mappable genes, 1 empty after filtering)" in text
    assert "4 solved, 1 failed, 2 without a usable cohort" in text
    assert "planted_truth.overall.f1=41.2" in text and "T/GSE1" in text and "out/report/index.html" in text


def test_specs_suggest_prints_the_specs_needing_review(tmp_path, capsys, no_cluster):
    rc = cli.main(["specs", "suggest", str(GSE781_ROOT), "--out", str(tmp_path / "specs")])
    assert rc == EXIT_OK
    assert f"needs review: {TRAIT}/GSE781" in capsys.readouterr().out
