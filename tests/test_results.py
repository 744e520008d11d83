"""Loaders over a run's outputs: the significant genes as a pandas DataFrame, the Parquet dataset the analyze
stage writes (partitioned by trait, read back by dask.dataframe from a path and from memory://), its rebuild
from the JSON layout when absent or stale, and the "genes recurring across traits" query."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dask.dataframe as dd
import fsspec
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from genotex_dask import results
from genotex_dask.pipelines.analyze import run_analyze
from tests._analysis_fixtures import write_corpus


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("results")
    root, out = base / "root", base / "out"
    write_corpus(str(root), str(out), n=50, p=80)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            Client(lc) as c:
        summary = run_analyze(str(root), str(out), c, mode="fast", progress=False)
    return out, summary


def _oracle(out: Path) -> pd.DataFrame:
    """Straight from the JSON files: (trait, condition, gene, coefficient, rank) per listed gene."""
    rows = []
    for f in sorted((out / "regress").glob("*/significant_genes_condition_*.json")):
        cond = f.stem.removeprefix("significant_genes_condition_")
        res = json.loads(f.read_text())
        sig = res["significant_genes"]
        for i, (g, c) in enumerate(zip(sig["Variable"], sig["Coefficient"])):
            rows.append((f.parent.name, None if cond == "None" else cond, g, c, i + 1,
                         res["genotex_dask"]["trait_cohort"]))
    return pd.DataFrame(rows, columns=["trait", "condition", "gene", "coefficient", "rank", "trait_cohort"])


def _key(df: pd.DataFrame) -> list[tuple]:
    return sorted((str(r.trait), str(r.condition) if pd.notna(r.condition) else "", str(r.gene),
                   round(float(r.coefficient), 12), int(r.rank), str(r.trait_cohort))
                  for r in df.itertuples())


def test_analyze_writes_parquet_that_dask_reads(run):
    out, summary = run
    url = summary["results_dataset"]
    assert url == results.results_dataset_url(str(out))
    assert sorted(p.name for p in Path(url).glob("trait=*")) == ["trait=Asthma", "trait=Obesity"]
    ddf = dd.read_parquet(url)
    assert ddf.npartitions == 2
    got = ddf.compute()
    exp = _oracle(out)
    assert len(exp) > 10 and _key(got) == _key(exp)
    assert set(got.columns) >= set(results.COLUMNS)
    assert (got["sign"] == got["coefficient"].apply(lambda c: 1 if c > 0 else -1)).all()
    one = dd.read_parquet(url, filters=[("trait", "==", "Obesity")]).compute()
    assert set(one["trait"].astype(str)) == {"Obesity"} and len(one) == (exp["trait"] == "Obesity").sum()


def test_significant_genes_dataframe(run):
    out, _ = run
    df = results.significant_genes(str(out))
    assert list(df.columns) == list(results.COLUMNS)
    assert _key(df) == _key(_oracle(out))
    two = df[df["condition"] == "Obesity"]
    assert set(two["category"]) == {"two_step"}
    assert two["cohorts"].str.contains(" + ", regex=False).all()  # trait cohort + condition cohort
    assert set(df.loc[df["condition"].isna(), "category"]) == {"unconditional"}
    assert set(df["mode"]) == {"fast"}


def test_dataset_rebuilt_when_absent_or_stale(run, tmp_path):
    src, _ = run
    out = tmp_path / "out"
    shutil.copytree(src / "regress", out / "regress")  # a run whose table was never written
    url = results.results_dataset(str(out))
    assert _key(dd.read_parquet(url).compute()) == _key(_oracle(out))
    f = out / "regress" / "Asthma" / "significant_genes_condition_None.json"
    res = json.loads(f.read_text())
    dropped = res["significant_genes"]["Variable"][0]
    for k in res["significant_genes"]:
        res["significant_genes"][k] = res["significant_genes"][k][1:]
    f.write_text(json.dumps(res))
    got = results.read_results(str(out)).compute()
    assert _key(got) == _key(_oracle(out))
    asthma0 = got[(got["trait"] == "Asthma") & got["condition"].isna()]
    assert dropped not in set(asthma0["gene"]) and asthma0["rank"].min() == 1


def test_dataset_on_memory_url(run):
    out, _ = run
    mem = "memory://gtx-results-test/out"
    m = fsspec.filesystem("memory")
    for f in (out / "regress").rglob("significant_genes_condition_*.json"):
        m.pipe(f"{mem}/{f.relative_to(out).as_posix()}".removeprefix("memory://"), f.read_bytes())
    try:
        got = results.read_results(mem).compute()
        assert _key(got) == _key(_oracle(out))
        assert dd.read_parquet(results.results_dataset_url(mem)).npartitions == 2
    finally:
        m.rm("/gtx-results-test", recursive=True)


def test_recurrent_genes_pandas_and_dask_agree():
    table = pd.DataFrame({"trait": ["A", "A", "B", "B", "C", "C"], "gene": ["G1", "G1", "G1", "G2", "G2", "G3"]})
    exp = {"G1": 2, "G2": 2}  # G1: traits A, B (A twice); G2: B, C; G3: C only
    assert results.recurrent_genes(table).to_dict() == exp
    got = results.recurrent_genes(dd.from_pandas(table, npartitions=2)).compute()
    assert got.to_dict() == exp
