"""Regexes from specs run on a linear-time engine (issue 14): ``(a+)+$`` cannot stall a run, and patterns the
engine refuses are a named spec error for that cohort only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genotex_dask import safe_regex
from genotex_dask.pipelines.preprocess import _feature
from genotex_dask.preprocess.clinical import apply_rules, compile_rules, parse_number
from genotex_dask.preprocess.specs import FeatureSpec, SpecError

REPO = Path(__file__).resolve().parents[1]


def test_catastrophic_pattern_on_a_long_cell_finishes_fast():
    """In a fresh process with a deadline: Python's ``re`` would need ~2**40 steps for this cell."""
    code = ("import json, sys, time; sys.path.insert(0, sys.argv[1])\n"
            "from genotex_dask.preprocess.clinical import apply_rules, compile_rules, parse_number\n"
            "t = time.perf_counter()\n"
            "cells = ['a' * 40 + 'b', 'x: ' + 'a' * 100000 + '!', 'aaa']\n"
            "r = apply_rules(cells, compile_rules([('(a+)+$', 1.0)]), strip_key=False)\n"
            "n = parse_number(['1' * 50000 + 'y', 'age: 42'], r'(\\d+)+$')\n"
            "print(json.dumps([[None if v != v else v for v in r], [None if v != v else v for v in n], time.perf_counter() - t]))\n"
            )
    res = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr[-1500:]
    ruled, number, secs = json.loads(res.stdout.strip().splitlines()[-1])
    assert ruled == [None, None, 1.0]  # the answers re.search gives: only 'aaa' ends in a's
    assert number == [None, 42.0]
    assert secs < 5


def test_same_answers_as_re_on_ordinary_rules():
    rules = [(r"normal tissue adjacent", 0.0), (r"renal clear cell carcinoma", 1.0), (r"^\s*(f|female)\s*$", 0.0),
             (r"\bmale\b", 1.0), (r"stage\s+(ii|iii)", 2.0)]
    cells = ["Normal tissue ADJACENT to RCC", "Renal Clear Cell Carcinoma U133A", " F ", "female", "male",
             "a male donor", "Stage  III", "none", None, "x: female"]
    import re

    want = [next((v for p, v in rules if re.search(p, c.split(":", 1)[1].strip() if ":" in c else c.strip(),
                                                   re.IGNORECASE)), np.nan) if c else np.nan for c in cells]
    got = apply_rules(cells, compile_rules(rules))
    np.testing.assert_array_equal(got, np.array(want, dtype=float))
    cells2 = ["age: 61.5 y", "x: n/a", "days: 12"]
    want2 = [float(m.group(0)) / 2 if (m := re.search(r"\d+(?:\.\d+)?", c.split(":", 1)[1])) else np.nan
             for c in cells2]
    np.testing.assert_array_equal(parse_number(cells2, scale=0.5), np.array(want2))


@pytest.mark.parametrize("bad", [r"(a)\1", r"a(?=b)", r"(?<!x)y", "a" * 20_000, 5])
def test_refused_patterns_are_named(bad):
    with pytest.raises(safe_regex.RegexError, match="regular expression"):
        safe_regex.compile(bad, where="T.yaml:7")


def test_refused_pattern_in_a_spec_is_a_spec_error_with_file_and_line():
    obs = pd.DataFrame({"title": ["aa", "bb"], "source_name_ch1": ["x", "y"]})
    spec = FeatureSpec(source="title", rules=[(r"(a)\1", 1.0)], line=12)
    with pytest.raises(SpecError, match=r"T\.yaml.*12.*not supported by the linear-time engine"):
        _feature(spec, obs, None, "T.yaml")
