"""Score a run in GenoTEX's output layout against a reference run and/or a synthetic corpus's planted truth.

``pred`` and ``ref`` are output roots (``ROOT/preprocess/<Trait>/...``, ``ROOT/regress/<Trait>/...``) at any
fsspec URL.  The per-file preprocessing comparisons read whole CSVs (a gene-data file of the benchmark is
tens of MB), so with a Dask client they run as one task per file on the workers, and so do the planted-truth
scores (batches of problems: each reads its result and cohort header and ranks a ~20,000-gene universe, the
stage's largest serial cost when done here while the workers waited for the report's plots); everything else
reads small JSON files and CSV headers and runs in the client process.  Results go to a strict-JSON metrics file written
atomically and, when ``report`` is given, to a self-contained HTML report.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import pandas as pd

from genotex_dask import layout
from genotex_dask.evaluation import metrics as M
from genotex_dask.io import fs

SIG_PREFIX = "significant_genes_condition_"


class EvaluationError(Exception):
    """A file that could not be read or compared; carries the file URL and the cause."""

    def __init__(self, url: str, cause: str):
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


# ---- readers ----------------------------------------------------------------------------------------

def _read_json_or_none(url: str) -> Any:
    if not fs.exists(url):
        return None
    try:
        return fs.read_json(url)
    except Exception as e:  # noqa: BLE001 - a corrupt file is reported, not fatal
        raise EvaluationError(url, f"unreadable JSON ({type(e).__name__}: {e})") from e


def csv_header(url: str) -> list[str] | None:
    """Column names of a linked CSV (its first cell is the sample index) from the first line only."""
    if not fs.exists(url):
        return None
    with fs.open_binary(url) as f:
        first = f.readline().decode("utf-8", errors="replace")
    row = next(csv.reader(io.StringIO(first)), [])
    return row[1:]


def load_frame(url: str, kind: str, trait: str | None = None) -> pd.DataFrame:
    """A preprocessing CSV as samples x features.

    Gene files are stored features x samples (GEO and TCGA alike).  Clinical files are features x samples
    for GEO but samples x features for TCGA (GenoTEX's tcga_select_clinical_features keeps Xena's
    orientation), so a clinical frame is transposed only when its rows, not its columns, carry the trait /
    Age / Gender.  GenoMAS transposes every clinical file, which scores TCGA clinical files on the wrong axis.
    """
    with fs.open_binary(url) as f:
        df = pd.read_csv(f, index_col=0)
    df.index = df.index.map(str)
    df.columns = df.columns.map(str)
    df.index.name = None
    df.columns.name = None
    if kind == "gene":
        return df.T
    if kind == "clinical":
        marks = {"Age", "Gender"} | ({trait} if trait else set())
        in_cols, in_rows = bool(marks & set(df.columns)), bool(marks & set(df.index))
        return df if in_cols and not in_rows else df.T
    return df


def compare_preprocess_file(pred_url: str, ref_url: str, kind: str, trait: str | None = None) -> dict:
    """One reference CSV against its prediction: AJ, SJ, r, CSC; a missing or unreadable prediction scores 0."""
    try:
        ref = load_frame(ref_url, kind, trait)
    except Exception as e:  # noqa: BLE001
        return {**M.PREPROCESS_ZERO, "status": "ref_error", "error": f"{ref_url}: {type(e).__name__}: {e}"}
    if not fs.exists(pred_url):
        return {**M.PREPROCESS_ZERO, "status": "missing"}
    try:
        pred = load_frame(pred_url, kind, trait)
    except Exception as e:  # noqa: BLE001
        return {**M.PREPROCESS_ZERO, "status": "pred_error", "error": f"{pred_url}: {type(e).__name__}: {e}"}
    return {**M.preprocessing_metrics(pred, ref), "status": "ok"}


# ---- task info ----------------------------------------------------------------------------------------

def _find_task_info(explicit: str | None, pred: str, ref: str | None, truth: str | None) -> str | None:
    """task_info.json from the argument, the synthetic corpus next to truth.json, or beside/under the roots."""
    if explicit:
        return explicit
    cands: list[str] = []
    if truth:
        cands.append(layout.task_info_path(truth.rstrip("/").rpartition("/")[0] or "."))
    for root in (ref, pred):
        if root:
            cands.append(layout.task_info_path(root))
            parent = root.rstrip("/").rpartition("/")[0]
            if parent:
                cands.append(layout.task_info_path(parent))
    return next((c for c in cands if fs.exists(c)), None)


def _regress_problems(root: str) -> list[tuple[str, str | None, str]]:
    """(trait, condition, url) for every significant_genes_condition_<C>.json under ROOT/regress."""
    out = []
    rdir = layout.regress_dir(root)
    for trait in fs.listdir(rdir):
        for name in fs.listdir(layout.join(rdir, trait)):
            if name.startswith(SIG_PREFIX) and name.endswith(".json") and fs.TMP_MARK not in name:
                cond = name[len(SIG_PREFIX):-len(".json")]
                out.append((trait, None if cond == "None" else cond, layout.join(rdir, trait, name)))
    return out


class _Side:
    """Cached access to one output root's cohort_info files, linked-file headers and selections."""

    def __init__(self, root: str, task_info: dict | None, errors: list[dict] | None = None):
        self.root = root
        self.task_info = task_info or {}
        self.errors = errors if errors is not None else []
        self.infos: dict[str, dict | None] = {}
        self.columns = lru_cache(maxsize=None)(self._columns)
        self.column_set = lru_cache(maxsize=None)(self._column_set)
        self.select = lru_cache(maxsize=None)(self._select)

    def info(self, trait: str) -> dict | None:
        """The trait's cohort_info.json, read once (``infos`` also takes what a task on a worker read)."""
        if trait not in self.infos:
            self.infos[trait] = self._info(trait)
        return self.infos[trait]

    def _info(self, trait: str) -> dict | None:
        """The trait's cohort_info.json; an unreadable one counts as absent and is reported once."""
        try:
            info = _read_json_or_none(layout.cohort_info_path(self.root, trait))
        except EvaluationError as e:
            self.errors.append({"task": "cohort_info", "item": trait, "file": e.url, "error": e.cause})
            return None
        if info is not None and not isinstance(info, dict):
            self.errors.append({"task": "cohort_info", "item": trait, "file": layout.cohort_info_path(self.root, trait),
                                "error": "not a JSON object"})
            return None
        return info

    def _columns(self, trait: str, cohort: str) -> tuple[str, ...] | None:
        try:
            h = csv_header(layout.linked_data_path(self.root, trait, cohort))
        except Exception:  # noqa: BLE001 - an unreadable file skips the pair, as the reference does
            return None
        return None if h is None else tuple(h)

    def _column_set(self, trait: str, cohort: str) -> frozenset[str] | None:
        """The columns as a set, made once per file (two-step selection examines a file for many problems)."""
        cols = self.columns(trait, cohort)
        return None if cols is None else frozenset(cols)

    def _related(self, name: str) -> list[str]:
        return list((self.task_info.get(name) or {}).get("related_genes") or [])

    def _select(self, trait: str, condition: str | None) -> Any:
        info = self.info(trait)
        if info is None:
            return None
        if M.problem_category(condition) != "two_step":
            return M.select_one_step(info, None if M.is_unconditional(condition) else condition)
        cinfo = self.info(condition)
        if cinfo is None:
            return None
        return M.select_two_step(trait, condition, info, cinfo, self.column_set, self._related(condition))

    def gene_universe(self, trait: str, condition: str | None) -> list[str] | None:
        """Gene columns of the trait cohort this side selects for the problem (None when unknown)."""
        sel = self.select(trait, condition)
        if sel is None:
            return None
        cohort = sel[0] if isinstance(sel, tuple) else sel
        cols = self.columns(trait, cohort)
        if cols is None:
            return None
        drop = {trait, "Age", "Gender"} | ({condition} if condition else set())
        return [c for c in cols if c not in drop]


