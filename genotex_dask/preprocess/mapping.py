"""Probe -> gene -> normalized symbol as ONE sparse linear operator, applied blockwise over samples.

GenoTEX maps probes in two pandas steps: each probe's value is split 1/n over the n gene tokens of its
annotation and summed per gene token; then tokens are normalized through the synonym table and rows landing on
the same official symbol are averaged.  Both steps are linear, so we compose them into one
``scipy.sparse`` matrix ``W = P @ N`` (probes x symbols): ``P[p, g] = 1/n_p`` (accumulated when an annotation
row repeats), ``N[g, s] = 1/k_s`` for the ``k_s`` gene tokens normalizing to ``s``.  A block of samples
``X`` (samples x probes) becomes ``X @ W`` in one sparse-dense product.

Missing values, the only non-linear part:

* ``compat="genotex"``: pandas' groupby-sum skips NaN, so a missing probe value counts as 0, and a gene whose
  probes are all missing becomes 0 (not missing); the mean then includes it.  That is exactly
  ``nan_to_num(X) @ W``.
* default: a gene is missing only where ALL its contributing probes are missing (its value is the sum of the
  present contributions), and a symbol is the mean over its non-missing genes (missing when none is present).

Both rules run in one compiled pass per sample through the gene level (``P`` then ``N``), reading the store's
float32 block as it is; ``W`` is kept as the operator's single-matrix form (for inspection and for users who
want ``X @ W``).

IDs that are already symbols use the same machinery with ``P`` = identity (a mean that skips NaN, as pandas'
``groupby(...).mean()`` does in both modes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import scipy.sparse as sp
from numba import njit

from genotex_dask.preprocess.symbols import drop_reason, extractor, normalize_symbols


class NoMappableGenes(ValueError):
    """No probe of the cohort maps to a known gene symbol."""


@dataclass
class GeneOperator:
    """A cohort's probe->symbol operator.

    ``P`` (probes x genes) and ``N`` (genes x symbols, binary) are kept beside the composed ``W`` because
    the default NaN rule needs the gene level for the few symbols touched by missing probes.
    """

    symbols: np.ndarray            # official symbols, sorted (the output gene axis)
    W: sp.csr_matrix               # probes x symbols, composed weights
    P: sp.csc_matrix               # probes x genes (1/n weights)
    N: sp.csc_matrix               # genes x symbols, binary
    compat: bool
    summary: dict = field(default_factory=dict)

    @property
    def n_probes(self) -> int:
        return self.W.shape[0]

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Map one block of samples (samples x probes) to samples x symbols, float64."""
        return apply_operator(self, block)


def _compose(P: sp.csr_matrix, gene_symbol: np.ndarray) -> tuple[np.ndarray, sp.csc_matrix, sp.csr_matrix]:
    """(symbols, N binary genes x symbols, W = P @ N / k) from a gene->symbol assignment (None = dropped)."""
    keep = np.flatnonzero(np.array([s is not None for s in gene_symbol], dtype=bool))
    symbols, inv = np.unique(gene_symbol[keep].astype(str), return_inverse=True)
    n_genes = len(gene_symbol)
    N = sp.csc_matrix((np.ones(len(keep)), (keep, inv)), shape=(n_genes, len(symbols)))
    k = np.asarray(N.sum(axis=0)).ravel()
    Nw = N @ sp.diags(1.0 / np.maximum(k, 1))
    W = sp.csr_matrix(P @ Nw)
    W.sum_duplicates()
    return symbols.astype(object), N, W


