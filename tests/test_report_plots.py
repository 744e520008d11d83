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