def _universe(sides: Iterable[_Side], trait: str, condition: str | None, extra: Iterable[Iterable[str]]
              ) -> list[str] | None:
    """Union (in order) of the selected cohorts' genes on each side plus the listed genes; None if no cohort."""
    seen: dict[str, None] = {}
    known = False
    for s in sides:
        u = s.gene_universe(trait, condition)
        if u is not None:
            known = True
            seen.update(dict.fromkeys(u))
    if not known:
        return None
    for genes in extra:
        seen.update(dict.fromkeys(genes))
    return list(seen)


def _genes(result: dict | None) -> list[str]:
    return list(((result or {}).get("significant_genes") or {}).get("Variable") or [])


# ---- tasks ------------------------------------------------------------------------------------------------

def _evaluate_filtering_selection(pred: _Side, ref: _Side, pairs: list[tuple[str, str | None]],
                                  errors: list[dict]) -> tuple[dict, dict]:
    per_trait, per_problem, seen = [], [], set()
    for trait, cond in pairs:
        try:
            ref_info = ref.info(trait)
            if ref_info is None:
                continue
            if trait not in seen:
                seen.add(trait)
                per_trait.append({"trait": trait, **M.filtering_metrics(ref_info, pred.info(trait) or {})})
            rsel, psel = ref.select(trait, cond), pred.select(trait, cond)
            per_problem.append({"trait": trait, "condition": cond, "category": M.problem_category(cond),
                                "ref": list(rsel) if isinstance(rsel, tuple) else rsel,
                                "pred": list(psel) if isinstance(psel, tuple) else psel,
                                "accuracy": M.selection_accuracy(rsel, psel)})
        except EvaluationError as e:
            errors.append({"task": "selection", "item": f"{trait}/{cond}", "file": e.url, "error": e.cause})
    filtering = {"per_trait": per_trait,
                 "average": M.average_records(per_trait, ["precision", "recall", "f1", "accuracy"])}
    selection = {"per_problem": per_problem,
                 "average": M.average_records(per_problem, ["accuracy"]),
                 "categorized": M.aggregate_by_category(per_problem, ["accuracy"])}
    return filtering, selection


