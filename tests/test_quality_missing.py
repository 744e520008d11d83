"""GenoTEX's missing-value steps (quality.handle_missing) against a plain pandas restatement of them, on random
cohorts where every branch happens: samples without a trait, genes dropped for > 20% gaps, samples dropped for
> 5% gaps among the remaining genes, no gene or no sample left, imputation by column means, Age mean, Gender
mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genotex_dask.preprocess import quality


def _oracle(trait, age, gender, X):
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(X.shape[1])])
    genes = list(df.columns)
    df.insert(0, "trait", trait)
    df.insert(1, "Age", age)
    df.insert(2, "Gender", gender)
    df = df[df["trait"].notna()]
    keep = [g for g in genes if df[g].isna().mean() <= 0.2] if len(df) else []
    df = df[["trait", "Age", "Gender", *keep]]
    frac = df[keep].isna().mean(axis=1) if keep else pd.Series(1.0, index=df.index)
    df = df[frac <= 0.05]
    if df["Age"].notna().any():
        df["Age"] = df["Age"].fillna(df["Age"].mean())
    if df["Gender"].notna().any():
        df["Gender"] = df["Gender"].fillna(df["Gender"].mode().iloc[0])
    else:
        df = df.drop(columns="Gender")
    for g in keep:
        df[g] = df[g].fillna(df[g].mean())
    return df


@pytest.mark.parametrize("seed", range(40))
def test_handle_missing_equals_pandas_steps(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 40)), int(rng.integers(1, 30))
    X = rng.normal(8, 2, (n, m))
    X[rng.random((n, m)) < rng.choice([0.0, 0.01, 0.05, 0.3])] = np.nan
    if rng.random() < 0.3:
        X[:, rng.integers(0, m)] = np.nan  # a gene missing everywhere
    trait = rng.integers(0, 2, n).astype(float)
    trait[rng.random(n) < rng.choice([0.0, 0.2, 1.0], p=[0.5, 0.4, 0.1])] = np.nan
    age = rng.normal(50, 10, n)
    age[rng.random(n) < 0.2] = np.nan
    gender = rng.integers(0, 2, n).astype(float)
    gender[rng.random(n) < rng.choice([0.1, 1.0])] = np.nan
    d = quality.Linked(np.array([f"s{i}" for i in range(n)], dtype=object), trait, {"Age": age, "Gender": gender},
                       np.array([f"g{j}" for j in range(m)], dtype=object), X.copy())
    for overwrite in (False, True):
        out, steps = quality.handle_missing(quality.Linked(d.samples, d.trait, d.covariates, d.genes, d.X.copy()),
                                            overwrite_x=overwrite)
        want = _oracle(trait, age, gender, X)
        assert out.samples.tolist() == [f"s{i}" for i in want.index]
        assert out.genes.tolist() == [c for c in want.columns if c.startswith("g")]
        # pandas sums means in its own order: equal to the last bits or so
        np.testing.assert_allclose(out.X, want[out.genes.tolist()].to_numpy(), rtol=1e-12)
        assert list(out.covariates) == [c for c in ("Age", "Gender") if c in want.columns]
        for k, v in out.covariates.items():
            np.testing.assert_allclose(v, want[k].to_numpy(), rtol=1e-12)
        assert steps["samples_out"] == len(want) and steps["genes_out"] == len(out.genes)
    np.testing.assert_array_equal(d.X, X)  # without overwrite_x the input is left as it was
