"""Synthetic corpus: determinism, independent parses of every file kind, truth consistent with the files.

Every file is read here with plain gzip/pandas/GEOparse (never with genotex_dask.io), so a bug in the writer
cannot be hidden by the same bug in our readers.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genotex_dask.synth.corpus import UNUSABLE_SCENARIOS, plan_corpus, write_corpus

SMALL = dict(traits=3, cohorts_per_trait=3, samples=40, probes=1500, platforms=2, seed=0)
TINY = dict(traits=2, cohorts_per_trait=2, samples=20, probes=400, platforms=2)
# sha256 of TINY's files (seed 3, sorted by path) as the writer before ISA-L and compiled rows wrote them
FORMER_WRITER_DIGEST = "a74c54cf51a1cf6d45cc6d4068d7c9d1ebf93674387c06f80efd196dd2027b8b"
FORMER_WRITER_ZLIB = "1.2.13"

# GenoTEX's symbol-extraction rule, restated for the test (uppercase-led tokens up to 10 chars or C#orf#,
# not NR_/XR_/LOC#/LINC#, not DNA/RNA/PCR/EST/CHR).
_SYM = re.compile(r"\b(?!NR_|XR_|LOC\d+|LINC\d+)(?:[A-Z][A-Z0-9-]{1,9}|C\d+orf\d+)\b")
_SKIP = {"DNA", "RNA", "PCR", "EST", "CHR"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    write_corpus(str(out), **SMALL)
    return out


@pytest.fixture(scope="module")
def truth(corpus) -> dict:
    return json.loads((corpus / "truth.json").read_text())


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_matrix(path: Path) -> tuple[dict[str, list[list[str]]], pd.DataFrame]:
    """Series-matrix metadata rows (tag -> list of rows of unquoted cells) and the table (probes x GSM)."""
    meta: dict[str, list[list[str]]] = {}
    with gzip.open(path, "rt") as f:
        lines = f.read().split("\n")
    begin = lines.index("!series_matrix_table_begin")
    end = lines.index("!series_matrix_table_end")
    for line in lines[:begin]:
        if line.startswith("!"):
            tag, *cells = line.split("\t")
            meta.setdefault(tag, []).append([c.strip('"') for c in cells])
    table = pd.read_csv(pd.io.common.StringIO("\n".join(lines[begin + 1:end])), sep="\t", index_col=0,
                        na_values=["null", ""], keep_default_na=False)
    return meta, table


def _soft_platform_tables(path: Path) -> dict[str, pd.DataFrame]:
    out, cur, rows = {}, None, None
    with gzip.open(path, "rt") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("^PLATFORM = "):
                cur = line.split(" = ", 1)[1]
            elif line == "!platform_table_begin":
                rows = []
            elif line == "!platform_table_end":
                out[cur] = pd.read_csv(pd.io.common.StringIO("\n".join(rows)), sep="\t", dtype=str,
                                       keep_default_na=False)
                rows = None
            elif rows is not None:
                rows.append(line)
    return out


def _symbol_column(table: pd.DataFrame) -> str:
    for c in ("Gene Symbol", "gene_assignment", "Symbol"):
        if c in table.columns:
            return c
    raise AssertionError(f"no symbol column in {list(table.columns)}")


def _extract(text: str) -> list[str]:
    return list(dict.fromkeys(t for t in _SYM.findall(text or "") if t not in _SKIP))


def _geo(truth: dict):
    return {k: v for k, v in truth["cohorts"].items() if v["kind"] == "GEO"}


# ---- determinism and storage ----------------------------------------------------------------------------

def test_same_seed_same_bytes_memory_and_local(tmp_path):
    a = tmp_path / "a"
    write_corpus(str(a), seed=3, **TINY)
    files_a = _all_files(a)
    # the same seed written to memory:// gives the very same bytes
    write_corpus("memory://synth-test/c", seed=3, **TINY)
    mem = fsspec.filesystem("memory")
    got = {p.split("synth-test/c/", 1)[1]: mem.cat_file(p) for p in mem.find("/synth-test/c")}
    mem.rm("/synth-test", recursive=True)
    assert got == files_a
    # another seed changes data and truth
    write_corpus(str(tmp_path / "d"), seed=4, **TINY)
    files_d = _all_files(tmp_path / "d")
    assert files_d["truth.json"] != files_a["truth.json"]
    assert {k for k in files_a if k.endswith(".gz") and files_d.get(k) == files_a[k]} == set()
    assert not [p for p in a.rglob("*") if ".genotex-tmp-" in p.name]


def test_plan_matches_written_corpus_and_scales(truth):
    plan = plan_corpus(**SMALL)
    planned = {f"{c['trait']}/{c['cohort']}": c["n_samples"] for c in plan["cohorts"]}
    assert planned == {k: v["n_samples"] for k, v in truth["cohorts"].items()}
    sizes = list(planned.values())
    assert all(12 <= n <= 1.3 * 40 + 1 for n in sizes) and len(set(sizes)) > 3
    full = plan_corpus(traits=132, cohorts_per_trait=7, samples=167, probes=54675, platforms=6)
    assert len(full["cohorts"]) == 924 and len({c["trait"] for c in full["cohorts"]}) == 132
    assert 20e9 < full["estimated_gz_bytes"] < 80e9


# ---- independent parses -----------------------------------------------------------------------------------

def test_series_matrices_parse_and_match_soft_platforms(corpus, truth):
    for key, c in _geo(truth).items():
        d = corpus / c["input_dir"]
        soft = _soft_platform_tables(d / f"{c['cohort']}_family.soft.gz")
        assert sorted(soft) == sorted(c["platforms"]), key
        assert sorted(p.name for p in d.glob("*matrix*")) == c["matrix_files"]
        for mf in c["matrix_files"]:
            meta, table = _read_matrix(d / mf)
            gpl = meta["!Sample_platform_id"][0][0]
            assert (len(c["matrix_files"]) == 1) or mf == f"{c['cohort']}-{gpl}_series_matrix.txt.gz"
            assert list(table.columns) == meta["!Sample_geo_accession"][0]
            assert table.shape == (SMALL["probes"], c["n_samples"]), key
            assert list(table.index) == list(soft[gpl]["ID"])
            assert table.dtypes.map(lambda t: t.kind == "f").all()
            vals = table.to_numpy()
            assert np.nanmin(vals) >= 1.5 and np.nanmax(vals) <= 16.0
            for tag in ("!Series_title", "!Series_summary", "!Series_overall_design", "!Sample_title",
                        "!Sample_source_name_ch1"):
                assert tag in meta
            assert len(meta.get("!Sample_characteristics_ch1", [])) == sum(
                r is not None for r in (c["trait_row"], c["age_row"], c["gender_row"])) + (
                1 if c["scenario"] in ("characteristics", "characteristics_only", "all_cases", "no_trait") else 0)


def test_family_soft_parses_with_geoparse(corpus, truth):
    GEOparse = pytest.importorskip("GEOparse")  # test dependency; present in the test extra
    multi = [c for c in _geo(truth).values() if len(c["platforms"]) == 2][0]
    d = corpus / multi["input_dir"]
    gse = GEOparse.get_GEO(filepath=str(d / f"{multi['cohort']}_family.soft.gz"), silent=True)
    assert sorted(gse.gpls) == sorted(multi["platforms"])
    assert len(gse.gsms) == 2 * multi["n_samples"]
    tables = {g: gse.gpls[g].table for g in gse.gpls}
    ids = [set(t["ID"].astype(str)) for t in tables.values()]
    shared = ids[0] & ids[1]
    assert any(s.startswith("AFFX-HUMGAPDH") for s in shared)  # overlapping probe IDs across platforms
    for gpl, t in tables.items():
        assert len(t) == SMALL["probes"]
        col = _symbol_column(t)
        affx = t[t["ID"] == "AFFX-HUMGAPDH/M33197_3_at"]
        assert "GAPDH" in _extract(str(affx[col].iloc[0])), gpl
    for mf in multi["matrix_files"]:
        _, table = _read_matrix(d / mf)
        for gsm in table.columns[:5]:
            s = gse.gsms[gsm]
            v = s.table.set_index("ID_REF")["VALUE"].astype(float)
            np.testing.assert_allclose(v.to_numpy(), table.loc[v.index, gsm].to_numpy(), rtol=0, atol=1e-9)
            assert s.metadata["title"][0] in multi["trait_values"]


def test_tcga_xena_files(corpus, truth):
    tcga = [c for c in truth["cohorts"].values() if c["kind"] == "TCGA"]
    assert {c["expected_usable"] for c in tcga} == {True, False}
    for c in tcga:
        d = corpus / c["input_dir"]
        expr = pd.read_csv(next(d.glob("*PANCAN.gz")), sep="\t", index_col=0)
        clin = pd.read_csv(next(d.glob("*clinicalMatrix")), sep="\t", index_col=0)
        assert set(expr.columns) == set(clin.index) and list(expr.columns) != list(clin.index)
        assert expr.shape[1] == c["n_samples"] and not expr.index.duplicated().any()
        assert all(re.fullmatch(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}-(01|11)", b) for b in expr.columns)
        assert sum(b.endswith("-11") for b in expr.columns) == c["n_controls"]
        assert expr.index.str.startswith("?|").sum() >= 3
        assert set(clin["gender"].dropna()) <= {"MALE", "FEMALE"}
        assert clin["age_at_initial_pathologic_diagnosis"].dropna().between(18, 90).all()
        # a normal sample shares its patient's sex with the tumour sample
        for b in clin.index[clin.index.str.endswith("-11")]:
            assert clin.loc[b, "gender"] == clin.loc[b[:-3] + "-01", "gender"]
        planted = {g for gs in truth["trait_genes"].values() for g in gs}
        assert planted <= set(expr.index)


# ---- truth is consistent with the files ----------------------------------------------------------------------

def _labels(c: dict, meta: dict) -> list:
    src = c["trait_source"]
    if src == "characteristics":
        cells = meta["!Sample_characteristics_ch1"][c["trait_row"]]
    elif src == "source_name":
        cells = meta["!Sample_source_name_ch1"][0]
    elif src == "title":
        cells = meta["!Sample_title"][0]
    else:
        return []
    return [c["trait_values"][x] for x in cells]


def _genotex_biased(y: list) -> bool:
    counts = pd.Series(y).value_counts()
    return len(counts) < 2 or (counts.min() / len(y) < 0.1 and counts.min() < 5)


def test_truth_labels_and_usability_match_files(corpus, truth):
    reasons = set()
    for key, c in _geo(truth).items():
        meta, _ = _read_matrix(corpus / c["input_dir"] / c["matrix_files"][0])
        y = _labels(c, meta)
        chars = meta.get("!Sample_characteristics_ch1", [])
        if c["trait_source"] == "none":
            assert not c["expected_usable"] and "no trait" in c["reason"]
            covariate_rows = {c["age_row"], c["gender_row"]}
            assert all(len(set(r)) == 1 for i, r in enumerate(chars) if i not in covariate_rows), key
            assert len(set(meta["!Sample_source_name_ch1"][0])) == 1
        else:
            assert (sum(y), len(y) - sum(y)) == (c["n_cases"], c["n_controls"]), key
            assert _genotex_biased(y) == (not c["expected_usable"]), key
        if c["gender_row"] is not None:
            assert set(chars[c["gender_row"]]) == set(c["gender_values"]), key
        if c["age_row"] is not None:
            for cell in chars[c["age_row"]]:
                k, _, v = cell.partition(": ")
                assert k == c["age_key"] and (v == "NA" or 18 <= int(re.match(r"\d+", v).group()) <= 90)
        reasons.add(c["scenario"])
        assert (c["reason"] == "") == c["expected_usable"]
        assert c["expected_usable"] == (c["scenario"] not in UNUSABLE_SCENARIOS), key  # what projections rely on
    assert {"characteristics", "source_name", "too_few", "multi_platform", "no_trait"} <= reasons
    srcs = {c["trait_source"] for c in truth["cohorts"].values()}
    assert {"characteristics", "source_name", "title", "barcode", "none"} <= srcs
    assert any(c["batch_effect"] and c["expected_usable"] for c in truth["cohorts"].values())


def test_planted_genes_present_on_every_platform(corpus, truth):
    syn = json.loads((corpus / "metadata/gene_synonym.json").read_text())
    for k, v in syn.items():  # GenoTEX's rule
        assert k == k.upper() and syn[v.upper()] == v
    needed = {g for gs in truth["trait_genes"].values() for g in gs}
    multi = [c for c in _geo(truth).values() if len(c["platforms"]) == 2][0]
    soft = _soft_platform_tables(corpus / multi["input_dir"] / f"{multi['cohort']}_family.soft.gz")
    assert len(soft) == SMALL["platforms"]
    for gpl, t in soft.items():
        col = _symbol_column(t)
        raw = {s for text in t[col] for s in _extract(text)}
        normalized = {syn[s.upper()] for s in raw if s.upper() in syn}
        assert needed <= normalized, (gpl, needed - normalized)
        assert t[col].isin(["", "---"]).sum() > 0.02 * len(t)  # unmapped probes
        assert t[col].str.contains(" /// ").any()  # multi-gene probes
        assert t["ID"].duplicated().sum() == 0
    for trait, a in truth["alias_planted"].items():
        t = soft[a["platform"]]
        col = _symbol_column(t)
        texts = " ".join(t[col])
        assert a["alias"] in _extract(texts) and syn[a["alias"].upper()] == a["official"]
        assert a["official"] in truth["trait_genes"][trait]


def test_task_info_problem_categories(corpus, truth):
    info = json.loads((corpus / "metadata/task_info.json").read_text())
    assert sorted(info) == sorted(truth["trait_genes"])
    cats = {p["category"] for p in truth["problems"]}
    assert cats == {"unconditional", "conditional_one_step", "two_step"}
    for p in truth["problems"]:
        if p["condition"] is None:
            continue
        assert p["condition"] in info[p["trait"]]["conditions"]
        if p["category"] == "two_step":
            assert p["condition"] in info
            assert set(p["condition_genes"]) <= set(info[p["condition"]]["related_genes"])
    for t, genes in truth["trait_genes"].items():
        assert set(genes) < set(info[t]["related_genes"])  # plus distractors / unmeasured


def _gene_matrix(corpus: Path, c: dict) -> tuple[pd.DataFrame, dict]:
    d = corpus / c["input_dir"]
    meta, table = _read_matrix(d / c["matrix_files"][0])
    gpl = meta["!Sample_platform_id"][0][0]
    annot = _soft_platform_tables(d / f"{c['cohort']}_family.soft.gz")[gpl]
    col = _symbol_column(annot)
    first = annot.set_index("ID")[col].map(lambda s: (_extract(s) or [None])[0])
    genes = table.groupby(first.reindex(table.index).to_numpy()).mean()
    return genes, meta


def test_planted_effects_are_real(corpus, truth):
    c = next(v for v in _geo(truth).values() if v["scenario"] == "characteristics" and not v["batch_effect"])
    genes, meta = _gene_matrix(corpus, c)
    y = np.array(_labels(c, meta))
    planted = [g for g in truth["trait_genes"][c["trait"]] if g in genes.index]
    assert len(planted) >= len(truth["trait_genes"][c["trait"]]) - 1  # one may be listed under an alias
    genes = genes.dropna()  # the probe left empty in every sample, and any gene with a missing cell

    def pvalues(names) -> np.ndarray:
        x = genes.loc[list(names)].to_numpy()
        return stats.ttest_ind(x[:, y == 1], x[:, y == 0], axis=1).pvalue

    planted = [g for g in planted if g in genes.index]
    assert np.mean(pvalues(planted) < 1e-3) >= 0.8
    rng = np.random.default_rng(0)
    background = rng.choice([g for g in genes.index if g not in planted], 300, replace=False)
    assert np.mean(pvalues(background) < 1e-3) < 0.05
    # sex genes follow the recorded gender
    chars = meta["!Sample_characteristics_ch1"]
    male = np.array([c["gender_values"][x] for x in chars[c["gender_row"]]])
    assert genes.loc["XIST"][male == 0].mean() - genes.loc["XIST"][male == 1].mean() > 2
    assert genes.loc["RPS4Y1"][male == 1].mean() - genes.loc["RPS4Y1"][male == 0].mean() > 2
    # age genes follow the recorded age
    ages = pd.to_numeric(pd.Series(chars[c["age_row"]]).str.extract(r"(\d+)")[0], errors="coerce").to_numpy()
    ok = ~np.isnan(ages)
    r = [abs(np.corrcoef(ages[ok], genes.loc[g].to_numpy()[ok])[0, 1])
         for g in truth["covariate_genes"]["Age"] if g in genes.index]
    assert len(r) >= 6 and np.median(r) > 0.4


def test_batch_effect_dominates_first_axis(corpus, truth):
    def top_gap(c):
        _, table = _read_matrix(corpus / c["input_dir"] / c["matrix_files"][0])
        x = table.dropna(how="all").T.to_numpy()
        x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
        x = x - x.mean(axis=0)
        ev = np.sort(np.linalg.eigvalsh(x @ x.T))[::-1]
        return ev[0] / ev.sum()  # share of all variance on the first axis

    cs = [c for c in _geo(truth).values() if c["expected_usable"] and len(c["platforms"]) == 1]
    with_batch = [top_gap(c) for c in cs if c["batch_effect"]]
    without = [top_gap(c) for c in cs if not c["batch_effect"]]
    assert with_batch and without
    assert min(with_batch) > 0.3 and min(with_batch) > 2.5 * max(without), (with_batch, without)


def test_every_platform_kind_carries_the_planted_genes(tmp_path):
    out = tmp_path / "p3"
    write_corpus(str(out), traits=2, cohorts_per_trait=4, samples=16, probes=400, platforms=3, seed=1)
    t = json.loads((out / "truth.json").read_text())
    syn = json.loads((out / "metadata/gene_synonym.json").read_text())
    needed = {g for gs in t["trait_genes"].values() for g in gs}
    seen: dict[str, str] = {}
    for c in _geo(t).values():
        for gpl, table in _soft_platform_tables(out / c["input_dir"] / f"{c['cohort']}_family.soft.gz").items():
            col = _symbol_column(table)
            seen[gpl] = col
            normalized = {syn[s.upper()] for text in table[col] for s in _extract(text) if s.upper() in syn}
            assert needed <= normalized, (gpl, needed - normalized)
    assert sorted(seen.values()) == ["Gene Symbol", "Symbol", "gene_assignment"]


def _reference_batch_rule(x: np.ndarray) -> bool:
    """GenoTEX's eigen-gap test, restated: a gap > 200/n among the top-10 normalized eigenvalues of XX^T."""
    x = x - x.mean(axis=0)
    ev = np.sort(np.linalg.eigvalsh(x @ x.T))[::-1][:10]
    ev = ev / ev[0]
    return bool((ev[:-1] - ev[1:] > 200 / x.shape[0]).any())


