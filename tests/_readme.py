"""The README's Python examples, extracted by heading so that tests run them as written (paths substituted)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    """The first ```python block after the line ``heading`` (e.g. ``"### Open it in scanpy"``)."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    m = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert m, f"no python block after {heading!r}"
    return m.group(1)


def run_block(heading: str, paths: dict[str, str], namespace: dict | None = None) -> dict:
    """Execute the block with each quoted path prefix ``"name`` replaced by ``"<path>``; returns its namespace."""
    code = python_block(heading)
    for name, path in paths.items():
        code = code.replace(f'"{name}/', f'"{path}/').replace(f'"{name}"', f'"{path}"')
    ns = dict(namespace or {})
    exec(compile(code, f"README.md ({heading})", "exec"), ns)  # noqa: S102 - our own README, in tests only
    return ns
