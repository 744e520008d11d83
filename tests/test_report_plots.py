"""Report plots drawn on Dask workers are the same images as those drawn in the client process."""

from genotex_dask.evaluation import report


def _jobs():
    recs = [{"trait": "T", "condition": c, "genes": [f"G{i}" for i in range(k)],
             "coefficients": [0.5 - 0.1 * i for i in range(k)], "n_significant": k}
            for c, k in (("None", 3), ("Age", 7), ("Gender", 1))]
    stab = {"trait": "T", "condition": None, "genes": ["A", "B", "C"], "fold_frequency": {"A": 1.0, "B": 0.4},
            "n_folds": 5}
    return [(report.coefficient_plot, r) for r in recs] + [(report.stability_plot, stab)]


def test_plots_on_workers_equal_plots_here_and_keep_their_order(client):
    here = report.render_plots(_jobs())
    there = report.render_plots(_jobs(), client)
    assert len(here) == 4 and all(p.startswith(b"\x89PNG") for p in here)
    assert there == here
    assert len(set(here)) == 4  # different records, different images: the order is checked, not one image 4 times


def test_whole_report_drawn_on_workers_equals_the_page_drawn_here(client, tmp_path):
    """Every plot of a page (charts, heatmap, coefficient and stability plots of the results section) is submitted
    as its section is built and put in its place at the end: the same page, byte for byte, as drawn in place."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _eval_run import write_run

    from genotex_dask.evaluation.evaluate import evaluate_metrics
    from genotex_dask.results import run_overview

    run = write_run(tmp_path / "out")
    result = evaluate_metrics(str(run), ref=str(run), now=lambda: __import__("datetime").datetime(2026, 1, 1))
    overview = run_overview(str(run))
    here = report.render_report(result, overview=overview, tsv_name="t.tsv")
    there = report.render_report(result, overview=overview, tsv_name="t.tsv", client=client)
    assert there == here
    n_img = here.count("<img")
    assert n_img >= 5 and "<!--plot-" not in there  # charts and problem plots, every marker replaced
    # the results section alone (a results-only page) also draws on the workers when given a client
    assert report.results_section(overview, client=client) == report.results_section(overview)
