"""Gene symbols: extraction from platform annotation text and normalization through a synonym table.

Two extraction flavours exist on purpose:

* ``extract_symbols_genotex`` reproduces GenoTEX's token rule: an uppercase letter followed by 1-9 more
  uppercase letters, digits or dashes (so at most 10 characters), or the ``C<n>orf<n>`` form, each between
  word boundaries; tokens starting with ``NR_``/``XR_``/``LOC<n>``/``LINC<n>`` and the lab words DNA, RNA,
  PCR, EST, CHR are rejected; duplicates are removed keeping first occurrences.  Because the token is capped
  at 10 characters, a long symbol such as ``ANKHD1-EIF4EBP3`` yields the fragment ``ANKHD1-`` (the regex
  backtracks to the last word boundary), which later fails normalization.
* ``extract_symbols`` (the default mode) takes whole symbol-like tokens of any length, so long read-through
  symbols survive intact and no fragment steals a share of the probe's value.

Normalization maps ``upper(symbol)`` through the synonym dictionary (alias -> official symbol); symbols not in
the table are dropped.  No I/O here: the caller loads the dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

LAB_WORDS = frozenset({"DNA", "RNA", "PCR", "EST", "CHR"})

# GenoTEX-compatible token: word boundary, not a transcript/prediction prefix, then either a <=10-char
# uppercase-led token or a C#orf# symbol, then a word boundary.
_GENOTEX_TOKEN = re.compile(r"\b(?!NR_|XR_|LOC\d+|LINC\d+)(?:[A-Z][A-Z0-9-]{1,9}|C\d+orf\d+)\b")

# Default token: the whole run of symbol characters (no length cap), not ending in a dash.
_FULL_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?!LOC\d+|LINC\d+)"
                         r"(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*|C\d+orf\d+)(?![A-Za-z0-9_])(?!-[A-Za-z0-9])")


def _dedup(tokens: list[str], min_len: int) -> list[str]:
    """Tokens of at least ``min_len`` characters that are not lab words, first occurrence kept.  Most
    annotation cells hold one token: that case skips the generator and dict (23,000 cells per GPL570 table)."""
    if len(tokens) == 1:
        t = tokens[0]
        return [t] if len(t) >= min_len and t not in LAB_WORDS else []
    return list(dict.fromkeys(t for t in tokens if len(t) >= min_len and t not in LAB_WORDS))


def extract_symbols_genotex(text: object) -> list[str]:
    """Candidate symbols in ``text`` exactly as GenoTEX's extraction finds them (non-strings give [])."""
    if not isinstance(text, str):
        return []
    return _dedup(_GENOTEX_TOKEN.findall(text), 0)


def extract_symbols(text: object) -> list[str]:
    """Whole symbol-like tokens of ``text`` (no 10-character cap, no trailing-dash fragments)."""
    if not isinstance(text, str):
        return []
    return _dedup(_FULL_TOKEN.findall(text), 2)


def extractor(compat: str | None):
    """The extraction function for a mode: GenoTEX's under ``compat='genotex'``, the whole-token one otherwise."""
    return extract_symbols_genotex if compat == "genotex" else extract_symbols


def normalize_symbols(names: Iterable[object], synonyms: Mapping[str, str]) -> np.ndarray:
    """Official symbol for each name (``upper(name)`` looked up in ``synonyms``), None where unknown.

    Returns an object array aligned with ``names``; rows whose entry is None are dropped by the caller.
    """
    get = synonyms.get
    out = [get(n.upper()) if isinstance(n, str) else None for n in names]
    return np.asarray(out, dtype=object)


def lookup_upper(tokens: Sequence[str], synonyms: Mapping[str, str]) -> list[str | None]:
    """``synonyms.get(t.upper())`` for each token (strings without US), upper-cased in one call over them all."""
    if not len(tokens):
        return []
    joined = _SEP.join(tokens)
    upper = joined.upper().split(_SEP)
    if len(upper) != len(tokens):  # a token holding US (or a case mapping producing one): one at a time
        upper = [t.upper() for t in tokens]
    return list(map(synonyms.get, upper))


def drop_reason(token: str, synonyms: Mapping[str, str]) -> str | None:
    """Why a token does not survive normalization (None when it does); used in mapping summaries."""
    if synonyms.get(token.upper()) is not None:
        return None
    if token.endswith("-"):
        return "truncated token (GenoTEX's 10-character pattern cut a longer symbol)"
    return "not in the synonym table"


def looks_like_symbols(ids: Iterable[object], synonyms: Mapping[str, str], threshold: float = 0.5) -> bool:
    """True when most IDs are already gene symbols (then the probe mapping is skipped).

    Array probe IDs (``1007_s_at``, ``ILMN_1343291``, ``A_23_P100001``, numbers) almost never hit the synonym
    table, while symbol-indexed matrices (TCGA, RNA-seq series) mostly do.
    """
    if not (isinstance(ids, (np.ndarray, list)) and pd.api.types.infer_dtype(ids, skipna=False) == "string"):
        ids = [i for i in ids if isinstance(i, str)]  # (a list or array of str only, the usual case, as it is)
    if not len(ids):
        return False
    sample = ids[:: max(1, len(ids) // 2000)]
    hits = sum(1 for i in sample if synonyms.get(i.upper()) is not None)
    return hits / len(sample) >= threshold


# One regex pass over many annotation texts joined by the ASCII unit separator (US, 0x1f): the token patterns treat
# it like the start or end of a string (it is neither a symbol nor a word character), and the alternative ``\x1f``
# marks where each text ends, so the tokens come out in order with the index of their text.  (Not NUL: numpy
# compares strings without their trailing NULs.)
_SEP = "\x1f"
_BATCH = {True: re.compile(_SEP + "|" + _GENOTEX_TOKEN.pattern), False: re.compile(_SEP + "|" + _FULL_TOKEN.pattern)}


def extract_symbols_batch(texts: Sequence[str], compat: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, owner): what the mode's extractor gives for each of ``texts`` (strings), concatenated in order,
    and the index in ``texts`` of each token's text.

    A platform table holds ~23,000 distinct gene texts; one ``findall`` over them all and array filters replace a
    Python call per text.  A text containing US (never in a real table) sends the batch to the per-text path.
    """
    genotex = compat == "genotex"
    n = len(texts)
    joined = _SEP.join(texts)
    if n == 0 or joined.count(_SEP) != n - 1:
        extract = extractor(compat)
        per = [extract(t) for t in texts]
        toks = np.fromiter((t for ts in per for t in ts), dtype=object, count=sum(map(len, per)))
        return toks, np.repeat(np.arange(n, dtype=np.int64), [len(ts) for ts in per])
    found = np.asarray(_BATCH[genotex].findall(joined), dtype=object)
    mark = found == _SEP
    owner = np.cumsum(mark, dtype=np.int64)[~mark]
    toks = found[~mark]
    if not len(toks):
        return toks, owner
    codes, uniq = pd.factorize(toks)
    min_len = 0 if genotex else 2
    ok_u = np.fromiter(map(len, uniq), dtype=np.int64, count=len(uniq)) >= min_len
    ok_u &= ~np.fromiter(map(LAB_WORDS.__contains__, uniq), dtype=bool, count=len(uniq))
    keep = ok_u[codes]
    # first occurrence of a token within its text (texts rarely hold more than a few tokens)
    keep &= ~pd.Series(owner * np.int64(len(uniq)) + codes).duplicated().to_numpy()
    return toks[keep], owner[keep]
