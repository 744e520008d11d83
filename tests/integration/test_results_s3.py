"""The run's Parquet dataset on S3 (moto on 127.0.0.1): rebuilt from the JSON layout in the bucket and read
back by dask.dataframe from the s3:// URL."""

from __future__ import annotations

import json

import dask.dataframe as dd
import pytest
from fsspec.core import url_to_fs

from genotex_dask import results

pytestmark = pytest.mark.integration

PROBLEMS = {("T_A", None): (["G1", "G2", "G3"], [0.5, -0.2, 0.1]), ("T_A", "Age"): (["G2"], [-0.3]),
            ("T_B", None): (["G2", "G9"], [0.4, 0.05])}


def test_results_dataset_on_s3(moto_s3):
    out = f"{moto_s3.new_bucket()}/run"
    s3, _ = url_to_fs(out)
    for (trait, cond), (genes, coefs) in PROBLEMS.items():
        body = {"significant_genes": {"Variable": genes, "Coefficient": coefs,
                                      "Absolute Coefficient": [abs(c) for c in coefs]}}
        s3.pipe(f"{out}/regress/{trait}/significant_genes_condition_{cond}.json", json.dumps(body).encode())
    s3.invalidate_cache()
    url = results.results_dataset(out)
    assert url == f"{out}/results/significant_genes"
    got = dd.read_parquet(url).compute()
    rows = sorted((str(r.trait), "" if r.condition is None or str(r.condition) == "<NA>" else str(r.condition),
                   r.gene, r.coefficient, int(r.rank)) for r in got.itertuples())
    exp = sorted((t, c or "", g, v, i + 1) for (t, c), (gs, vs) in PROBLEMS.items()
                 for i, (g, v) in enumerate(zip(gs, vs)))
    assert rows == exp
    assert results.recurrent_genes(got).to_dict() == {"G2": 2}  # G2 in T_A and T_B
