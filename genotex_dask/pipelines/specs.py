"""Spec files on disk: suggestion of specs from the cohorts (``genotex-dask specs suggest``), their protection
once a person has edited them, the reviewed specs shipped with the package laid over suggestions, and the list
of specs that still ask for review.  The science of suggestion is :mod:`genotex_dask.preprocess.suggest`; this
module reads the store/input tree and writes the YAML files.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from genotex_dask import layout
from genotex_dask.io import fs
from genotex_dask.io import store as store_mod
from genotex_dask.preprocess import clinical
from genotex_dask.preprocess.specs import CohortSpec, SpecError, dump_specs


def store_cohort_evidence(key: str, st: dict) -> dict:
    """What one stored cohort contributes to the suggestions, from a single opening of its group: for TCGA its
    obs column names; for GEO its series, matrix file and platform and the spec suggested from its obs (the
    series' first matrix is the one kept).  Errors come back as text, so one unreadable group never stops the
    others; runs as a task (one per cohort) when a cluster is given."""
    from genotex_dask.preprocess.suggest import suggest_geo

    kind, _, rest = key.partition("/")
    out: dict = {"key": key, "kind": kind, "rest": rest}
    try:
        meta = store_mod.CohortMeta(st["store"])
        if kind == "TCGA":
            out["columns"] = meta.columns("obs")
            return out
        ing = meta.uns.get("ingest") or {}
        out.update(trait=rest.split("/", 1)[0], gse=ing.get("gse") or rest.split("/", 1)[1],
                   matrix_file=ing.get("matrix_file", ""), store=st["store"],
                   platform=(meta.uns.get("platform") or {}).get("id"))
    except Exception as exc:  # noqa: BLE001 - reported under the cohort's name
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    try:
        obs = meta.frame("obs", keep=clinical.is_rule_column)
        chars = [[None if v == "" else v for v in obs[c].tolist()]
                 for c in sorted((c for c in obs.columns if str(c).startswith("characteristics_ch1")),
                                 key=lambda c: int(str(c).rsplit("_", 1)[-1]))]
        titles, sources = (obs[c].tolist() if c in obs.columns else [""] * len(obs)
                           for c in ("title", "source_name_ch1"))
        out["spec"] = suggest_geo(out["trait"], out["gse"], titles, sources, chars, platform=None)
    except Exception as exc:  # noqa: BLE001 - reported under the series' name if this matrix is the one kept
        out["spec_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _suggest_from_store(store_url: str, by_trait: dict, errors: dict, skipped: dict, client=None) -> None:
    """Suggestions from what ingest stored (obs of each cohort group): no raw file is read again, and cohorts
    ingest marked failed are skipped with their cause (their files are what failed).  With ``client`` the
    cohorts are read on the cluster, one task each (~15 ms a cohort: serial on the client, 911 cohorts at
    GenoTEX's scale would leave every worker idle for ~14 s)."""
    from genotex_dask.pipelines.ingest import SUMMARY_NAME
    from genotex_dask.preprocess.suggest import suggest_tcga

    summary = fs.read_json(layout.join(store_url, SUMMARY_NAME))
    todo = []
    for key, st in sorted((summary.get("cohorts") or {}).items()):
        kind, _, rest = key.partition("/")
        if st.get("status") == "failed":
            skipped[rest if kind == "GEO" else key] = f"ingest failed: {st.get('error', '')}"
            continue
        todo.append((key, st))
    if client is not None and len(todo) > 1:
        futs = [client.submit(store_cohort_evidence, k, st, pure=False) for k, st in todo]
        found = client.gather(futs)
    else:
        found = [store_cohort_evidence(k, st) for k, st in todo]
    geo: dict[tuple[str, str], list[dict]] = {}
    for ev in found:  # in key order, as the serial reading went: GEO cohorts (and their traits) before TCGA
        if "error" in ev:
            errors[ev["rest"]] = ev["error"]
        elif ev["kind"] == "TCGA":
            try:
                trait = _tcga_trait_name(ev["rest"], {t for t, _ in geo})
                by_trait.setdefault(trait, {})["TCGA"] = suggest_tcga(trait, ev["rest"], ev["columns"])
            except Exception as exc:
                errors[ev["rest"]] = f"{type(exc).__name__}: {exc}"
        else:
            geo.setdefault((ev["trait"], ev["gse"]), []).append(ev)
    for (trait, gse), mats in sorted(geo.items()):
        mats.sort(key=lambda ev: (ev["matrix_file"], ev["store"]))
        first = mats[0]   # GenoTEX's choice: the first matrix file of the series
        if "spec_error" in first:
            errors[f"{trait}/{gse}"] = first["spec_error"]
            continue
        spec = first["spec"]
        if len(mats) > 1:
            spec.matrix = first["matrix_file"]
            spec.note = (spec.note + "; " if spec.note else "") + \
                f"{len(mats)} matrix files: using {first['matrix_file']} (platform {first['platform']}) as GenoTEX does"
        by_trait.setdefault(trait, {})[gse] = spec


def run_suggest_specs(root: str, out_specs: str, store: str | None = None, client=None) -> dict:
    """Propose ``<out_specs>/<Trait>.yaml`` for every cohort of the input tree (GEO and TCGA).

    With ``store`` (a cohort store ingest wrote, as ``run`` uses), suggestions come from what ingest stored and
    cohorts ingest marked failed are skipped (listed under ``skipped``); without one, only sample metadata is
    read from the input files (series-matrix header lines, TCGA clinical columns).  ``client``: read the
    stored cohorts on that cluster (the same suggestions; without it, in this process).
    """
    from genotex_dask.io.geo import read_series_matrix
    from genotex_dask.io.tcga import read_xena_clinical
    from genotex_dask.pipelines.ingest import SUMMARY_NAME
    from genotex_dask.preprocess.suggest import suggest_geo, suggest_tcga

    t0 = time.perf_counter()
    by_trait: dict[str, dict[str, CohortSpec]] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    from_store = bool(store) and fs.exists(layout.join(store, SUMMARY_NAME))
    if from_store:
        _suggest_from_store(store, by_trait, errors, skipped, client)
    geo = layout.input_geo_dir(root)
    for trait in ([] if from_store else fs.listdir(geo)):
        tdir = layout.join(geo, trait)
        if not fs.isdir(tdir):
            continue
        for gse in fs.listdir(tdir):
            d = layout.join(tdir, gse)
            names = fs.listdir(d)
            mats = sorted(n for n in names if layout.is_series_matrix(n))
            if not mats:
                errors[f"{trait}/{gse}"] = f"{d}: no series-matrix file"
                continue
            try:
                m = read_series_matrix(layout.join(d, mats[0]), values=False)
                obs = m.samples
                chars = [[None if v == "" else v for v in obs[c].tolist()]
                         for c in obs.columns if str(c).startswith("characteristics_ch1")]
                plat = layout.platform_from_matrix_name(mats[0]) or (m.platform_ids[0] if m.platform_ids else None)
                spec = suggest_geo(trait, gse, obs["title"].tolist(), obs["source_name_ch1"].tolist(), chars,
                                   matrix=mats[0] if len(mats) > 1 else None, platform=None)
                if len(mats) > 1:
                    spec.note = (spec.note + "; " if spec.note else "") + \
                        f"{len(mats)} matrix files: using {mats[0]} (platform {plat}) as GenoTEX does"
                by_trait.setdefault(trait, {})[gse] = spec
            except Exception as exc:  # one unreadable cohort never stops the others
                errors[f"{trait}/{gse}"] = f"{type(exc).__name__}: {exc}"
    tcga = layout.input_tcga_dir(root)
    traits_known = set(by_trait)
    for dname in ([] if from_store else fs.listdir(tcga)):
        d = layout.join(tcga, dname)
        names = fs.listdir(d)
        clin = [n for n in names if layout.is_tcga_clinical(n)]
        if not clin:
            continue
        trait = _tcga_trait_name(dname, traits_known)
        try:
            cols = list(read_xena_clinical(layout.join(d, clin[0])).columns)
        except Exception as exc:
            errors[f"TCGA/{dname}"] = f"{type(exc).__name__}: {exc}"
            continue
        by_trait.setdefault(trait, {})["TCGA"] = suggest_tcga(trait, dname, cols)
    header = "# Proposed by `genotex-dask specs suggest`; review cohorts with needs_review: true.\n"
    kept, written = [], {}
    for trait, cohorts in sorted(by_trait.items()):
        if write_spec_unless_edited(layout.join(out_specs, f"{trait}.yaml"), dump_specs(trait, cohorts, header)):
            written[f"{trait}.yaml"] = cohorts
        else:
            kept.append(f"{trait}.yaml")
    review = specs_needing_review(out_specs, written)
    summary = {"stage": "suggest_specs", "root": root, "out": out_specs, "traits": len(by_trait),
               "cohorts": sum(len(c) for c in by_trait.values()), "needs_review": review,
               "kept_edited": kept, "errors": errors, "skipped": skipped,
               "source": "store" if from_store else "input files",
               "confidence": {f"{t}/{c}": s.confidence for t, cs in sorted(by_trait.items())
                              for c, s in sorted(cs.items())},
               "seconds": round(time.perf_counter() - t0, 3)}
    fs.write_json_atomic(layout.join(out_specs, "suggest_summary.json"), summary)
    return summary


SPEC_DIGEST_MARK = "# genotex-dask digest: "


def _spec_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def spec_was_edited(text: str) -> bool:
    """True when a spec file was changed after genotex-dask wrote it (or was never written by it).

    Every spec file the engine writes ends with a digest line of everything above it; a file whose digest
    line is missing or no longer matches was written or edited by a person."""
    head, sep, tail = text.rpartition(SPEC_DIGEST_MARK)
    return not sep or tail.strip() != _spec_digest(head)


def write_spec_unless_edited(url: str, text: str) -> bool:
    """Write a generated spec file (with its digest line) unless a person edited the existing one; returns
    whether it was written.  A hand-edited spec is the user's answer and is never overwritten."""
    if fs.exists(url) and spec_was_edited(fs.read_text(url)):
        return False
    body = text if text.endswith("\n") else text + "\n"
    fs.write_text_atomic(url, f"{body}{SPEC_DIGEST_MARK}{_spec_digest(body)}\n")
    return True


def specs_needing_review(specs_dir: str, written: dict[str, dict[str, CohortSpec]] | None = None) -> list[str]:
    """``Trait/cohort`` of every cohort whose spec (as it is now on disk, edits included) says needs_review.

    ``written``: files this process has just written from these specs (file name -> cohorts), taken as they
    are instead of parsed back (~3 ms of YAML per cohort, serial on the client); every other file is read."""
    from genotex_dask.preprocess.specs import parse_specs

    out = []
    for name in sorted(fs.listdir(specs_dir)):
        if not name.endswith((".yaml", ".yml")) or name.startswith(fs.TMP_MARK):
            continue
        if written is not None and name in written:
            cohorts = written[name]
        else:
            url = layout.join(specs_dir, name)
            try:
                cohorts = parse_specs(fs.read_text(url), url)
            except SpecError:
                continue  # reported by preprocess with file:line
        trait = name.rsplit(".", 1)[0]
        out += [f"{trait}/{c}" for c, sp in sorted(cohorts.items()) if sp.needs_review]
    return out


def _tcga_trait_name(dname: str, known: set[str]) -> str:
    """``TCGA_Bile_Duct_Cancer_(CHOL)`` -> ``Bile_Duct_Cancer`` (GenoTEX's directory naming)."""
    name = dname
    if name.startswith("TCGA_"):
        name = name[5:]
    if "_(" in name:
        name = name[: name.index("_(")]
    squash = "".join(ch for ch in name.lower() if ch.isalnum())
    # a trait already known from GEO whose name differs only in punctuation (Large_B-cell vs Large_Bcell)
    return next((k for k in sorted(known) if "".join(ch for ch in k.lower() if ch.isalnum()) == squash), name)


REVIEWED_SPECS = str(Path(__file__).resolve().parents[1] / "specs")


def apply_reviewed_specs(out_specs: str, reviewed: str = REVIEWED_SPECS) -> list[str]:
    """Overlay hand-reviewed specs (shipped in genotex_dask/specs) on suggested ones; returns the cohorts replaced.

    A suggestion is a guess that may need a person; a reviewed spec is that person's answer, so for every
    cohort both know the reviewed one wins.  Cohorts only the suggestion knows are kept as suggested.
    """
    from genotex_dask.preprocess.specs import parse_specs

    replaced = []
    for name in fs.listdir(reviewed):
        target = layout.join(out_specs, name)
        if not name.endswith(".yaml") or not fs.exists(target):
            continue
        if spec_was_edited(fs.read_text(target)):
            continue  # a person's edits win over the shipped review too
        mine = parse_specs(fs.read_text(target), target)
        theirs = parse_specs(fs.read_text(layout.join(reviewed, name)), layout.join(reviewed, name))
        common = sorted(set(mine) & set(theirs))
        if not common:
            continue
        mine.update({c: theirs[c] for c in common})
        header = f"# Suggested by `genotex-dask specs suggest`; {', '.join(common)} from the reviewed spec.\n"
        write_spec_unless_edited(target, dump_specs(name[:-len(".yaml")], mine, header))
        replaced += [f"{name[:-len('.yaml')]}/{c}" for c in common]
    return replaced
