"""Shared test fixtures: where the trimmed real data lives.  Keep additions here small and additive."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"
REPO_DIR = TESTS_DIR.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR
