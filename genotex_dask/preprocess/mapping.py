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

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit

from genotex_dask.preprocess.symbols import (
    drop_reason,
    extract_symbols_batch,
    lookup_upper,
    normalize_symbols,
)


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


OPERATOR_FORMAT = 1  # bump when the saved layout or the mapping rules change (invalidates saved operators)


def operator_to_bytes(op: GeneOperator) -> bytes:
    """The operator as an ``.npz`` (no pickle): P and N as sparse parts, symbols, the summary as JSON."""
    import io
    import json

    P = sp.csr_matrix(op.P)
    N = sp.csr_matrix(op.N)
    buf = io.BytesIO()
    np.savez(buf, format=np.array([OPERATOR_FORMAT]), symbols=np.asarray(op.symbols, dtype=str),
             p_data=P.data, p_indices=P.indices, p_indptr=P.indptr, p_shape=np.array(P.shape),
             n_data=N.data, n_indices=N.indices, n_indptr=N.indptr, n_shape=np.array(N.shape),
             compat=np.array([bool(op.compat)]), summary=np.array(json.dumps(op.summary, default=str)))
    return buf.getvalue()


def operator_from_bytes(data: bytes) -> GeneOperator:
    """Inverse of :func:`operator_to_bytes`; ``ValueError`` for another format version."""
    import io
    import json

    z = np.load(io.BytesIO(data), allow_pickle=False)
    if int(z["format"][0]) != OPERATOR_FORMAT:
        raise ValueError(f"operator format {int(z['format'][0])}, expected {OPERATOR_FORMAT}")
    P = sp.csr_matrix((z["p_data"], z["p_indices"], z["p_indptr"]), shape=tuple(z["p_shape"]))
    N = sp.csc_matrix(sp.csr_matrix((z["n_data"], z["n_indices"], z["n_indptr"]), shape=tuple(z["n_shape"])))
    k = np.asarray(N.sum(axis=0)).ravel()
    W = sp.csr_matrix(P @ (N @ sp.diags(1.0 / np.maximum(k, 1))))
    W.sum_duplicates()
    return GeneOperator(symbols=z["symbols"].astype(object), W=W, P=sp.csc_matrix(P), N=N,
                        compat=bool(z["compat"][0]), summary=json.loads(str(z["summary"])))


def _compose(P: sp.csr_matrix, gene_symbol: np.ndarray) -> tuple[np.ndarray, sp.csc_matrix, sp.csr_matrix]:
    """(symbols, N binary genes x symbols, W = P @ N / k) from a gene->symbol assignment (None = dropped)."""
    keep = np.flatnonzero(np.not_equal(gene_symbol, None))
    codes, distinct = pd.factorize(gene_symbol[keep]) if len(keep) else (np.zeros(0, np.int64), np.zeros(0, object))
    order = np.argsort(distinct.astype(str), kind="stable")   # symbols sorted, as np.unique gives them
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    symbols, inv = distinct[order].astype(object), rank[codes]
    n_genes = len(gene_symbol)
    N = sp.csc_matrix((np.ones(len(keep)), (keep, inv)), shape=(n_genes, len(symbols)))
    k = np.asarray(N.sum(axis=0)).ravel()
    Nw = N @ sp.diags(1.0 / np.maximum(k, 1))
    W = sp.csr_matrix(P @ Nw)
    W.sum_duplicates()
    return symbols, N, W


def _as_objects(values: Sequence[object]) -> np.ndarray:
    """``values`` as a 1-d object array (no copy for one already)."""
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = list(values) if not isinstance(values, (np.ndarray, pd.Index, pd.Series)) else np.asarray(values,
                                                                                                      dtype=object)
    return out


def _as_strings(values: Sequence[object], none_as_text: bool = False) -> np.ndarray:
    """Object array of ``values`` with every non-string as ``str(value)`` (one C-level check when all are
    strings, the usual case); with ``none_as_text`` None too becomes ``"None"``, as ``str`` would."""
    a = _as_objects(values)
    if pd.api.types.infer_dtype(a, skipna=False) == "string":
        return a
    return np.array([v if isinstance(v, str) else str(v) for v in a] + [None], dtype=object)[:-1]


