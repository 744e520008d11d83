"""The probe operator's vectorized build against a per-probe oracle written the obvious way (dicts, one
annotation row at a time), and the one-pass token extraction against the per-text extractors."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import numpy as np
import pytest

from genotex_dask.preprocess.mapping import build_probe_operator
from genotex_dask.preprocess.symbols import extract_symbols_batch, extractor

SYN = {"TP53": "TP53", "P53": "TP53", "GAPDH": "GAPDH", "ACTB": "ACTB", "HLA-DRB1": "HLA-DRB1", "MIR4640": "MIR4640",
       "DDR1": "DDR1", "ANKHD1": "ANKHD1", "EIF4EBP3": "EIF4EBP3", "ANKHD1-EIF4EBP3": "ANKHD1-EIF4EBP3",
       "C10ORF54": "VSIR", "VSIR": "VSIR", "X": "X"}
WORDS = [*SYN, "p53", "tp53", "C10orf54", "DNA", "RNA", "LOC1234", "LINC00473", "NR_001", "XR_1", "ABCDEFGHIJKL",
         "NOTAGENE", "A-", "Q9", "-", "é", "\x1f", "\x00", "_X"]
SEPS = [" /// ", " ", "", ",", "-", "\t", ";", "\x1f"]


def _text(rng: random.Random) -> object:
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.12:
        return float("nan")
    return "".join(rng.choice(WORDS) + rng.choice(SEPS) for _ in range(rng.randint(0, 4)))


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _oracle(probe_ids, ann_ids, ann_text, syn, compat):
    """(symbols, dense W, summary counts) one annotation row at a time."""
    genotex = compat == "genotex"
    extract = extractor(compat)
    ids = [p if isinstance(p, str) else str(p) for p in probe_ids]
    first: dict[str, int] = {}
    for i, p in enumerate(ids):
        first.setdefault(p, i)
    P: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seen: set[int] = set()
    matched = dup = multi = unmapped_ann = 0
    dropped: Counter = Counter()
    for a, t in zip(ann_ids, ann_text):
        if _missing(a) or _missing(t):
            continue
        p = first.get(a if isinstance(a, str) else str(a))
        if p is None:
            continue
        matched += 1
        if p in seen:
            dup += 1
            if not genotex:
                continue
        seen.add(p)
        toks = extract(t if isinstance(t, str) else str(t))
        if not genotex:
            for tok in toks:
                if syn.get(tok.upper()) is None:
                    dropped["truncated" if tok.endswith("-") else "table"] += 1
            toks = [tok for tok in toks if syn.get(tok.upper()) is not None]
        multi += len(toks) > 1
        unmapped_ann += not toks
        for tok in toks:
            P[p][tok] += 1 / len(toks)
    genes = sorted({g for row in P.values() for g in row})
    if genotex:
        for g in genes:
            if syn.get(g.upper()) is None:
                dropped["truncated" if g.endswith("-") else "table"] += 1
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for g in genes:
        if syn.get(g.upper()) is not None:
            by_symbol[syn[g.upper()]].append(g)
    symbols = sorted(by_symbol)
    W = np.zeros((len(ids), len(symbols)))
    for j, s in enumerate(symbols):
        for p, row in P.items():
            W[p, j] = sum(row.get(g, 0.0) for g in by_symbol[s]) / len(by_symbol[s])
    mapped = sum(1 for row in P.values() if row)
    counts = {"annotated": len(seen), "annotation_rows_matched": matched, "duplicate_annotation_rows": dup,
              "mapped": mapped, "unmapped": len(ids) - mapped, "multi_gene": multi,
              "unmapped_annotated": unmapped_ann, "gene_tokens": len(genes), "symbols": len(symbols)}
    return symbols, W, counts, dropped


@pytest.mark.parametrize("compat", [None, "genotex"])
def test_probe_operator_equals_the_row_by_row_oracle(compat):
    rng = random.Random(12)
    checked = 0
    for case in range(150):
        n = rng.randint(1, 40)
        pids = [f"p{rng.randint(0, n)}" if rng.random() < 0.9 else rng.choice([rng.randint(0, 9), None])
                for _ in range(n)]
        same = case % 3 == 0
        if same:
            aids, texts = pids, [_text(rng) for _ in pids]
        else:
            m = rng.randint(0, 60)
            aids = [rng.choice(pids) if rng.random() < 0.8 else rng.choice([None, "q1", 3, float("nan")])
                    for _ in range(m)]
            texts = [_text(rng) for _ in range(m)]
        symbols, W, counts, dropped = _oracle(pids, aids, texts, SYN, compat)
        if not symbols:
            with pytest.raises(ValueError):
                build_probe_operator(pids, aids, texts, SYN, compat)
            continue
        op = build_probe_operator(pids, aids, texts, SYN, compat)
        checked += 1
        assert list(op.symbols) == symbols, case
        np.testing.assert_allclose(op.W.toarray(), W, rtol=1e-12, atol=0, err_msg=str(case))
        assert {k: op.summary[k] for k in counts} == counts, case
        got = Counter({("truncated" if "truncated" in k else "table"): v
                       for k, v in op.summary["dropped_tokens"].items()})
        assert got == dropped, case
    assert checked > 80  # most random tables map something


@pytest.mark.parametrize("compat", [None, "genotex"])
def test_batch_extraction_equals_the_per_text_extractor(compat):
    rng = random.Random(7)
    extract = extractor(compat)
    for _ in range(60):
        texts = [t if isinstance(t, str) else "" for t in (_text(rng) for _ in range(rng.randint(0, 30)))]
        toks, owner = extract_symbols_batch(texts, compat)
        expected = [(i, t) for i, text in enumerate(texts) for t in extract(text)]
        assert list(zip(owner.tolist(), toks.tolist())) == expected, texts