def build_probe_operator(probe_ids: Sequence[str], ann_ids: Sequence[object], ann_text: Sequence[object],
                         synonyms: Mapping[str, str], compat: str | None = None) -> GeneOperator:
    """Operator from the matrix's probe order and an annotation table (probe ID column, gene text column).

    Under ``compat="genotex"`` every annotation row counts (a probe listed twice, e.g. on two platforms of one
    family SOFT, is mapped twice) and each probe's value is split over all its extracted tokens, including
    tokens normalization later drops.  By default repeated IDs count once and the value is split only over
    tokens that normalize to a known symbol.
    """
    genotex = compat == "genotex"
    extract = extractor(compat)
    probe_pos: dict[str, int] = {}
    for i, p in enumerate(probe_ids):
        probe_pos.setdefault(str(p), i)
    n_probes = len(probe_ids)

    kept_pos: list[int] = []
    kept_tokens: list[tuple[str, ...]] = []
    seen: set[int] = set()
    n_rows_in_matrix = n_dup = n_unmapped = n_multi = 0
    dropped: Counter = Counter()
    dropped_examples: dict[str, list[str]] = {}
    memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}   # text -> (kept tokens, dropped tokens)

    def tokens_of(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        r = memo.get(text)
        if r is None:
            toks = extract(text)
            if genotex:
                r = (tuple(toks), ())
            else:
                r = (tuple(t for t in toks if synonyms.get(t.upper()) is not None),
                     tuple(t for t in toks if synonyms.get(t.upper()) is None))
            memo[text] = r
        return r

    for pid, text in zip(ann_ids, ann_text):
        if text is None or pid is None or (isinstance(text, float) and text != text):
            continue  # GenoTEX drops rows with a missing ID or gene text before mapping
        pos = probe_pos.get(pid if isinstance(pid, str) else str(pid))
        if pos is None:
            continue
        n_rows_in_matrix += 1
        if pos in seen:
            n_dup += 1
            if not genotex:
                continue
        seen.add(pos)
        toks, drop = tokens_of(text if isinstance(text, str) else str(text))
        for t in drop:
            reason = drop_reason(t, synonyms) or "not in the synonym table"
            dropped[reason] += 1
            ex = dropped_examples.setdefault(reason, [])
            if len(ex) < 20 and t not in ex:
                ex.append(t)
        if not toks:
            n_unmapped += 1
            continue
        if len(toks) > 1:
            n_multi += 1
        kept_pos.append(pos)
        kept_tokens.append(toks)
    mapped_probes = set(kept_pos)
    lens = np.fromiter((len(t) for t in kept_tokens), dtype=np.int64, count=len(kept_tokens))
    rows = np.repeat(np.asarray(kept_pos, dtype=np.int64), lens)
    weights = np.repeat(1.0 / np.maximum(lens, 1), lens)
    flat = np.fromiter(chain.from_iterable(kept_tokens), dtype=object, count=int(lens.sum()))
    genes, gcol = np.unique(flat.astype(str), return_inverse=True) if len(flat) \
        else (np.array([], dtype=str), np.array([], dtype=np.int64))
    P = sp.csr_matrix((weights, (rows, gcol.ravel())), shape=(n_probes, len(genes)))
    P.sum_duplicates()  # repeated annotation rows add up, as the reference's join does
    gene_symbol = normalize_symbols(genes, synonyms)
    if genotex:
        for g, s in zip(genes, gene_symbol):
            if s is None:
                reason = drop_reason(g, synonyms) or "not in the synonym table"
                dropped[reason] += 1
                dropped_examples.setdefault(reason, [])
                if len(dropped_examples[reason]) < 20:
                    dropped_examples[reason].append(g)
    symbols, N, W = _compose(P, gene_symbol)
    summary = {
        "kind": "probe",
        "compat": compat,
        "probes": n_probes,
        "annotated": len(seen),
        "annotation_rows_matched": n_rows_in_matrix,
        "duplicate_annotation_rows": n_dup,
        "mapped": len(mapped_probes),
        "multi_gene": n_multi,
        "unmapped": n_probes - len(mapped_probes),
        "unmapped_annotated": n_unmapped,
        "gene_tokens": int(len(genes)),
        "symbols": int(len(symbols)),
        "dropped_tokens": dict(dropped),
        "dropped_examples": dropped_examples,
    }
    if len(symbols) == 0:
        raise NoMappableGenes(f"no probe maps to a known gene symbol ({n_probes} probes, "
                              f"{len(seen)} annotated, {len(genes)} gene tokens)")
    return GeneOperator(symbols=symbols, W=W, P=sp.csc_matrix(P), N=N, compat=genotex, summary=summary)


def build_symbol_operator(ids: Sequence[object], synonyms: Mapping[str, str],
                          compat: str | None = None) -> GeneOperator:
    """Operator for matrices whose row IDs are already symbols: normalize, then average rows per symbol."""
    n = len(ids)
    gene_symbol = normalize_symbols(ids, synonyms)
    P = sp.identity(n, format="csr")
    symbols, N, W = _compose(P, gene_symbol)
    dropped = [str(i) for i, s in zip(ids, gene_symbol) if s is None]
    summary = {
        "kind": "symbols",
        "compat": compat,
        "probes": n,
        "mapped": n - len(dropped),
        "multi_gene": 0,
        "unmapped": len(dropped),
        "symbols": int(len(symbols)),
        "dropped_tokens": {"not in the synonym table": len(dropped)} if dropped else {},
        "dropped_examples": {"not in the synonym table": dropped[:20]} if dropped else {},
    }
    if len(symbols) == 0:
        raise NoMappableGenes(f"none of {n} row IDs is a known gene symbol")
    # Symbol rows always average with NaN skipped (pandas' mean), in both modes.
    return GeneOperator(symbols=symbols, W=W, P=sp.csc_matrix(P), N=N, compat=False, summary=summary)


@njit(cache=True, nogil=True)
def _apply_kernel(X, gptr, gidx, gw, sptr, sidx, skip_missing_genes, out):  # pragma: no cover - compiled
    """samples x probes -> samples x symbols through the gene level, one sample row at a time.

    gene = sum of its present probe contributions (present = not NaN); with ``skip_missing_genes`` a gene with
    no present probe is missing and a symbol is the mean of its present genes (NaN when none is); without it a
    missing probe counts as 0 and every gene takes part in the mean (pandas' groupby-sum, GenoTEX's rule).
    """
    n_genes = gptr.shape[0] - 1
    gval = np.empty(n_genes)
    has = np.empty(n_genes, np.bool_)
    for s in range(X.shape[0]):
        row = X[s]
        for g in range(n_genes):
            acc = 0.0
            h = False
            for k in range(gptr[g], gptr[g + 1]):
                v = row[gidx[k]]
                if v == v:
                    acc += gw[k] * v
                    h = True
            gval[g] = acc
            has[g] = h or not skip_missing_genes
        for j in range(sptr.shape[0] - 1):
            num = 0.0
            den = 0
            for k in range(sptr[j], sptr[j + 1]):
                g = sidx[k]
                if has[g]:
                    num += gval[g]
                    den += 1
            out[s, j] = num / den if den > 0 else np.nan


def _structure(op: GeneOperator) -> tuple[np.ndarray, ...]:
    """The operator as two CSR index structures (genes x probes with weights, symbols x genes), cached on it."""
    cache = op.__dict__.setdefault("_cache", {})
    if "csr" not in cache:
        PT = sp.csr_matrix(op.P.T)
        PT.sort_indices()
        NT = sp.csr_matrix(op.N.T)
        NT.sort_indices()
        cache["csr"] = (PT.indptr.astype(np.int64), PT.indices.astype(np.int64), PT.data.astype(np.float64),
                        NT.indptr.astype(np.int64), NT.indices.astype(np.int64))
    return cache["csr"]


def apply_operator(op: GeneOperator, block: np.ndarray) -> np.ndarray:
    """samples x probes -> samples x symbols (float64) with the operator's NaN rule.

    One compiled pass per sample row over the gene and symbol structure: no dense probes x samples copy, no
    NaN mask, and the float32 block from the store is read as it is.
    """
    X = np.asarray(block)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X)
    out = np.empty((X.shape[0], len(op.symbols)), dtype=np.float64)
    _apply_kernel(X, *_structure(op), not op.compat, out)
    return out


def apply_dask(op: GeneOperator, X):
    """Apply ``op`` to a dask array X (samples x probes), block by block over sample chunks.

    The probe axis is gathered into one chunk per block (a 256-sample block of 54,675 float32 probes is
    56 MB), so memory per task stays bounded regardless of the cohort's sample count.
    """
    from functools import partial

    import dask.array as da

    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    # bind the operator with partial: dask would otherwise traverse the dataclass argument
    return da.map_blocks(partial(apply_operator, op), X, dtype=np.float64,
                         chunks=(X.chunks[0], (len(op.symbols),)), meta=np.empty((0, 0), np.float64))
