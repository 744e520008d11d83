"""Regeneration check of the shipped GenoTEX spec set: a fresh import of a GenoTEX checkout equals
``genotex_dask/specs/genotex`` (classes per notebook and every spec file).

It needs a GenoTEX checkout at the pinned commit (not in CI: the notebooks are not part of this repository), so
it is a maintainer's check, run after regenerating the set or changing the importer:

    python -m benchmarks.check_shipped_specs /path/to/GenoTEX      # exit 0: identical; 1: differences listed
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml

from genotex_dask.specs_import.write import import_tree

SHIPPED = Path(__file__).parent.parent / "genotex_dask" / "specs" / "genotex"
ABSENT = "unreadable notebook: larger than 4 MiB (absent"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    summary = json.loads((SHIPPED / "import_summary.json").read_text())
    missing = {f"code/{k}.ipynb": v["reasons"][0].split(": ", 1)[1] for k, v in summary["cohorts"].items()
               if v["reasons"] and v["reasons"][0].startswith(ABSENT)}
    with tempfile.TemporaryDirectory() as tmp:
        fresh = import_tree(argv[1], tmp, commit=summary["commit"], missing=missing)
        diffs = [] if fresh["classes"] == summary["classes"] else [f"classes: {fresh['classes']} != "
                                                                  f"{summary['classes']}"]
        for f in sorted(SHIPPED.glob("*.yaml")):
            if yaml.safe_load((Path(tmp) / f.name).read_text()) != yaml.safe_load(f.read_text()):
                diffs.append(f"{f.name} differs from a fresh import")
    for d in diffs:
        print(d)
    print(f"{len(list(SHIPPED.glob('*.yaml')))} spec files, {sum(summary['classes'].values())} notebooks: "
          + ("identical to a fresh import" if not diffs else f"{len(diffs)} differences"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