def _factorize_texts(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct texts in first-appearance order).  pandas' string hash table stops at a NUL, so a text
    holding one (untrusted input) would be merged with its prefix: those go through a dict instead."""
    if not len(texts):
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    if "\x00" not in "".join(texts):
        return pd.factorize(texts)
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    uniq = np.empty(len(index), dtype=object)
    uniq[:] = list(index)
    return codes, uniq


def build_probe_operator(probe_ids: Sequence[str], ann_ids: Sequence[object], ann_text: Sequence[object],
                         synonyms: Mapping[str, str], compat: str | None = None) -> GeneOperator:
    """Operator from the matrix's probe order and an annotation table (probe ID column, gene text column).

    Under ``compat="genotex"`` every annotation row counts (a probe listed twice, e.g. on two platforms of one
    family SOFT, is mapped twice) and each probe's value is split over all its extracted tokens, including
    tokens normalization later drops.  By default repeated IDs count once and the value is split only over
    tokens that normalize to a known symbol.
    """
    genotex = compat == "genotex"
    n_probes = len(probe_ids)
    pid = _as_strings(probe_ids, none_as_text=True)
    ids = pd.Index(pid, dtype=object)
    first = ~ids.duplicated()                                  # a repeated matrix ID maps to its first row
    first_pos = np.flatnonzero(first)

    # annotation rows with an ID and a gene text (GenoTEX drops the others before mapping), in file order
    a_ids = _as_objects(ann_ids)
    a_text = _as_objects(ann_text)
    present = ~(pd.isna(a_ids) | pd.isna(a_text))
    if ann_ids is probe_ids and len(first_pos) == n_probes:   # the store's own table: row i is probe i
        loc = np.flatnonzero(present)
    else:
        loc = ids[first].get_indexer(_as_strings(a_ids[present]))
        loc = np.where(loc >= 0, first_pos[np.maximum(loc, 0)], -1)
    in_matrix = loc >= 0
    pos = loc[in_matrix]
    texts = _as_strings(a_text[present][in_matrix])
    n_rows_in_matrix = int(len(pos))
    dup = pd.Series(pos).duplicated().to_numpy()
    n_dup = int(dup.sum())
    n_annotated = int(len(pos) - n_dup)
    if not genotex:                                           # by default a repeated ID counts once
        pos = pos[~dup]
        texts = texts[~dup]

    # tokens once per distinct annotation text (GPL570: 54,675 rows, ~23,000 texts), then back to the rows;
    # each distinct token looked up once
    codes, uniq = _factorize_texts(texts)
    occ = np.bincount(codes, minlength=len(uniq))
    toks, owner = extract_symbols_batch(list(uniq), compat)
    tcodes, tuniq = pd.factorize(toks) if len(toks) else (np.zeros(0, np.int64), np.zeros(0, object))
    sym_u = np.empty(len(tuniq), dtype=object)
    sym_u[:] = lookup_upper(tuniq, synonyms)
    dropped: Counter = Counter()
    dropped_examples: dict[str, list[str]] = {}
    if genotex:
        kept = np.ones(len(toks), dtype=bool)                 # the value is split over every extracted token
    else:
        kept = np.not_equal(sym_u, None)[tcodes] if len(toks) else np.zeros(0, dtype=bool)
        for i in np.flatnonzero(~kept):                       # tokens normalization drops, in file order
            t = toks[i]
            reason = drop_reason(t, synonyms) or "not in the synonym table"
            dropped[reason] += int(occ[owner[i]])
            ex = dropped_examples.setdefault(reason, [])
            if len(ex) < 20 and t not in ex:
                ex.append(t)
    u_len = np.bincount(owner[kept], minlength=len(uniq)).astype(np.int64)
    row_len = u_len[codes]
    n_unmapped = int((row_len == 0).sum())
    n_multi = int((row_len > 1).sum())
    kept_rows = row_len > 0
    kept_pos = pos[kept_rows]
    lens = row_len[kept_rows]
    n_mapped = int(np.count_nonzero(np.bincount(kept_pos, minlength=n_probes))) if len(kept_pos) else 0
    # the genes: the kept distinct tokens in sorted order; token t of row r gathered by segment
    u_code = tcodes[kept]
    in_use = np.unique(u_code)
    names = tuniq[in_use].astype(object)
    order = np.argsort(names.astype(str), kind="stable")
    genes = names[order]
    rank = np.empty(len(tuniq), dtype=np.int64)
    rank[in_use[order]] = np.arange(len(in_use))
    u_gene = rank[u_code]
    u_off = np.concatenate([[0], np.cumsum(u_len)[:-1]]) if len(u_len) else np.zeros(0, np.int64)
    total = int(lens.sum())
    seg_start = np.repeat(u_off[codes[kept_rows]], lens)
    within = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
    gcol = u_gene[seg_start + within] if total else np.zeros(0, np.int64)
    rows = np.repeat(kept_pos.astype(np.int64), lens)
    weights = np.repeat(1.0 / np.maximum(lens, 1), lens)
    P = sp.csr_matrix((weights, (rows, gcol)), shape=(n_probes, len(genes)))
    P.sum_duplicates()  # repeated annotation rows add up, as the reference's join does
    gene_symbol = sym_u[in_use[order]]
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
        "annotated": n_annotated,
        "annotation_rows_matched": n_rows_in_matrix,
        "duplicate_annotation_rows": n_dup,
        "mapped": n_mapped,
        "multi_gene": n_multi,
        "unmapped": n_probes - n_mapped,
        "unmapped_annotated": n_unmapped,
        "gene_tokens": int(len(genes)),
        "symbols": int(len(symbols)),
        "dropped_tokens": dict(dropped),
        "dropped_examples": dropped_examples,
    }
    if len(symbols) == 0:
        raise NoMappableGenes(f"no probe maps to a known gene symbol ({n_probes} probes, "
                              f"{n_annotated} annotated, {len(genes)} gene tokens)")
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
def _apply_kernel(X, n_genes, pptr, pgene, pw, sptr, sgene, skip_missing_genes, out):  # pragma: no cover
    """samples x probes -> samples x symbols through the gene level.

    Probes are read in order and their weighted values added into the genes they map to; gene = sum of its
    present probe contributions (present = not NaN); with ``skip_missing_genes`` a gene with no present probe is
    missing and a symbol is the mean of its present genes (NaN when none is); without it a missing probe counts
    as 0 and every gene takes part in the mean (pandas' groupby-sum, GenoTEX's rule).

    Four samples go through the operator's structure together (:func:`_apply4`): its index arrays (~2 MB for
    GPL570) are read once per four samples instead of once per sample, and a missing value is a multiply by 0
    instead of a branch.  Each sample's sums are added in the same order as one at a time, so the result is the
    same to the bit (a gene sum never is -0.0, so adding +0.0 for a missing probe changes nothing).
    """
    n_s = X.shape[0]
    full = n_s - n_s % 4
    if full:
        gval = np.empty((n_genes, 4))
        miss = np.empty((n_genes, 4), np.int32)
        n_probes = np.zeros(n_genes, np.int32)  # probes of each gene: present = fewer of them missing
        for k in range(pgene.shape[0]):
            n_probes[pgene[k]] += 1
        for s0 in range(0, full, 4):
            _apply4(X, s0, pptr, pgene, pw, sptr, sgene, skip_missing_genes, gval, miss, n_probes, out)
    gv = np.empty(n_genes)
    hs = np.empty(n_genes, np.bool_)
    for s in range(full, n_s):
        gv[:] = 0.0
        hs[:] = not skip_missing_genes
        row = X[s]
        for p in range(pptr.shape[0] - 1):
            v = row[p]
            if v == v:
                for k in range(pptr[p], pptr[p + 1]):
                    g = pgene[k]
                    gv[g] += pw[k] * v
                    hs[g] = True
        for j in range(sptr.shape[0] - 1):
            num = 0.0
            den = 0
            for k in range(sptr[j], sptr[j + 1]):
                g = sgene[k]
                if hs[g]:
                    num += gv[g]
                    den += 1
            out[s, j] = num / den if den > 0 else np.nan


@njit(cache=True, nogil=True, inline="always")
def _apply4(X, s0, pptr, pgene, pw, sptr, sgene, skip_missing_genes, gval, miss, n_probes, out):  # pragma: no cover
    """Samples ``s0 .. s0+3`` of :func:`_apply_kernel`, their gene values side by side in ``gval``.

    A gene is present in a sample when fewer than all its probes are missing there: ``miss`` counts the missing
    ones, updated only for a probe missing in one of the four samples (rare), so the common probe costs the
    four multiply-adds alone (a present flag or-ed per gene and sample cost ~12% of the kernel)."""
    gval[:, :] = 0.0
    miss[:, :] = 0
    r0, r1, r2, r3 = X[s0], X[s0 + 1], X[s0 + 2], X[s0 + 3]
    for p in range(pptr.shape[0] - 1):
        v0, v1, v2, v3 = r0[p], r1[p], r2[p], r3[p]
        o0, o1, o2, o3 = v0 == v0, v1 == v1, v2 == v2, v3 == v3
        v0 = v0 if o0 else 0.0
        v1 = v1 if o1 else 0.0
        v2 = v2 if o2 else 0.0
        v3 = v3 if o3 else 0.0
        for k in range(pptr[p], pptr[p + 1]):
            g = pgene[k]
            w = pw[k]
            gval[g, 0] += w * v0
            gval[g, 1] += w * v1
            gval[g, 2] += w * v2
            gval[g, 3] += w * v3
        if not (o0 and o1 and o2 and o3):
            for k in range(pptr[p], pptr[p + 1]):
                g = pgene[k]
                miss[g, 0] += np.int32(not o0)
                miss[g, 1] += np.int32(not o1)
                miss[g, 2] += np.int32(not o2)
                miss[g, 3] += np.int32(not o3)
    for j in range(sptr.shape[0] - 1):
        n0 = n1 = n2 = n3 = 0.0
        d0 = d1 = d2 = d3 = 0
        for k in range(sptr[j], sptr[j + 1]):
            g = sgene[k]
            # without skip_missing_genes every gene takes part (no count reaches the bound)
            lim = n_probes[g] if skip_missing_genes else np.int32(2147483647)
            if miss[g, 0] < lim:
                n0 += gval[g, 0]
                d0 += 1
            if miss[g, 1] < lim:
                n1 += gval[g, 1]
                d1 += 1
            if miss[g, 2] < lim:
                n2 += gval[g, 2]
                d2 += 1
            if miss[g, 3] < lim:
                n3 += gval[g, 3]
                d3 += 1
        out[s0, j] = n0 / d0 if d0 > 0 else np.nan
        out[s0 + 1, j] = n1 / d1 if d1 > 0 else np.nan
        out[s0 + 2, j] = n2 / d2 if d2 > 0 else np.nan
        out[s0 + 3, j] = n3 / d3 if d3 > 0 else np.nan


def _structure(op: GeneOperator) -> tuple:
    """The operator as two CSR structures (probes x genes with weights, symbols x genes), cached on it."""
    cache = op.__dict__.setdefault("_cache", {})
    if "csr" not in cache:
        P = sp.csr_matrix(op.P)
        P.sort_indices()
        NT = sp.csr_matrix(op.N.T)
        NT.sort_indices()
        cache["csr"] = (int(P.shape[1]), P.indptr.astype(np.int64), P.indices.astype(np.int64),
                        P.data.astype(np.float64), NT.indptr.astype(np.int64), NT.indices.astype(np.int64))
    return cache["csr"]


def apply_operator(op: GeneOperator, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """samples x probes -> samples x symbols (float64) with the operator's NaN rule.

    One compiled pass per sample row over the gene and symbol structure: no dense probes x samples copy, no
    NaN mask, and the float32 block from the store is read as it is.  ``out`` (C-contiguous float64, samples x
    symbols) receives the result when given, e.g. rows of a larger matrix.
    """
    X = np.asarray(block)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = np.ascontiguousarray(X)
    shape = (X.shape[0], len(op.symbols))
    if out is None:
        out = np.empty(shape, dtype=np.float64)
    elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
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
