"""Run every benchmark in turn, each in its own process (their peak-memory figures stay separate).

`make bench` calls this; results land in benchmarks/results/<name>.{json,md}.  Expect 15-25 minutes on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = ("bench_synth", "bench_ingest", "bench_preprocess", "bench_analyze", "bench_lars", "bench_evaluate",
              "bench_scaling", "gse781_genes")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
