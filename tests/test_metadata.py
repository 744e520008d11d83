"""metadata/task_info.json and gene_synonym.json are checked by name before any stage (issue 14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genotex_dask import api
from genotex_dask.metadata import MetadataError, check_gene_synonyms, check_metadata, check_task_info

GSE781_ROOT = Path(__file__).parent / "data" / "genotex_gse781"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    shutil.copytree(GSE781_ROOT, r)
    return r


def test_real_metadata_passes(root):
    assert check_metadata(str(root)) == {"traits": 1, "synonyms": len(json.loads(
        (root / "metadata/gene_synonym.json").read_text()))}


@pytest.mark.parametrize("text,line,cause", [
    ('{\n  "Asthma": {"related_genes": ["IL13"],\n  "conditions": []\n', 4, "malformed JSON"),
    ('{"Asthma": {"related_genes": ["IL13"]},,}', 1, "malformed JSON"),
    ('["Asthma", "Lupus"]', 1, "got a list"),
    ('{}', 1, "lists no traits"),
    ('{\n"Asthma": {"related_genes": []},\n"Lupus": ["IL6"]\n}', 3, "trait 'Lupus': expected an object"),
    ('{\n"Asthma":\n {"related_genes": "IL13"}}', 2, "'related_genes' must be a list of strings"),
    ('{"Asthma": {"conditions": [1, 2]}}', 1, "'conditions' must be a list of strings"),
])
def test_task_info_errors_name_file_line_and_cause(root, text, line, cause):
    p = root / "metadata/task_info.json"
    p.write_text(text)
    with pytest.raises(MetadataError) as ei:
        check_task_info(str(p))
    assert ei.value.path == str(p) and ei.value.line == line and cause in ei.value.cause
    assert str(ei.value).startswith(f"{p}: line {line}: ") and "\n" not in str(ei.value)


@pytest.mark.parametrize("text,line,cause", [
    ('{"A1B": "SNTB1",\n "A1BG": ["ABG", "GAB"]}', 2, "alias 'A1BG' maps to a list"),
    ('[["A1B", "SNTB1"]]', 1, "got a list"),
    ("{}", 1, "no mappable genes"),
    ('{"A1B": "SNTB1"', 1, "malformed JSON"),
    (b"\xff\xfe{", None, "not UTF-8"),
])
def test_gene_synonym_errors_name_file_line_and_cause(root, text, line, cause):
    p = root / "metadata/gene_synonym.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(MetadataError) as ei:
        check_gene_synonyms(str(p))
    assert ei.value.path == str(p) and ei.value.line == line and cause in ei.value.cause


def test_stages_refuse_bad_metadata_before_starting(root, tmp_path):
    """api.run / preprocess / analyze raise the named error before a cluster, a store or OUT exists."""
    (root / "metadata/gene_synonym.json").write_text('{"A1BG": ["ABG"]}')
    out = tmp_path / "out"
    for call in (lambda: api.run(str(root), str(out)),
                 lambda: api.preprocess(str(root), str(root), str(out))):
        with pytest.raises(MetadataError, match="gene_synonym.json: line 1: alias 'A1BG' maps to a list"):
            call()
    (root / "metadata/task_info.json").write_text("{\n  oops\n}")
    with pytest.raises(MetadataError, match=r"task_info.json: line 2: malformed JSON"):
        api.analyze(str(root), str(out))
    (root / "metadata/task_info.json").unlink()
    with pytest.raises(MetadataError, match="task_info.json: not found"):
        api.run(str(root), str(out))
    assert not out.exists()
