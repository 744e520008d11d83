"""Settings under the ``genotex_dask`` namespace of ``dask.config``.

Why dask.config: a site already configures Dask in YAML files and ``DASK_*`` variables; our settings join
them there (``DASK_GENOTEX_DASK__CLUSTER__THREADS=2``, ``dask.config.set({"genotex_dask.preprocess.
block-samples": 256})``) instead of adding a second configuration system.  Defaults ship as package data
(``genotex_dask/genotex_dask.yaml``) and are registered on import with ``dask.config.update_defaults``, so
values a user set before importing us win.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

NAMESPACE = "genotex_dask"
_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "genotex_dask.yaml")

with open(_DEFAULTS_FILE, encoding="utf-8") as _f:
    DEFAULTS: dict = yaml.safe_load(_f)

dask.config.update_defaults(DEFAULTS)


def get(key: str, default: Any = None) -> Any:
    """``genotex_dask.<key>`` from dask.config (e.g. ``get("preprocess.block-samples")``)."""
    return dask.config.get(f"{NAMESPACE}.{key}", default=default)


def _checked(key: str, convert: Any, valid: Any, expected: str) -> Any:
    """A setting converted and checked; a wrong value is one line naming the key and what was expected."""
    v = get(key)
    try:
        x = convert(v)
    except (TypeError, ValueError):
        x = None
    if x is None or not valid(x):
        raise ValueError(f"dask config {NAMESPACE}.{key}: expected {expected}, got {v!r}") from None
    return x


def positive_int(key: str) -> int:
    """An integer setting that must be >= 1."""
    return _checked(key, int, lambda n: n >= 1, "a positive integer")


def fraction(key: str) -> float:
    """A setting in (0, 1]."""
    return _checked(key, float, lambda x: 0 < x <= 1, "a number in (0, 1]")


def scheduler_address() -> str | None:
    """Dask's own ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS`` or YAML), if any."""
    return dask.config.get("scheduler-address", default=None) or None
