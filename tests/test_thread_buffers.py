"""Per-thread reuse of large buffers: a buffer goes back only to the thread that gave it, for the same role,
when it is large enough and within the size caps.  Each test runs in a fresh thread (an empty pool, whatever
other tests kept in theirs)."""

import threading

import numpy as np

from genotex_dask.io import thread_buffers as tb


def _in_fresh_thread(fn) -> None:
    errors = []

    def run():
        # thread idents are reused: a thread of an earlier test (a Dask worker's, say) may have kept buffers under
        # this one, which would count against the caps below (a CI run once failed so)
        with tb._lock:
            tb._kept.pop(threading.get_ident(), None)
        try:
            fn()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    th.join()
    if errors:
        raise errors[0]


def test_reuse_is_per_thread_role_and_size():
    def body():
        a = tb.take("t-role", 1000, np.float64)
        base = a.base
        tb.give("t-role", a.reshape(10, 100)[2:5])  # any view hands back the whole buffer
        b = tb.take("t-role", 600, np.float64)
        assert b.base is base and b.shape == (600,)
        tb.give("t-role", b)
        assert tb.take("other-role", 10, np.float64).base is not base
        assert tb.take("t-role", 2000, np.float64).base is not base      # too small for the request: a new one
        tb.give("t-role", base)
        assert tb.take("t-role", 10, np.float32).base is not base        # another dtype: a new one
        tb.give("t-role", base)
        seen = []
        th = threading.Thread(target=lambda: seen.append(tb.take("t-role", 10, np.float64).base))
        th.start()
        th.join()
        assert seen[0] is not base                                       # other threads never get it
        assert tb.take("t-role", 10, np.float64).base is base

    _in_fresh_thread(body)


def test_buffers_over_the_caps_are_not_kept(monkeypatch):
    monkeypatch.setattr(tb, "MAX_BYTES", 10_000)
    monkeypatch.setattr(tb, "TOTAL_BYTES", 12_000)

    def body():
        big = tb.take("t-big", 2000, np.float64)                         # 16 KB: over MAX_BYTES
        tb.give("t-big", big)
        assert tb.take("t-big", 2000, np.float64).base is not big.base
        a, b = tb.take("t-a", 1000, np.float64), tb.take("t-b", 1000, np.float64)  # 8 KB each
        tb.give("t-a", a)
        tb.give("t-b", b)                                                # 16 KB in all: not kept
        assert tb.take("t-b", 1000, np.float64).base is not b.base
        assert tb.take("t-a", 1000, np.float64).base is a.base

    _in_fresh_thread(body)


def test_release_all_drops_every_threads_buffers():
    def body():
        a = tb.take("t-rel", 1000, np.float64)
        tb.give("t-rel", a)
        assert tb.release_all() >= a.nbytes
        assert tb.take("t-rel", 1000, np.float64).base is not a.base

    _in_fresh_thread(body)