def _preprocess_jobs(pred_root: str, ref_root: str) -> list[tuple[str, str, str, str, str]]:
    """(kind, trait, file, pred_url, ref_url) for every reference CSV (GenoMAS walks the reference tree)."""
    jobs = []
    pdir = layout.preprocess_dir(ref_root)
    for trait in fs.listdir(pdir):
        tdir = layout.join(pdir, trait)
        if not fs.isdir(tdir):
            continue
        for kind in M.PREPROCESS_KINDS:
            sub = layout.join(tdir, f"{kind}_data") if kind != "linked" else tdir
            for name in fs.listdir(sub):
                if not name.endswith(".csv") or fs.TMP_MARK in name:
                    continue
                paths = layout.PreprocessPaths(pred_root, trait, name[:-4])
                pred_url = {"gene": paths.gene_data, "clinical": paths.clinical_data, "linked": paths.linked_data}[kind]
                jobs.append((kind, trait, name, pred_url, layout.join(sub, name)))
    return jobs


def _evaluate_preprocessing(pred_root: str, ref_root: str, client: Any, progress: bool,
                            errors: list[dict]) -> dict:
    jobs = _preprocess_jobs(pred_root, ref_root)
    # memory:// lives in this process only: worker processes would see no files there
    in_memory = any(str(u).startswith("memory://") for u in (pred_root, ref_root))
    if client is not None and jobs and not in_memory:
        from genotex_dask.progress import as_completed_with_progress

        futs = [client.submit(compare_preprocess_file, j[3], j[4], j[0], j[1], pure=False) for j in jobs]
        index = {f.key: i for i, f in enumerate(futs)}
        results: list[dict | None] = [None] * len(jobs)
        for fut in as_completed_with_progress(futs, "evaluate preprocessing", enabled=progress):
            i = index[fut.key]
            try:
                results[i] = fut.result()
            except Exception as e:  # noqa: BLE001 - a lost task scores 0 and is reported
                results[i] = {**M.PREPROCESS_ZERO, "status": "task_error", "error": f"{type(e).__name__}: {e}"}
    else:
        results = [compare_preprocess_file(j[3], j[4], j[0], j[1]) for j in jobs]
    out: dict[str, dict] = {}
    for kind in M.PREPROCESS_KINDS:
        recs = []
        for (k, trait, name, _p, ref_url), res in zip(jobs, results):
            if k != kind:
                continue
            rec = {"trait": trait, "file": name, **(res or {})}
            if "error" in rec:
                errors.append({"task": f"preprocessing/{kind}", "item": f"{trait}/{name}", "file": ref_url,
                               "error": rec["error"]})
            recs.append(rec)
        out[kind] = {"per_file": recs,
                     "average": M.average_records(recs, list(M.PREPROCESS_ZERO)) if recs else {}}
    return out


