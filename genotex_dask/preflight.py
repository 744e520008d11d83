"""Checks of what a stage is given, run in the client process BEFORE a cluster starts.

Every check raises :class:`genotex_dask.errors.UserError` with one line naming the path and the cause, so a
typo costs a second instead of a cluster start-up and a traceback.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any
from urllib.parse import urlparse

from genotex_dask import layout
from genotex_dask.errors import ClusterUnreachable, UserError
from genotex_dask.io import fs

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def _exists(url: str) -> bool:
    try:
        return fs.exists(url)
    except (OSError, ValueError) as exc:  # unknown protocol, no credentials, bucket refused
        raise UserError(f"cannot reach ({type(exc).__name__}: {exc})", url) from None


def require_path(url: str, what: str) -> None:
    if not url:
        raise UserError(f"{what} is required")
    if not _exists(url):
        raise UserError(f"{what} not found", url)


def require_input_tree(root: str) -> None:
    """ROOT exists and ROOT/input holds at least one cohort directory (GEO/<Trait>/<GSE> or TCGA/<dir>)."""
    require_path(root, "ROOT")
    inp = layout.join(root, "input")
    if not _exists(inp):
        raise UserError("no input/ directory (expected input/GEO/<Trait>/<GSE>/ and/or input/TCGA/<dir>/)", root)
    geo, tcga = layout.input_geo_dir(root), layout.input_tcga_dir(root)
    n = 0
    if _exists(geo):
        n += sum(len(fs.listdir(layout.join(geo, t))) for t in fs.listdir(geo) if fs.isdir(layout.join(geo, t)))
    if _exists(tcga):
        n += sum(1 for d in fs.listdir(tcga) if fs.isdir(layout.join(tcga, d)))
    if n == 0:
        raise UserError("no cohorts under input/ (expected input/GEO/<Trait>/<GSE>/ and/or input/TCGA/<dir>/)",
                        inp)




def require_specs(specs: Any) -> None:
    """The spec files exist and parse: a spec typo is reported as ``file:line: cause`` before any work."""
    if isinstance(specs, dict):
        return
    require_path(str(specs), "spec directory/file")
    from genotex_dask.pipelines.preprocess import load_specs

    load_specs(specs)  # raises SpecError (file:line: cause)


def scheduler_address(scheduler: str | None) -> str | None:
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def require_scheduler(scheduler: str | None, timeout: float = 5.0) -> None:
    """A given scheduler address (or scheduler file) answers on TCP; nothing to check without one."""
    address = scheduler_address(scheduler)
    if not address:
        return
    if "://" not in address and (address.endswith(".json") or os.path.isfile(address)):
        if not os.path.isfile(address):
            raise ClusterUnreachable("scheduler file not found", address)
        try:
            with open(address) as f:
                address = json.load(f)["address"]
        except (OSError, ValueError, KeyError) as exc:
            raise ClusterUnreachable(f"unreadable scheduler file ({exc})", scheduler) from None
    if "://" not in address:
        address = "tcp://" + address
    u = urlparse(address)
    if u.scheme not in ("tcp", "tls") or not u.hostname:
        return  # inproc://, ucx://: left to distributed
    port = u.port or 8786
    try:
        with socket.create_connection((u.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterUnreachable(f"Dask scheduler not reachable ({exc.strerror or exc}); is it running? "
                                 "Leave out --scheduler to start a local cluster", address) from None
