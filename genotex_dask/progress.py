"""Progress for long stages: a tqdm bar over Dask futures as they finish."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from distributed import Future, as_completed
from tqdm import tqdm


def as_completed_with_progress(
    futures: Iterable[Future], desc: str, enabled: bool = True
) -> Iterator[Future]:
    """Yield futures as they complete while a bar on stderr counts them."""
    futures = list(futures)
    bar = tqdm(total=len(futures), desc=desc, unit="task", file=sys.stderr, disable=not enabled,
               dynamic_ncols=True, leave=True)
    try:
        for fut in as_completed(futures):
            bar.update(1)
            yield fut
    finally:
        bar.close()