def test_reference_batch_rule_fires_only_on_batch_cohorts_when_n_large(tmp_path):
    out = tmp_path / "big_n"
    write_corpus(str(out), traits=2, cohorts_per_trait=1, samples=260, probes=1000, platforms=1, seed=2,
                 vary_samples=False)
    t = json.loads((out / "truth.json").read_text())
    fired = {}
    for c in t["cohorts"].values():
        _, table = _read_matrix(out / c["input_dir"] / c["matrix_files"][0])
        x = table.dropna().T.to_numpy()
        fired[c["batch_effect"]] = _reference_batch_rule(x)
    assert fired == {True: True, False: False}


# ---- fast writer (compiled rows, ISA-L) and the GenoTEX-scale preset ---------------------------------------

def test_compiled_rows_equal_python_percent_4f():
    from genotex_dask.synth._format import format_block, id_blob

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-20, 20, (300, 7)), rng.lognormal(0, 6, (300, 7))])
    # exact decimal ties and near-ties (x.xxxx5 is rarely exact in binary: the rounding error decides)
    x[0, :] = [0.00005, 0.00015, 2.5e-5, 1.00005, -0.00005, 0.5, 1234.56785]
    x[1, :] = [0.0, -0.0, np.nan, 9.99995, 99999.99995, 0.03125, 1e10]
    x[2, :] = np.ldexp(np.arange(1, 8), -14)  # k/16384: binary fractions with exact 5th-decimal ties
    ids = [f"ID_{i}" for i in range(len(x))]
    blob, off = id_blob(ids)
    for null, quote in (("null", True), ("", False)):
        got = format_block(blob, off, x, null, quote)
        want = "".join((f'"{i}"' if quote else i) + "".join(
            "\t" + (null if np.isnan(v) else f"{v:.4f}") for v in row) + "\n" for i, row in zip(ids, x.tolist()))
        assert got == want.encode()
    assert format_block(blob, off[:2], np.array([[1e12]]), "", False) is None  # outside the exact path


