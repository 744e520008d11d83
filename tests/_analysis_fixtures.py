"""Small GenoTEX-layout preprocessed corpora with planted signal, for the analysis tests and benchmark.

Writes ROOT/metadata/task_info.json and OUT/preprocess/<Trait>/{cohort_info.json,<cohort>.csv} directly
(linked data: samples x [trait, Age, Gender, genes...]) so the analysis stage can be tested without the
preprocessing stage.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd


def gene_names(p: int, rng: np.random.Generator) -> list[str]:
    """Symbol-like names in shuffled (not alphabetical) file order, as real linked files have."""
    letters = np.array(list("ABCDEFGHIKLMNPRSTZ"))
    names = set()
    while len(names) < p:
        names.add("".join(rng.choice(letters, 3)) + str(int(rng.integers(1, 99))))
    out = sorted(names)
    rng.shuffle(out)
    return out


def make_cohort(rng, genes, n, planted, *, binary=True, age=True, gender=True, trait="T",
                batch_shift=0.0, effect=1.2, extra=None):
    """Linked frame with the trait driven by ``planted`` genes (+ Age/Gender effects)."""
    p = len(genes)
    X = rng.standard_normal((n, p))
    if batch_shift:
        half = np.arange(n) < n // 2
        X[half] += batch_shift
    idx = [genes.index(g) for g in planted]
    lin = X[:, idx] @ (effect * np.linspace(1.0, 0.6, len(idx)))
    cols = {}
    a = rng.integers(25, 80, n).astype(float)
    s = rng.integers(0, 2, n).astype(float)
    lin = lin + 0.02 * (a - 50) + 0.3 * s
    if extra is not None:
        lin = lin + extra(X)
    noise = rng.standard_normal(n) * 0.8
    y = (lin + noise > np.median(lin + noise)).astype(float) if binary else lin + noise
    cols[trait] = y
    if age:
        cols["Age"] = a
    if gender:
        cols["Gender"] = s
    df = pd.DataFrame(cols, index=[f"GSM{1000 + i}" for i in range(n)])
    gdf = pd.DataFrame(X, index=df.index, columns=genes)
    return pd.concat([df, gdf], axis=1)


def info(n, usable=True, age=True, gender=True):
    return {"is_usable": usable, "is_gene_available": True, "is_trait_available": True,
            "is_available": usable, "is_biased": not usable, "has_age": age, "has_gender": gender,
            "sample_size": n, "note": ""}


def write_corpus(root: str, out: str, *, n: int = 60, p: int = 150, seed: int = 0, lmm: bool = False,
                 n_lmm: int = 220, p_lmm: int = 240) -> dict:
    """Traits: Asthma (binary; conditions Age, Gender, Obesity), Obesity (continuous; condition Age),
    Ghost (no usable cohort; condition Gender) and, with ``lmm``, Lupus (batch-shifted 220-sample cohort).

    Returns the planted genes per trait.
    """
    rng = np.random.default_rng(seed)
    genes = gene_names(p, rng)
    planted = {"Asthma": genes[:6], "Obesity": genes[6:12]}
    decoys = genes[40:46]
    task_info = {
        "Asthma": {"related_genes": planted["Asthma"][:4] + decoys[:3], "conditions": ["Age", "Gender", "Obesity"]},
        "Obesity": {"related_genes": planted["Obesity"][:5] + decoys[3:], "conditions": ["Age"]},
        "Ghost": {"related_genes": genes[20:25], "conditions": ["Gender"]},
    }
    frames = {
        ("Asthma", "GSE100"): make_cohort(rng, genes, n, planted["Asthma"], trait="Asthma"),
        ("Asthma", "GSE101"): make_cohort(rng, genes[: p - 10], n - 15, planted["Asthma"], trait="Asthma",
                                          age=False),
        ("Obesity", "GSE200"): make_cohort(rng, genes, n - 5, planted["Obesity"], binary=False, trait="Obesity",
                                           gender=False),
        ("Ghost", "GSE300"): make_cohort(rng, genes, 12, genes[20:22], trait="Ghost"),
    }
    infos = {
        "Asthma": {"GSE100": info(n), "GSE101": info(n - 15, age=False)},
        "Obesity": {"GSE200": info(n - 5, gender=False)},
        "Ghost": {"GSE300": info(12, usable=False)},
    }
    if lmm:
        lg = gene_names(p_lmm, np.random.default_rng(seed + 7))
        planted["Lupus"] = lg[:5]
        task_info["Lupus"] = {"related_genes": lg[:4] + lg[50:53], "conditions": []}
        frames[("Lupus", "GSE400")] = make_cohort(rng, lg, n_lmm, planted["Lupus"], trait="Lupus",
                                                  batch_shift=1.5, effect=1.5)
        infos["Lupus"] = {"GSE400": info(n_lmm)}
    os.makedirs(os.path.join(root, "metadata"), exist_ok=True)
    with open(os.path.join(root, "metadata", "task_info.json"), "w") as f:
        json.dump(task_info, f, indent=2)
    for trait, recs in infos.items():
        d = os.path.join(out, "preprocess", trait)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cohort_info.json"), "w") as f:
            json.dump(recs, f, indent=2)
    for (trait, cid), df in frames.items():
        df.to_csv(os.path.join(out, "preprocess", trait, f"{cid}.csv"))
    return planted
