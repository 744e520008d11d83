"""The README's Python API example runs as a saved script (worker processes need its __main__ guard) and its
calls share one cluster (the default client) instead of starting one per call."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def readme_api_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_api_example_runs_as_a_script(tmp_path):
    code = readme_api_example()
    assert 'if __name__ == "__main__":' in code
    script = tmp_path / "example.py"
    script.write_text(code)
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "out" / "report" / "index.html").exists()
    assert "report:" in p.stdout
    # one cluster for every stage: connect() printed its banner once, no call started its own
    assert p.stdout.count("LocalCluster:") == 1, p.stdout