def test_zlib_level_6_keeps_the_former_bytes_and_isal_the_same_text(tmp_path):
    # the former writer (stdlib gzip level 6, Python formatting) is this one with compressor="zlib", level 6:
    # pinned here by a digest of one small corpus's files, recorded from the former writer
    import hashlib

    write_corpus(str(tmp_path / "z"), seed=3, compresslevel=6, compressor="zlib", **TINY)
    write_corpus(str(tmp_path / "i"), seed=3, **TINY)
    z, i = _all_files(tmp_path / "z"), _all_files(tmp_path / "i")
    assert set(z) == set(i)
    for k in z:
        if k.endswith(".gz"):
            assert gzip.decompress(z[k]) == gzip.decompress(i[k]), k
        elif k == "synth_summary.json":  # it records the gz byte count
            zs, js = json.loads(z[k]), json.loads(i[k])
            assert zs.pop("data_bytes_gz") != js.pop("data_bytes_gz") and zs == js
        else:
            assert z[k] == i[k], k
    digest = hashlib.sha256(b"".join(z[k] for k in sorted(z))).hexdigest()
    if zlib.ZLIB_RUNTIME_VERSION == FORMER_WRITER_ZLIB:  # another zlib may deflate the same text differently
        assert digest == FORMER_WRITER_DIGEST


