"""Progress for long stages: a tqdm bar over Dask futures as they finish."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from distributed import Future, as_completed
from tqdm import tqdm

from genotex_dask.cluster import PauseWatch

# Longest sleep between checks of the cluster while nothing finishes.  A finished future wakes the loop at once;
# the former 20 ms polling cost ~1% of a core in the client, which on a 2-core machine competes with the workers.
WAKE_S = 0.25


def as_completed_with_progress(
    futures: Iterable[Future], desc: str, enabled: bool = True
) -> Iterator[Future]:
    """Yield futures as they complete while a bar on stderr counts them.

    While waiting, a :class:`~genotex_dask.cluster.PauseWatch` turns a cluster whose workers all stay paused
    (memory) into ``ClusterPausedError`` instead of waiting forever.
    """
    futures = list(futures)
    bar = tqdm(total=len(futures), desc=desc, unit="task", file=sys.stderr, disable=not enabled,
               dynamic_ncols=True, leave=True)
    watch = PauseWatch(futures[0].client) if futures else None
    try:
        ac = as_completed(futures)
        while not ac.is_empty():
            batch = ac.next_batch(block=False)
            if not batch:  # nothing finished yet: make sure the cluster can still run anything, then sleep
                watch.check()  # until a future finishes (as_completed notifies its condition after queueing it)
                with ac.thread_condition:
                    if not ac.has_ready():
                        ac.thread_condition.wait(timeout=WAKE_S)
                continue
            for fut in batch:
                bar.update(1)
                yield fut
    finally:
        bar.close()