def _evaluate_analysis(pred: _Side, ref: _Side, n_genes: int, errors: list[dict],
                       known: dict[tuple[str, str | None], dict[str, list[str]]]) -> dict:
    per_problem = []
    for trait, cond, ref_url in _regress_problems(ref.root):
        pred_url = layout.significant_genes_path(pred.root, trait, cond)
        try:
            ref_res = _read_json_or_none(ref_url)
            ref_genes = _genes(ref_res)
            try:
                pred_res = _read_json_or_none(pred_url)
            except EvaluationError as e:
                errors.append({"task": "analysis", "item": f"{trait}/{cond}", "file": e.url, "error": e.cause})
                pred_res = None
            universe = _universe((ref, pred), trait, cond, (_genes(pred_res), ref_genes))
            rec = M.problem_metrics(pred_res, ref_genes, universe, n_genes)
            known.setdefault((trait, cond), {})["ref"] = ref_genes
        except EvaluationError as e:
            errors.append({"task": "analysis", "item": f"{trait}/{cond}", "file": e.url, "error": e.cause})
            continue
        per_problem.append({"trait": trait, "condition": cond, "category": M.problem_category(cond),
                            "universe": "approx" if universe is None else len(universe), **rec})
    return {"per_problem": per_problem,
            "categorized": M.aggregate_by_category(per_problem, list(M.ANALYSIS_KEYS))}


def _usable_by_trait(truth: dict) -> dict[Any, list[dict]]:
    """The corpus's expected-usable cohorts per trait, in corpus order (indexed once, not per problem)."""
    out: dict[Any, list[dict]] = {}
    for c in (truth.get("cohorts") or {}).values():
        if c.get("expected_usable"):
            out.setdefault(c.get("trait"), []).append(c)
    return out


def _truth_solvable(usable: dict[Any, list[dict]], trait: str, condition: str | None) -> bool:
    """Whether the corpus holds a cohort the problem can use (expected usable, with Age/Gender if asked);
    ``usable`` is :func:`_usable_by_trait` of the truth.

    Two-step problems only need a usable cohort on each side here; whether they share regressors is left
    to the scoring (a missing answer then counts as a failure).
    """

    def has(trait_name: str, cond: str | None) -> bool:
        for c in usable.get(trait_name, ()):
            if cond is not None:
                key = str(cond).lower()  # 'age' / 'gender'
                flag = c.get(f"has_{key}")
                if flag is None:
                    flag = bool(c.get(f"{key}_key")) or c.get("kind") == "TCGA"
                if not flag:
                    continue
            return True
        return False

    cat = M.problem_category(condition)
    if cat == "two_step":
        return has(trait, None) and has(str(condition), None)
    return has(trait, None if cat == "unconditional_one_step" else condition)


def _truth_problem(pred: _Side, prob: dict, n_genes: int, errors: list[dict]) -> tuple[dict, bool]:
    """One truth problem's planted-gene scores (universe, success, precision, ... as ``problem_metrics``) and
    whether the run answered it."""
    trait, cond = prob["trait"], prob.get("condition")
    planted = list(prob.get("planted_genes") or [])
    pred_url = layout.significant_genes_path(pred.root, trait, cond)
    try:
        pred_res = _read_json_or_none(pred_url)
    except EvaluationError as e:
        errors.append({"task": "planted_truth", "item": f"{trait}/{cond}", "file": e.url, "error": e.cause})
        pred_res = None
    universe = _universe((pred,), trait, cond, (_genes(pred_res), planted))
    rec = M.problem_metrics(pred_res, planted, universe, n_genes)
    return {"universe": "approx" if universe is None else len(universe), **rec}, pred_res is not None