def test_genotex_plan_shape_and_stratified_fractions():
    from genotex_dask.synth.corpus import GENOTEX_PLATFORMS, plan_genotex

    full = plan_genotex(0)
    shape = full["full_shape"]
    assert (shape["traits"], shape["cohorts"], shape["problems"]) == (132, 911, 1384)
    assert 150 <= shape["mean_samples"] <= 185 and 1000 <= shape["max_tcga_samples"] <= 1250
    tcga = [c for c in full["cohorts"] if c["kind"] == "TCGA"]
    assert len(tcga) == 132 and len({c["trait"] for c in tcga}) == 132
    sizes = {p["probes"] for p in full["platforms"]}
    assert {54675, 22283, 33297} <= sizes and len(full["platforms"]) == len(GENOTEX_PLATFORMS)
    geo = [c for c in full["cohorts"] if c["kind"] == "GEO"]
    assert all(c["n_features"] in sizes for c in geo)
    by_key = {f"{c['trait']}/{c['cohort']}": c for c in full["cohorts"]}
    for k in (4, 8):
        part = plan_genotex(0, 1 / k)
        kept = set(part["kept_traits"])
        assert len(kept) == len(range(0, 132, k))
        assert {c["trait"] for c in part["cohorts"]} == kept
        # the sample's cohorts are the full corpus's (same plan, same sample IDs), and it is closed under conditions
        for c in part["cohorts"]:
            assert c == by_key[f"{c['trait']}/{c['cohort']}"]
        assert part["gsm_start"] == full["gsm_start"]
        for t in part["traits"]:
            if t["name"] in kept:
                assert all(c in ("Age", "Gender") or c in kept for c in t["conditions"])
        # stratified: cancers and non-cancers in about the full corpus's proportion
        share = np.mean([t["cancer"] for t in part["traits"] if t["name"] in kept])
        assert abs(share - np.mean([t["cancer"] for t in full["traits"]])) < 0.15
    with pytest.raises(ValueError):
        plan_genotex(0, 0.3)
