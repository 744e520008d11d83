"""Trait/condition problems and GenoTEX's cohort-selection rule.

The reference enumerates problems from ``metadata/task_info.json`` (traits sorted; for each, the
unconditional problem then one problem per listed condition) and picks cohorts with pandas: usable
cohorts ranked by ``sample_size`` with ``DataFrame.sort_values(ascending=False)`` (default quicksort).
Ties are resolved by that sort, so the ranking here goes through the very same pandas call on a frame
built the same way; a different tie-break would pick a different cohort for equally sized cohorts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import pandas as pd

ONE_STEP_CONDITIONS = ("Age", "Gender")
UNCONDITIONAL = "unconditional"
CONDITIONAL_ONE_STEP = "conditional_one_step"
TWO_STEP = "two_step"


@dataclass(frozen=True)
class Problem:
    """One gene-identification question: genes related to ``trait`` given ``condition`` (or none)."""

    trait: str
    condition: str | None

    @property
    def category(self) -> str:
        if self.condition is None:
            return UNCONDITIONAL
        if self.condition in ONE_STEP_CONDITIONS:
            return CONDITIONAL_ONE_STEP
        return TWO_STEP

    @property
    def key(self) -> str:
        """Stable identifier used in summaries and resume records (matches the output file name)."""
        return f"{self.trait}/significant_genes_condition_{self.condition}"


def list_problems(task_info: dict) -> list[Problem]:
    """All problems in the reference's order: sorted traits, (trait, None) then its conditions."""
    out: list[Problem] = []
    for trait in sorted(task_info):
        out.append(Problem(trait, None))
        for cond in task_info[trait].get("conditions", []) or []:
            out.append(Problem(trait, cond))
    return out


def related_genes(task_info: dict, entity: str) -> list[str]:
    """Known related genes of a trait/condition in task_info order ([] when the entity is unknown)."""
    if entity not in task_info:
        return []
    return list(task_info[entity].get("related_genes", []) or [])


def _info_frame(cohort_info: dict) -> pd.DataFrame:
    return pd.DataFrame.from_dict(cohort_info, orient="index").reset_index().rename(
        columns={"index": "cohort_id"})


def rank_cohorts_frame(cohort_info: dict, condition: str | None = None) -> pd.DataFrame:
    """Usable cohorts (with has_age/has_gender for those conditions) ranked as the reference ranks them."""
    df = _info_frame(cohort_info)
    if df.empty:
        return df
    if "is_usable" not in df.columns:
        return df.iloc[0:0]
    mask = df["is_usable"] == True  # noqa: E712  (NaN/absent flags count as not usable, as in pandas there)
    if condition:
        col = "has_" + condition.lower()
        if col not in df.columns:
            return df.iloc[0:0]
        mask = mask & (df[col] == True)  # noqa: E712
    return df[mask].sort_values(by="sample_size", ascending=False)


def rank_cohorts(cohort_info: dict, condition: str | None = None) -> list[str]:
    """Cohort IDs, best first (see :func:`rank_cohorts_frame`)."""
    df = rank_cohorts_frame(cohort_info, condition)
    return [] if df.empty else df["cohort_id"].tolist()


def gene_regressors(trait: str, condition: str, trait_columns: Collection[str],
                    condition_columns: Collection[str], condition_related: Sequence[str]) -> list[str]:
    """Condition-related genes present in both cohorts, in task_info order (the two-step regressors).

    A gene counts when both cohorts have it as a gene column (not Age, Gender or either side's trait column);
    it is checked gene by gene, so callers planning many problems can pass each file's column set once made
    instead of having ~20,000 columns turned into sets and intersected per examined pair."""
    tcols = trait_columns if isinstance(trait_columns, (set, frozenset)) else set(trait_columns)
    ccols = condition_columns if isinstance(condition_columns, (set, frozenset)) else set(condition_columns)
    drop = {"Age", "Gender", trait, condition}
    return [g for g in condition_related if g in tcols and g in ccols and g not in drop]


@dataclass(frozen=True)
class Selection:
    """Cohorts chosen for a problem; ``reason`` says why nothing was chosen when ``trait_cohort`` is None."""

    trait_cohort: str | None
    condition_cohort: str | None = None
    regressors: tuple[str, ...] = ()
    reason: str = ""


def select_one_step(cohort_info: dict, condition: str | None = None) -> Selection:
    """Largest usable cohort of the trait (with the covariate when the condition is Age/Gender)."""
    ranked = rank_cohorts(cohort_info, condition)
    if not ranked:
        what = f" with has_{condition.lower()}" if condition else ""
        return Selection(None, reason=f"no usable cohort{what}")
    return Selection(ranked[0])


def select_two_step(trait: str, condition: str, trait_info: dict, condition_info: dict,
                    condition_related: Sequence[str],
                    columns_of: Callable[[str, str], Collection[str]], *,
                    ranked: Callable[[str, dict], pd.DataFrame] | None = None) -> Selection:
    """First (trait cohort, condition cohort) pair, by descending product of sample sizes, sharing regressors.

    ``columns_of(trait_or_condition, cohort_id)`` returns the columns of a linked cohort file; it is only
    called for pairs actually examined, in the reference's order.  ``ranked(name, cohort_info)``, when given,
    returns :func:`rank_cohorts_frame` of that info (a planner memoizes it: a trait is ranked once, not once
    per problem naming it).
    """
    rank = ranked or (lambda _name, info: rank_cohorts_frame(info))
    t_df = rank(trait, trait_info)
    c_df = rank(condition, condition_info)
    if t_df.empty or c_df.empty:
        side = "trait" if t_df.empty else "condition"
        return Selection(None, reason=f"no usable cohort for the {side}")
    merged = pd.merge(t_df.assign(key=1), c_df.assign(key=1), on="key").drop(columns="key")
    merged["sample_product"] = merged["sample_size_x"] * merged["sample_size_y"]
    merged = merged.sort_values(by="sample_product", ascending=False)
    for t_id, c_id in zip(merged["cohort_id_x"], merged["cohort_id_y"]):
        regs = gene_regressors(trait, condition, columns_of(trait, t_id), columns_of(condition, c_id),
                               condition_related)
        if regs:
            return Selection(t_id, c_id, tuple(regs))
    return Selection(None, reason="no cohort pair shares condition-related genes")