def _truth_batch(pred_root: str, task_info: dict | None, problems: list[dict], n_genes: int) -> dict:
    """A task: the scores of some truth problems, the errors met (in problem order) and the cohort_info files
    read (the client's usability table needs them too)."""
    errors: list[dict] = []
    side = _Side(pred_root, task_info, errors)
    scores = [_truth_problem(side, prob, n_genes, errors) for prob in problems]
    return {"scores": scores, "errors": errors, "infos": side.infos}


def _truth_batches(problems: list[dict], n: int) -> list[list[dict]]:
    """Consecutive problems in about ``n`` batches, a trait's problems kept together (they share its cohort_info
    and linked-file headers)."""
    target = max(1, -(-len(problems) // max(n, 1)))
    out: list[list[dict]] = []
    for prob in problems:
        if not out or (len(out[-1]) >= target and out[-1][-1]["trait"] != prob["trait"]):
            out.append([])
        out[-1].append(prob)
    return out


def _truth_scores(pred: _Side, problems: list[dict], n_genes: int, errors: list[dict],
                  client: Any) -> list[tuple[dict, bool]]:
    """Every truth problem's scores, on the workers in batches when a client is given (each problem reads its
    result and its cohort's header and ranks a ~20,000-gene universe: the evaluate stage's largest client cost,
    before any report task could start), else here; the same records and errors either way."""
    if client is None or not problems or pred.root.startswith("memory://"):
        return [_truth_problem(pred, prob, n_genes, errors) for prob in problems]
    batches = _truth_batches(problems, 4 * max(1, sum(client.nthreads().values())))
    futs = [client.submit(_truth_batch, pred.root, pred.task_info, b, n_genes, pure=False) for b in batches]
    out: list[tuple[dict, bool]] = []
    for fut, batch in zip(futs, batches):
        try:
            res = fut.result()
        except Exception:  # noqa: BLE001 - a lost task: the batch is scored here instead (same records)
            res = _truth_batch(pred.root, pred.task_info, batch, n_genes)
        for err in res["errors"]:  # a cohort_info error is reported once per file, as when scored here
            if err["task"] != "cohort_info" or err not in errors:
                errors.append(err)
        for trait, info in res["infos"].items():
            pred.infos.setdefault(trait, info)
        out += [(dict(rec), bool(found)) for rec, found in res["scores"]]
    return out


def _evaluate_truth(pred: _Side, truth: dict, n_genes: int, errors: list[dict],
                    known: dict[tuple[str, str | None], dict[str, list[str]]], client: Any = None) -> dict:
    """Planted-gene recovery per problem, and cohort usability against the corpus's expectation."""
    problems = list(truth.get("problems") or [])
    usable = _usable_by_trait(truth)
    per_problem = []
    for prob, (rec, found) in zip(problems, _truth_scores(pred, problems, n_genes, errors, client)):
        trait, cond = prob["trait"], prob.get("condition")
        known.setdefault((trait, cond), {})["truth"] = list(prob.get("planted_genes") or [])
        solvable = _truth_solvable(usable, trait, cond)
        per_problem.append({"trait": trait, "condition": cond, "category": M.problem_category(cond),
                            "expected_solvable": solvable, "scored": bool(solvable or found), **rec})
    scored = [r for r in per_problem if r["scored"]]
    keys = ["success", "precision", "recall", "f1", "auroc", "gsea_es"]
    usability = []
    by_trait: dict[str, dict] = {}
    for key, c in (truth.get("cohorts") or {}).items():
        trait = c.get("trait") or key.split("/")[0]
        by_trait.setdefault(trait, {})[c.get("cohort") or key.split("/", 1)[-1]] = c
    for trait in sorted(by_trait):
        info = pred.info(trait) or {}
        ref_like = {k: {"is_available": bool(v.get("expected_usable"))} for k, v in by_trait[trait].items()}
        pred_like = {k: {"is_available": bool((v or {}).get("is_usable"))} for k, v in info.items()}
        usability.append({"trait": trait, **M.filtering_metrics(ref_like, pred_like)})
    return {"per_problem": per_problem, "categorized": M.aggregate_by_category(scored, keys),
            "usability": {"per_trait": usability,
                          "average": M.average_records(usability, ["precision", "recall", "f1", "accuracy"])}}


def _coefficients(pred_root: str, known: dict[tuple[str, str | None], dict[str, list[str]]],
                  top_n: int) -> dict[str, dict]:
    """Top-|coef| significant genes of each predicted problem, flagged when in the reference / planted set."""
    out: dict[str, dict] = {}
    for (trait, cond), sets in known.items():
        try:
            res = _read_json_or_none(layout.significant_genes_path(pred_root, trait, cond))
        except EvaluationError:
            continue
        sig = (res or {}).get("significant_genes") or {}
        genes = list(sig.get("Variable") or [])
        coefs = list(sig.get("Coefficient") or [])
        if not genes or len(coefs) != len(genes):
            continue
        order = sorted(range(len(genes)), key=lambda i: -abs(float(coefs[i])))[:top_n]
        top = [genes[i] for i in order]
        rec = {"trait": trait, "condition": cond, "genes": top,
               "coefficients": [float(coefs[i]) for i in order], "n_significant": len(genes)}
        for side, gs in sets.items():
            gset = set(gs)
            rec[f"in_{side}"] = [g in gset for g in top]
        out[f"{trait}|{cond}"] = rec
    return out


# ---- entry point ------------------------------------------------------------------------------------------

def _truth_url(truth: str) -> str:
    """``--truth`` may name the corpus directory or its truth.json."""
    return truth if truth.endswith(".json") or not fs.isdir(truth) else layout.join(truth, "truth.json")


def evaluate_metrics(pred: str, ref: str | None = None, truth: str | None = None, client: Any = None, *,
                     task_info: str | None = None, n_genes: int = M.DEFAULT_N_GENES, top_n: int = 20,
                     progress: bool = False, now: Callable[[], _dt.datetime] | None = None) -> dict:
    """The full metrics document (strict-JSON-safe) for ``pred`` against ``ref`` and/or ``truth``; no writes.

    With neither (a real run, nothing to score against) the document holds the run's own results only
    (coefficients of its problems; the report shows them), and every score section is None.
    """
    errors: list[dict] = []
    known: dict[tuple[str, str | None], dict[str, list[str]]] = {}
    truth = _truth_url(truth) if truth else None
    ti_url = _find_task_info(task_info, pred, ref, truth)
    ti = fs.read_json(ti_url) if ti_url else None
    if isinstance(ti, dict):  # names that would build paths outside the runs: reported, left out
        from genotex_dask.metadata import safe_task_info

        ti, unsafe = safe_task_info(ti, ti_url)
        errors += [{"task": "task_info", "item": k, "file": ti_url, "error": v} for k, v in unsafe.items()]
    truth_obj = fs.read_json(truth) if truth else None
    pred_side = _Side(pred, ti, errors)
    ref_side = _Side(ref, ti, errors) if ref else None

    result: dict[str, Any] = {
        "pred": pred, "ref": ref, "truth": truth, "task_info": ti_url,
        "created": (now or (lambda: _dt.datetime.now(_dt.timezone.utc)))().isoformat(timespec="seconds"),
        "auroc_universe": "genes of the selected trait cohorts (union over sides) when known, "
                          f"else the {n_genes}-gene approximation",
        "filtering": None, "selection": None, "preprocessing": None, "analysis": None, "planted_truth": None,
    }
    if ref_side is not None:
        if ti is not None:
            pairs = M.question_pairs(ti)
        else:  # without task_info: traits with a reference cohort_info plus the reference's regress problems
            traits = [t for t in fs.listdir(layout.preprocess_dir(ref))
                      if fs.exists(layout.cohort_info_path(ref, t))]
            pairs = [(t, None) for t in traits]
            pairs += sorted({(t, c) for t, c, _ in _regress_problems(ref) if c is not None}, key=str)
        result["filtering"], result["selection"] = _evaluate_filtering_selection(pred_side, ref_side, pairs, errors)
        result["preprocessing"] = _evaluate_preprocessing(pred, ref, client, progress, errors)
        result["analysis"] = _evaluate_analysis(pred_side, ref_side, n_genes, errors, known)
    if truth_obj is not None:
        result["planted_truth"] = _evaluate_truth(pred_side, truth_obj, n_genes, errors, known, client)

    if ref is None and truth is None:  # results only: every problem the run solved, nothing to compare with
        for t, c, _ in _regress_problems(pred):
            known.setdefault((t, c), {})
    result["coefficients"] = _coefficients(pred, known, top_n)
    result["summary"] = {
        "traits_filtering": len((result["filtering"] or {}).get("per_trait", [])),
        "problems_selection": len((result["selection"] or {}).get("per_problem", [])),
        "files_preprocessing": sum(len(v["per_file"]) for v in (result["preprocessing"] or {}).values()),
        "problems_analysis": len((result["analysis"] or {}).get("per_problem", [])),
        "problems_truth": len((result["planted_truth"] or {}).get("per_problem", [])),
        "failed": len(errors), "errors": errors,
    }
    return M.json_safe(result)


def headline(result: dict) -> dict:
    """The averages people look at first, small enough for a run summary or a terminal."""
    out: dict[str, Any] = {}
    if result.get("filtering"):
        out["filtering"] = result["filtering"]["average"]
        out["selection"] = result["selection"]["categorized"]
        out["preprocessing"] = {k: v["average"] for k, v in result["preprocessing"].items()}
        out["analysis"] = {k: {m: v.get(m) for m in ("success", "precision", "recall", "f1", "auroc", "gsea_es")}
                           for k, v in result["analysis"]["categorized"].items()}
    if result.get("planted_truth"):
        out["planted_truth"] = result["planted_truth"]["categorized"]
        out["usability_vs_truth"] = result["planted_truth"]["usability"]["average"]
    return out


def run_evaluate(pred: str, ref: str | None = None, report: str | None = None, truth: str | None = None,
                 client: Any = None, *, task_info: str | None = None, n_genes: int = M.DEFAULT_N_GENES,
                 top_n: int = 20, max_coef_plots: int = 60, progress: bool = False,
                 now: Callable[[], _dt.datetime] | None = None) -> dict:
    """Evaluate ``pred`` against ``ref`` (GenoTEX's three tasks) and/or ``truth`` (planted genes).

    Writes ``metrics.json`` (everything), ``run_summary.json`` (the returned summary) and, with ``report``,
    ``index.html`` into ``report``; without ``report`` the JSON files go to ``<pred>/evaluation/``.
    Returns the run summary: counts, errors with their files, headline averages and the written paths.
    """
    overview = None
    if report and client is not None and not pred.startswith("memory://"):
        from genotex_dask.results import run_overview

        # the report's results section reads every result again: on a worker, while the metrics are computed
        overview = client.submit(run_overview, pred, pure=False)
    result = evaluate_metrics(pred, ref, truth, client, task_info=task_info, n_genes=n_genes, top_n=top_n,
                              progress=progress, now=now)
    out_dir = report or layout.join(pred, "evaluation")
    metrics_url = layout.join(out_dir, "metrics.json")
    report_url = layout.join(report, "index.html") if report else None
    if report_url:
        from genotex_dask.evaluation.report import write_report

        write_report(report_url, result, max_coef_plots=max_coef_plots, client=client, overview_future=overview)
    fs.write_json_atomic(metrics_url, result, indent=1)
    summary = {"metrics_path": metrics_url, "report_path": report_url, **result["summary"],
               "headline": headline(result)}
    fs.write_json_atomic(layout.join(out_dir, "run_summary.json"), summary)
    return summary
