"""A static, self-contained HTML report of an evaluation (plots embedded as base64 PNGs).

One file, no server and no network: it opens from disk or from an object store's download.  Plots are drawn
with matplotlib's object API on the Agg canvas (no pyplot global state, safe in worker threads).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from genotex_dask.evaluation.metrics import CATEGORIES, CATEGORY_LABELS, problem_category
from genotex_dask.io import fs

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:0.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td.l,th.l{text-align:left} tr.bad td{background:#fdecea} .muted{color:#777}
.plots img{margin:4px;border:1px solid #eee;vertical-align:top}
code{background:#f5f5f5;padding:0 3px}
"""


# ---- formatting helpers -----------------------------------------------------------------------------

def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
    if isinstance(v, (list, tuple)):
        return " + ".join(str(x) for x in v)
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1,
           row_class: Sequence[str] | None = None, digits: int = 2) -> str:
    """An HTML table; the first ``left`` columns are left-aligned labels."""
    h = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(str(c))}</th>' for i, c in enumerate(header))
    body = []
    for j, row in enumerate(rows):
        cls = f' class="{row_class[j]}"' if row_class and row_class[j] else ""
        cells = "".join(f'<td class="{"l" if i < left else ""}">{html.escape(_fmt(c, digits))}</td>'
                        for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


def render_plots(jobs: Sequence[tuple[Callable[[Any], bytes], Any]], client: Any = None) -> list[bytes]:
    """PNG bytes of each (plot function, record), in order.  Rendering is most of a report's cost (~75 ms a
    plot with matplotlib, up to 2 x 60 plots), so with a Dask client the plots are drawn on the workers in
    parallel instead of one after another in the client process."""
    if client is None or len(jobs) < 2:
        return [fn(arg) for fn, arg in jobs]
    return client.gather([client.submit(fn, arg, pure=False) for fn, arg in jobs])


def _draw_all(jobs: Sequence[tuple[Callable[[Any], bytes], Any]]) -> list[bytes]:
    return [fn(arg) for fn, arg in jobs]


class _Plots:
    """The plots of one page.  With a Dask client they are submitted, a few per task, as their sections ask for
    them, and the page is assembled around markers while the workers draw; the markers are replaced at the end
    (one gather).  Drawing all of a report's plots back to back instead of in two batches with the client's HTML
    and its own charts in between keeps the workers busy (between the batches they idled ~0.7 s each on a 1/16
    sample), and a task of several plots (~0.3 s) instead of one (~50 ms) spares most scheduler round trips,
    which on a loaded machine left gaps between plots.  Without a client every plot is drawn in place."""

    PER_TASK = 6

    def __init__(self, client: Any = None):
        import uuid

        self.client = client
        self.token = uuid.uuid4().hex  # page text from inputs cannot forge a marker
        self.alts: list[str] = []
        self.buffer: list[tuple[Callable[[Any], bytes], Any]] = []
        self.futures: list[Any] = []

    def img(self, fn: Callable[[Any], bytes], arg: Any, alt: str) -> str:
        if self.client is None:
            return _img(fn(arg), alt)
        self.buffer.append((fn, arg))
        self.alts.append(alt)
        if len(self.buffer) >= self.PER_TASK:
            self._flush()
        return f"<!--plot-{self.token}-{len(self.alts) - 1}-->"

    def _flush(self) -> None:
        if self.buffer:
            self.futures.append(self.client.submit(_draw_all, self.buffer, pure=False))
            self.buffer = []

    def finish(self, page: str) -> str:
        if not self.alts:
            return page
        import re

        self._flush()
        pngs = [png for chunk in self.client.gather(self.futures) for png in chunk]
        imgs = [_img(png, alt) for png, alt in zip(pngs, self.alts)]
        self.alts, self.futures = [], []
        return re.sub(f"<!--plot-{self.token}-([0-9]+)-->", lambda m: imgs[int(m.group(1))], page)


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _cond(c: Any) -> str:
    """GenoTEX spells the unconditional problem's condition 'None'."""
    return "None" if c is None else str(c)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# ---- plots ----------------------------------------------------------------------------------------------

BAR_METRICS = (("success", "success", 1.0), ("precision", "prec.", 1.0), ("recall", "recall", 1.0),
               ("f1", "F1", 1.0), ("auroc", "AUROC\n×100", 100.0), ("gsea_es", "ES\n×100", 100.0))


def category_bar_chart(category: str, series: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Grouped bars of one problem category's averages, one group per metric, one bar per comparison."""
    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.add_subplot(111)
    names = list(series)
    x = np.arange(len(BAR_METRICS))
    width = 0.8 / max(1, len(names))
    colors = ("#4C72B0", "#DD8452", "#55A868")
    for k, name in enumerate(names):
        vals = [_num(series[name].get(m)) * s for m, _, s in BAR_METRICS]
        heights = [0.0 if math.isnan(v) else v for v in vals]
        bars = ax.bar(x + (k - (len(names) - 1) / 2) * width, heights, width, label=name, color=colors[k % 3])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, "n/a" if math.isnan(v) else f"{v:.0f}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [lbl for _, lbl, _ in BAR_METRICS], fontsize=8)
    ax.set_ylim(0, 115)
    ax.set_ylabel("%")
    ax.set_title(CATEGORY_LABELS.get(category, category))
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def task_overview_chart(result: Mapping[str, Any]) -> bytes:
    """One bar per task headline: filtering F1, selection accuracy, CSC x100 per file kind, analysis F1."""
    labels, vals = [], []
    if result.get("filtering"):
        labels.append("filtering F1")
        vals.append(_num(result["filtering"]["average"].get("f1")))
    if result.get("selection"):
        labels.append("selection acc.")
        vals.append(_num(result["selection"]["average"].get("accuracy")))
    for kind, sec in (result.get("preprocessing") or {}).items():
        labels.append(f"{kind} CSC x100")
        vals.append(_num((sec.get("average") or {}).get("composite_similarity_correlation")) * 100)
    if result.get("analysis"):
        labels.append("analysis F1")
        vals.append(_num(result["analysis"]["categorized"]["overall"].get("f1")))
    if result.get("planted_truth"):
        labels.append("planted F1")
        vals.append(_num(result["planted_truth"]["categorized"]["overall"].get("f1")))
    fig = Figure(figsize=(max(4.0, 0.9 * len(labels) + 1), 3.0))
    ax = fig.add_subplot(111)
    heights = [0.0 if math.isnan(v) else v for v in vals]
    bars = ax.bar(range(len(labels)), heights, color="#4C72B0")
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, "n/a" if math.isnan(v) else f"{v:.1f}",
                ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 115)
    ax.set_title("Tasks at a glance (%)")
    return _png(fig)


def f1_heatmap(rows: Sequence[str], cols: Sequence[str], values: np.ndarray, title: str) -> bytes:
    """Traits x columns heatmap of F1 (0-100); missing cells are grey and labelled n/a."""
    fig = Figure(figsize=(1.3 + 1.2 * len(cols), 1.2 + 0.28 * len(rows)))
    ax = fig.add_subplot(111)
    cmap = LinearSegmentedColormap.from_list("f1", ["#d73027", "#fee08b", "#1a9850"]).with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def coefficient_plot(rec: Mapping[str, Any]) -> bytes:
    """Horizontal bars of the top significant genes' coefficients, coloured by membership in ref/truth."""
    genes = list(rec["genes"])[::-1]
    coefs = list(rec["coefficients"])[::-1]
    in_ref = list(rec.get("in_ref") or [False] * len(genes))[::-1]
    in_truth = list(rec.get("in_truth") or [False] * len(genes))[::-1]
    colors = ["#1a9850" if (r or t) else "#8c8c8c" for r, t in zip(in_ref, in_truth)]
    fig = Figure(figsize=(4.6, 0.9 + 0.22 * max(1, len(genes))))
    ax = fig.add_subplot(111)
    ax.barh(range(len(genes)), coefs, color=colors)
    ax.axvline(0, color="#444", lw=0.6)
    ax.set_yticks(range(len(genes)), genes, fontsize=7)
    cond = rec.get("condition")
    ax.set_title(f"{rec['trait']} | {cond}  (top {len(genes)} of {rec.get('n_significant', len(genes))})",
                 fontsize=8)
    flagged = rec.get("in_ref") is not None or rec.get("in_truth") is not None
    ax.set_xlabel("coefficient (green: in reference or planted set)" if flagged else "coefficient", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


# ---- sections -----------------------------------------------------------------------------------------

def _heatmap_matrix(result: Mapping[str, Any]) -> tuple[list[str], list[str], np.ndarray]:
    """Per trait: filtering F1 and mean analysis / planted-truth F1 per problem category."""
    cols: list[tuple[str, str, str | None]] = []
    if result.get("filtering"):
        cols.append(("Filtering F1", "filtering", None))
    for sec, tag in (("analysis", "vs ref"), ("planted_truth", "vs truth")):
        if result.get(sec):
            for cat in CATEGORIES:
                cols.append((f"{CATEGORY_LABELS[cat]} {tag}", sec, cat))
    traits: dict[str, None] = {}
    for r in (result.get("filtering") or {}).get("per_trait", []):
        traits[r["trait"]] = None
    for sec in ("analysis", "planted_truth"):
        for r in (result.get(sec) or {}).get("per_problem", []):
            traits[r["trait"]] = None
    rows = sorted(traits)
    vals = np.full((len(rows), len(cols)), np.nan)
    idx = {t: i for i, t in enumerate(rows)}
    for j, (_, sec, cat) in enumerate(cols):
        if sec == "filtering":
            for r in result["filtering"]["per_trait"]:
                vals[idx[r["trait"]], j] = _num(r.get("f1"))
            continue
        acc: dict[str, list[float]] = {}
        for r in result[sec]["per_problem"]:
            if r.get("category", problem_category(r.get("condition"))) != cat or r.get("scored") is False:
                continue
            acc.setdefault(r["trait"], []).append(_num(r.get("f1")))
        for t, vs in acc.items():
            vals[idx[t], j] = float(np.nanmean(vs)) if not all(math.isnan(v) for v in vs) else np.nan
    return rows, [c[0] for c in cols], vals


def render_report(result: Mapping[str, Any], max_coef_plots: int = 60, overview: Mapping[str, Any] | None = None,
                  tsv_name: str | None = None, client: Any = None) -> str:
    """The whole report as one HTML string (with the run's results section when ``overview`` is given)."""
    plots = _Plots(client)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>genotex_dask evaluation</title>"
             f"<style>{CSS}</style></head><body>", "<h1>genotex_dask evaluation report</h1>"]
    if overview is not None:
        # the evaluation's own coefficient plots (coloured by reference/truth membership) stand in for ours
        parts.append(results_section(overview, tsv_name=tsv_name, max_plots=max_coef_plots,
                                     coefficient_plots=not result.get("coefficients"), plots=plots))
    s = result.get("summary") or {}
    parts.append(_table(["", ""], [["prediction", result.get("pred")], ["reference", result.get("ref")],
                                   ["planted truth", result.get("truth")], ["task info", result.get("task_info")],
                                   ["created", result.get("created")],
                                   ["AUROC / ES gene universe", result.get("auroc_universe")],
                                   ["errors", s.get("failed", 0)]], left=2))

    # metric tables per task and category
    parts.append("<h2>Metrics per task and category</h2>")
    if result.get("filtering"):
        a = result["filtering"]["average"]
        parts.append("<h3>Dataset filtering (is_available, averaged over traits, %)</h3>")
        parts.append(_table(["traits", "precision", "recall", "F1", "accuracy"],
                            [[len(result["filtering"]["per_trait"]), a.get("precision"), a.get("recall"),
                              a.get("f1"), a.get("accuracy")]], left=0))
    if result.get("selection"):
        c = result["selection"]["categorized"]
        parts.append("<h3>Dataset selection (accuracy, %)</h3>")
        parts.append(_table(["category", "accuracy"],
                            [[CATEGORY_LABELS[k], (c.get(k) or {}).get("accuracy")] for k in (*CATEGORIES, "overall")]))
    if result.get("preprocessing"):
        parts.append("<h3>Preprocessing (per reference CSV, averaged per file kind)</h3>")
        rows = []
        for kind, sec in result["preprocessing"].items():
            a = sec.get("average") or {}
            rows.append([kind, len(sec.get("per_file", [])), a.get("attributes_jaccard"), a.get("samples_jaccard"),
                         a.get("feature_correlation"), a.get("composite_similarity_correlation")])
        parts.append(_table(["file kind", "files", "AJ", "SJ", "mean r", "CSC"], rows, digits=4))
    for sec, title in (("analysis", "Statistical analysis vs reference"),
                       ("planted_truth", "Planted-gene recovery vs truth")):
        if not result.get(sec):
            continue
        c = result[sec]["categorized"]
        parts.append(f"<h3>{title}</h3>")
        rows = []
        for k in (*CATEGORIES, "overall"):
            a = c.get(k) or {}
            rows.append([CATEGORY_LABELS[k], a.get("success"), a.get("precision"), a.get("recall"), a.get("f1"),
                         a.get("auroc"), a.get("gsea_es")])
        parts.append(_table(["category", "success %", "precision %", "recall %", "F1 %", "AUROC", "GSEA ES"],
                            rows, digits=3))
    if result.get("planted_truth"):
        u = result["planted_truth"]["usability"]["average"]
        parts.append("<h3>Cohort usability vs the corpus's expectation (%)</h3>")
        parts.append(_table(["precision", "recall", "F1", "accuracy"],
                            [[u.get("precision"), u.get("recall"), u.get("f1"), u.get("accuracy")]], left=0))

    # charts
    parts.append("<h2>Charts</h2><div class=\"plots\">")
    parts.append(plots.img(task_overview_chart, _overview_view(result), "tasks overview"))
    for cat in CATEGORIES:
        series = {}
        if result.get("analysis"):
            series["vs reference"] = result["analysis"]["categorized"].get(cat) or {}
        if result.get("planted_truth"):
            series["vs planted truth"] = result["planted_truth"]["categorized"].get(cat) or {}
        if series:
            parts.append(plots.img(_category_chart, (cat, series), f"bar chart {CATEGORY_LABELS[cat]}"))
    rows, cols, vals = _heatmap_matrix(result)
    if rows and cols:
        parts.append(plots.img(_f1_heatmap_chart, (rows, cols, vals), "per-trait F1 heatmap"))
    parts.append("</div>")

    # selected cohorts
    if result.get("selection"):
        parts.append("<h2>Selected cohorts</h2>")
        recs = result["selection"]["per_problem"]
        parts.append(_table(["trait", "condition", "category", "reference", "prediction", "match"],
                            [[r["trait"], _cond(r["condition"]), CATEGORY_LABELS[r["category"]], r["ref"], r["pred"],
                              r["accuracy"] == 100.0] for r in recs], left=5,
                            row_class=["" if r["accuracy"] == 100.0 else "bad" for r in recs]))

    # per-problem tables
    for sec, title, extra in (("analysis", "Problems vs reference", []),
                              ("planted_truth", "Planted truth per problem", ["expected_solvable"])):
        if not result.get(sec):
            continue
        recs = result[sec]["per_problem"]
        parts.append(f"<h2>{title}</h2>")
        header = ["trait", "condition", "category", *extra, "success", "precision", "recall", "F1", "AUROC",
                  "GSEA ES", "#pred", "#ref" if sec == "analysis" else "#planted", "universe"]
        rows = [[r["trait"], _cond(r["condition"]), CATEGORY_LABELS.get(r["category"], r["category"]),
                 *[r.get(e) for e in extra], r.get("success"), r.get("precision"), r.get("recall"), r.get("f1"),
                 r.get("auroc"), r.get("gsea_es"), r.get("n_pred"), r.get("n_ref"), r.get("universe")]
                for r in recs]
        parts.append(_table(header, rows, left=3 + len(extra)))

    if result.get("preprocessing"):
        parts.append("<h2>Preprocessing per file</h2>")
        rows = []
        for kind, sec in result["preprocessing"].items():
            for r in sec.get("per_file", []):
                rows.append([kind, r["trait"], r["file"], r.get("status"), r.get("attributes_jaccard"),
                             r.get("samples_jaccard"), r.get("feature_correlation"),
                             r.get("composite_similarity_correlation")])
        parts.append(_table(["kind", "trait", "file", "status", "AJ", "SJ", "r", "CSC"], rows, left=4, digits=4))

    # coefficient plots
    coefs = result.get("coefficients") or {}
    if coefs:
        keys = sorted(coefs)
        parts.append(f"<h2>Significant genes (top coefficients, {min(len(keys), max_coef_plots)} of "
                     f"{len(keys)} problems)</h2><div class=\"plots\">")
        parts += [plots.img(coefficient_plot, coefs[k], f"coefficients {k}") for k in keys[:max_coef_plots]]
        parts.append("</div>")

    errs = s.get("errors") or []
    if errs:
        parts.append("<h2>Errors</h2>")
        parts.append(_table(["task", "item", "file", "error"],
                            [[e.get("task"), e.get("item"), e.get("file"), e.get("error")] for e in errs], left=4))
    parts.append('<p class="muted">Metric definitions follow GenoTEX/GenoMAS eval.py: filtering on is_available, '
                 "selection by the deterministic cohort rule, CSC = AJ &times; SJ &times; r, gene P/R/F1 with "
                 "GenoTEX's empty-set conventions, AUROC with the i-th predicted gene scored len&minus;i.</p>")
    parts.append("</body></html>")
    return plots.finish("\n".join(parts))


def _overview_view(result: Mapping[str, Any]) -> dict:
    """What :func:`task_overview_chart` reads of a result (the averages), not its per-problem records, which
    would be shipped to a worker with the plot."""
    view: dict[str, Any] = {}
    for sec, keys in (("filtering", ("average",)), ("selection", ("average",)), ("analysis", ("categorized",)),
                      ("planted_truth", ("categorized",))):
        if result.get(sec):
            view[sec] = {k: result[sec][k] for k in keys}
    if result.get("preprocessing"):
        view["preprocessing"] = {kind: {"average": sec.get("average")} for kind, sec in result["preprocessing"].items()}
    return view


def _category_chart(arg: tuple) -> bytes:
    return category_bar_chart(*arg)


def _f1_heatmap_chart(arg: tuple) -> bytes:
    rows, cols, vals = arg
    return f1_heatmap(rows, cols, vals, "F1 per trait (%)")


def write_report(url: str, result: Mapping[str, Any], max_coef_plots: int = 60, client: Any = None,
                 overview_future: Any = None) -> str:
    """Render and write the report atomically to ``url`` (any fsspec URL); returns ``url``.

    The run's results section (cohorts, selected cohorts, significant genes, TSV beside the page) comes
    first whenever the predicted run has results; a run whose results cannot be read gets the scores only.
    ``overview_future``: a Dask future of ``run_overview(result["pred"])`` submitted earlier (so the workers read
    the results while the client computed the metrics), used instead of reading them here.
    """
    overview = None
    tsv_name = None
    if result.get("pred"):
        from genotex_dask.results import run_overview

        try:
            overview = overview_future.result() if overview_future is not None else None
        except Exception:  # noqa: BLE001 - a lost task or a worker that cannot see the run: read here
            overview = None
        if overview is None:
            try:
                overview = run_overview(str(result["pred"]))
            except Exception:  # noqa: BLE001 - the scores are still worth a report
                overview = None
        if overview is not None:
            tsv_name = _write_tsv(url, overview)
    fs.write_text_atomic(url, render_report(result, max_coef_plots=max_coef_plots, overview=overview,
                                            tsv_name=tsv_name, client=client))
    return url


# ---- the run's results (works with no truth and no reference) ---------------------------------------------

TSV_NAME = "significant_genes.tsv"
DATA_URI_MAX = 4_000_000  # bytes of TSV embedded in the page as a download link; larger runs link the file only
NCBI_GENE = "https://www.ncbi.nlm.nih.gov/gene/?term={}%5Bsym%5D+AND+human%5Borgn%5D"
TSV_COLUMNS = ("trait", "condition", "category", "gene", "coefficient", "sign", "rank", "n_significant",
               "trait_cohort", "condition_cohort", "mode", "model", "alpha")

SORT_JS = """<script>
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, col) {
    th.style.cursor = 'pointer'; th.title = 'sort';
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.from(body.rows), asc = th.dataset.dir !== 'asc';
      th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>"""


def gene_url(symbol: str) -> str:
    """The gene's NCBI Gene search page (human, by official symbol)."""
    from urllib.parse import quote

    return NCBI_GENE.format(quote(symbol, safe=""))


def results_tsv(overview: Mapping[str, Any]) -> str:
    """The significant-genes table as TSV (one row per problem and gene)."""
    table = overview["table"]
    cols = [c for c in TSV_COLUMNS if c in table.columns]
    return table[cols].to_csv(sep="\t", index=False, na_rep="")


def _write_tsv(report_url: str, overview: Mapping[str, Any]) -> str:
    """Write the TSV next to the report page; returns its file name."""
    base = report_url.rsplit("/", 1)[0] if "/" in report_url else "."
    fs.write_text_atomic(f"{base}/{TSV_NAME}", results_tsv(overview))
    return TSV_NAME


def stability_plot(problem: Mapping[str, Any], top: int = 25) -> bytes:
    """Share of CV folds that selected each significant gene (at the chosen penalty), top genes by |coef|."""
    genes = list(problem["genes"])[:top][::-1]
    freq = [problem["fold_frequency"].get(g, 0.0) * 100 for g in genes]
    fig = Figure(figsize=(4.6, 0.9 + 0.22 * max(1, len(genes))))
    ax = fig.add_subplot(111)
    ax.barh(range(len(genes)), freq, color="#4C72B0")
    ax.set_yticks(range(len(genes)), genes, fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% of {problem['n_folds']} CV folds selecting the gene", fontsize=7)
    ax.set_title(f"{problem['trait']} | {_cond(problem['condition'])}: stability", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


def _cell(v: Any, left: bool = False, sort_value: Any = None, inner: str | None = None) -> str:
    cls = ' class="l"' if left else ""
    dv = f' data-v="{html.escape(str(sort_value))}"' if sort_value is not None else ""
    return f"<td{cls}{dv}>{inner if inner is not None else html.escape(_fmt(v, 4))}</td>"


def results_section(overview: Mapping[str, Any], tsv_name: str | None = None, max_plots: int = 60,
                    coefficient_plots: bool = True, client: Any = None, plots: _Plots | None = None) -> str:
    """HTML of the run's results: cohorts per trait (used / excluded and why), selected cohort(s) per problem,
    a sortable significant-genes table with NCBI Gene links, the TSV download, coefficient and stability plots.

    ``plots``: the page's plot set (its markers are replaced when the page is finished); without one the
    section draws its own plots (on ``client``'s workers when given)."""
    own = plots is None
    plots = _Plots(client) if own else plots
    probs = overview["problems"]
    figures = _problem_figures(probs, plots, max_plots, coefficient_plots)  # first: the workers draw meanwhile
    parts = ["<h2 id=\"results\">Results of the run</h2>",
             f"<p>Run: <code>{html.escape(str(overview.get('out', '')))}</code></p>"]
    # cohorts per trait
    parts.append("<h3>Cohorts per trait</h3>")
    rows, classes = [], []
    for trait, cohorts in sorted(overview["traits"].items()):
        for c in cohorts:
            rows.append([trait, c["cohort"], "used" if c["usable"] else "excluded", c["reason"] or "",
                         "review needed" if c["needs_review"] else "", c["sample_size"], c["has_age"],
                         c["has_gender"]])
            classes.append("" if c["usable"] else "bad")
    parts.append(_table(["trait", "cohort", "status", "reason", "review", "samples", "Age", "Gender"], rows,
                        left=5, row_class=classes) if rows else "<p class=\"muted\">no cohort_info.json found</p>")
    # selected cohorts per problem
    parts.append("<h3>Selected cohorts per problem</h3>")
    prow = [[p["trait"], _cond(p["condition"]), CATEGORY_LABELS[problem_category(p["condition"])],
             p["trait_cohort"] or "", p["condition_cohort"] or "", p["model"] or "", p["alpha"], p["n_significant"]]
            for p in probs]
    prow += [[n.get("problem", ""), "", "", "none", "", "", None, 0] for n in overview.get("no_cohort") or []]
    parts.append(_table(["trait", "condition", "category", "trait cohort", "condition cohort", "model", "alpha",
                         "genes"], prow, left=6))
    if overview.get("no_cohort"):
        parts.append(_table(["problem without a usable cohort", "reason"],
                            [[n.get("problem"), n.get("reason")] for n in overview["no_cohort"]], left=2))
    if overview.get("failed"):
        parts.append(_table(["failed problem", "error"],
                            [[f.get("problem"), f.get("error")] for f in overview["failed"]], left=2))
    # significant genes: sortable, linked, downloadable
    table = overview["table"]
    tsv = results_tsv(overview)
    links = []
    if tsv_name:
        links.append(f'<a href="{html.escape(tsv_name)}" download>{html.escape(tsv_name)}</a> (next to this page)')
    if len(tsv.encode()) <= DATA_URI_MAX:
        b64 = base64.b64encode(tsv.encode()).decode("ascii")
        links.append(f'<a href="data:text/tab-separated-values;base64,{b64}" download="{TSV_NAME}">'
                     "download TSV (embedded)</a>")
    parts.append(f"<h3>Significant genes ({len(table)} rows, {len(probs)} problem{'s' if len(probs) != 1 else ''})</h3>")
    parts.append(f"<p>{' &middot; '.join(links)} &middot; click a column header to sort</p>")
    head = "".join(f'<th class="{"l" if i < 4 else ""}">{h}</th>' for i, h in enumerate(
        ["trait", "condition", "gene", "cohort(s)", "coefficient", "sign", "rank", "of"]))
    body = []
    for r in table.itertuples(index=False):
        g = str(r.gene)
        link = f'<a class="gene" href="{html.escape(gene_url(g))}" target="_blank" rel="noopener">{html.escape(g)}</a>'
        cond = "None" if r.condition is None or r.condition is pd.NA or str(r.condition) == "<NA>" else str(r.condition)
        body.append("<tr>" + _cell(r.trait, True) + _cell(cond, True) + _cell(g, True, g, link)
                    + _cell(r.cohorts if isinstance(r.cohorts, str) else "", True)
                    + _cell(float(r.coefficient), sort_value=float(r.coefficient))
                    + _cell("+" if r.sign > 0 else "−", sort_value=int(r.sign)) + _cell(int(r.rank))
                    + _cell(int(r.n_significant)) + "</tr>")
    parts.append(f'<table class="sortable" id="genes"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{''.join(body)}</tbody></table>")
    parts += figures
    parts.append(SORT_JS)
    page = "\n".join(parts)
    return plots.finish(page) if own else page


def _problem_figures(probs: Sequence[Mapping[str, Any]], plots: _Plots, max_plots: int,
                     coefficient_plots: bool) -> list[str]:
    """The results section's plots (coefficients and fold stability per problem) with their heading."""
    shown = [p for p in probs if p["genes"] and (coefficient_plots or p["n_folds"])][:max_plots]
    if not shown:
        return []
    out = [f"<h3>Coefficients and CV-fold stability ({len(shown)} of {len(probs)} problems)</h3>"
           "<div class=\"plots\">"]
    for p in shown:
        rec = {"trait": p["trait"], "condition": _cond(p["condition"]), "genes": p["genes"][:20],
               "coefficients": p["coefficients"][:20], "n_significant": p["n_significant"]}
        if coefficient_plots:
            out.append(plots.img(coefficient_plot, rec, f"coefficients {p['trait']}|{_cond(p['condition'])}"))
        if p["n_folds"]:
            out.append(plots.img(stability_plot, {k: p[k] for k in ("genes", "fold_frequency", "n_folds", "trait",
                                                                     "condition")},
                                 f"stability {p['trait']}|{_cond(p['condition'])}"))
    out.append("</div>")
    return out


def render_results_report(overview: Mapping[str, Any], tsv_name: str | None = None, max_plots: int = 60) -> str:
    """A results-only page (a real run with no reference and no planted truth)."""
    return "\n".join([f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>genotex_dask results"
                      f"</title><style>{CSS}</style></head><body>", "<h1>genotex_dask results</h1>",
                      results_section(overview, tsv_name=tsv_name, max_plots=max_plots), "</body></html>"])


def write_results_report(report_dir: str, pred: str, ref: str | None = None, truth: str | None = None,
                         max_plots: int = 60) -> str:
    """Write ``report_dir``/index.html (+ significant_genes.tsv) for the run ``pred``; returns the page URL.

    With neither ``ref`` nor ``truth`` (a real run) the page holds the results only; otherwise this is the
    evaluation report (scores + results), as ``genotex_dask.evaluation.evaluate.run_evaluate`` writes it.
    """
    from genotex_dask import layout
    from genotex_dask.results import run_overview

    url = layout.join(report_dir, "index.html")
    if ref is None and truth is None:
        overview = run_overview(pred)
        tsv_name = _write_tsv(url, overview)
        fs.write_text_atomic(url, render_results_report(overview, tsv_name=tsv_name, max_plots=max_plots))
        return url
    from genotex_dask.evaluation.evaluate import run_evaluate

    return run_evaluate(pred, ref=ref, truth=truth, report=report_dir, max_coef_plots=max_plots)["report_path"]
