"""split_tab_unquote (series-matrix header fields) against the per-field rule it implements: split on tabs,
drop one pair of surrounding double quotes from each field; its one-split shortcut for fully quoted lines must
give the same fields on any mix of quotes and tabs."""

from __future__ import annotations

import random

from genotex_dask.io._stream import split_tab_unquote


def _oracle(line: str) -> list[str]:
    return [f[1:-1] if len(f) >= 2 and f[0] == '"' and f[-1] == '"' else f for f in line.split("\t")]


def test_split_tab_unquote_equals_the_per_field_rule():
    rng = random.Random(1)
    pieces = ['"', "\t", "a", '""', '"\t"', "b c", "é"]
    for _ in range(20000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for candidate in (line, f'"{line}"'):
            assert split_tab_unquote(candidate) == _oracle(candidate), repr(candidate)
    assert split_tab_unquote('"GSM1"\t"GSM2"\t""') == ["GSM1", "GSM2", ""]
