"""What a whole run produced, in a few numbers a person reads at the end of `genotex-dask run`.

Built from the files on disk (cohort_info.json of every trait, the stage summaries), so a resumed run that
skipped finished cohorts reports the same totals as the run that did the work.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from genotex_dask import layout
from genotex_dask.io import fs


def reason(note: str | None) -> str:
    """A cohort's note reduced to its kind (paths, names and numbers left out), for counting."""
    text = (note or "").strip() or "unusable (no note)"
    text = re.sub(r"^\S+\.ya?ml:[\d?]+:\s*", "", text)          # spec location
    text = re.split(r"[:(]", text, maxsplit=1)[0].strip()
    text = re.sub(r"'[^']*'", "…", text)                          # trait/cohort names
    return re.sub(r"\d+", "N", text)[:80] or "unusable"


def cohort_overview(out: str) -> dict[str, Any]:
    """Usable / unusable cohorts over every trait of OUT/preprocess, with the main reasons."""
    usable, unusable = [], []
    reasons: Counter[str] = Counter()
    pre = layout.preprocess_dir(out)
    for trait in fs.listdir(pre):
        url = layout.cohort_info_path(out, trait)
        if not fs.exists(url):
            continue
        for cohort, rec in sorted(fs.read_json(url).items()):
            if (rec or {}).get("is_usable"):
                usable.append(f"{trait}/{cohort}")
            else:
                unusable.append(f"{trait}/{cohort}")
                reasons[reason((rec or {}).get("note"))] += 1
    return {"usable": len(usable), "unusable": len(unusable), "reasons": dict(reasons.most_common()),
            "usable_cohorts": usable, "unusable_cohorts": unusable}


def run_overview(out: str, summary: dict[str, Any], report: str | None = None) -> dict[str, Any]:
    """Cohorts usable/unusable (main reasons), problems solved/failed, scores if any, specs to review, report."""
    an = summary.get("analyze") or {}
    ev = summary.get("evaluate") or {}
    sp = summary.get("specs") or {}
    return {
        "cohorts": cohort_overview(out),
        "problems": {"solved": int(an.get("written", 0)) + int(an.get("skipped_up_to_date", 0)),
                     "failed": int(an.get("failed", 0)) if not isinstance(an.get("failed"), list)
                     else len(an["failed"]),
                     "no_usable_cohort": int(an.get("no_cohort", 0))},
        "scores": ev.get("headline") or {},
        "specs_needing_review": list(sp.get("needs_review") or []),
        "specs_kept_as_edited": list(sp.get("kept_edited") or []),
        "specs": sp.get("out"),
        "report": ev.get("report_path") or report,
    }
