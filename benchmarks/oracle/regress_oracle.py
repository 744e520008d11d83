"""A plain, sequential re-statement of GenoTEX's regression stage (code/regress.py + tools/statistics.py).

Yardstick for the analysis engine: the same loop over problems, cohort choice by pandas ranking, the
seeded 5-fold CV over the alpha grid with scikit-learn's default Lasso (or sparse_lmm's LMM when the
eigen-gap rule fires), final fit, and the same output files.  Written independently of
genotex_dask.analysis on purpose: tests compare the engine's exact mode against this file.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, r2_score, recall_score
from sparse_lmm import LMM

ALPHAS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]


def problem_list(task_info):
    pairs = []
    for t in sorted(task_info):
        pairs.append((t, None))
        pairs.extend((t, c) for c in task_info[t]["conditions"])
    return pairs


def ranked(info_path, cond=None):
    with open(info_path) as f:
        info = json.load(f)
    df = pd.DataFrame.from_dict(info, orient="index").reset_index().rename(columns={"index": "cohort_id"})
    if df.empty:
        return df
    keep = df["is_usable"] == True  # noqa: E712
    if cond:
        keep = keep & (df["has_" + cond.lower()] == True)  # noqa: E712
    return df[keep].sort_values(by="sample_size", ascending=False)


def std_scale(a, b=None):
    mu = a.mean(axis=0)
    sd = a.std(axis=0)
    sd = np.where(sd == 0, 1, sd)
    return (a - mu) / sd, (None if b is None else (b - mu) / sd)


def has_batch(X):
    n = X.shape[0]
    c = X - X.mean(axis=0)
    ev = np.sort(np.linalg.eigvalsh(c @ c.T))[::-1][:10]
    ev = ev / ev[0]
    return any(ev[i] - ev[i + 1] > 200 / n for i in range(len(ev) - 1))


class Resid:
    def __init__(self, cls, alpha):
        self.m = cls(lamda=alpha) if cls is LMM else cls(alpha=alpha)
        self.bz = None

    def fit(self, X, y, z=None):
        y = y.reshape(-1, 1)
        if z is not None:
            z1 = np.column_stack((np.ones(len(z)), z.reshape(len(z), -1)))
            self.bz = np.linalg.pinv(z1.T @ z1) @ z1.T @ y
            y = y - z1 @ self.bz
        self.m.fit(X, y)
        b = self.m.coef_ if hasattr(self.m, "coef_") else self.m.getBeta()
        self.bx = np.asarray(b).ravel()
        return self

    def predict(self, X, z=None):
        out = self.m.predict(X)
        if z is not None:
            z1 = np.column_stack((np.ones(len(z)), z.reshape(len(z), -1)))
            out = out + z1 @ self.bz.ravel()
        return out

    def coefs(self):
        return self.bx if self.bz is None else np.concatenate((self.bz[1:].ravel(), self.bx))


def sig_genes(model, cols, trait, cond):
    names = [c for c in cols if c != trait]
    if cond:
        if cond in names:
            names.remove(cond)
        names = [cond] + names
    df = pd.DataFrame({"Variable": names, "Coefficient": model.coefs().tolist()})
    if cond is not None:
        df = df[df["Variable"] != cond]
    df = df[df["Coefficient"] != 0].copy()
    df["Absolute Coefficient"] = df["Coefficient"].abs()
    return df.sort_values("Absolute Coefficient", ascending=False).to_dict(orient="list")


def cv(cls, alpha, X, y, cols, trait, ref, cond=None, z=None):
    np.random.seed(42)
    idx = np.arange(len(X))
    np.random.shuffle(idx)
    fs = len(X) // 5
    binary = len(np.unique(y)) == 2
    genes = [c for c in cols if c not in (trait, cond)]
    ref = [g for g in ref if g in genes]
    rows = []
    for i in range(5):
        te = idx[i * fs:(i + 1) * fs]
        tr = np.setdiff1d(idx, te)
        Xtr, Xte = std_scale(X[tr], X[te])
        ztr = zte = None
        if z is not None:
            ztr, zte = std_scale(z[tr], z[te])
        m = Resid(cls, alpha).fit(Xtr, y[tr], ztr)
        p = m.predict(Xte, zte)
        if binary:
            p = (p > 0.5).astype(int)
            t = (y[te] > 0.5).astype(int)
            pred = {"accuracy": accuracy_score(t, p) * 100, "precision": precision_score(t, p, zero_division=0) * 100,
                    "recall": recall_score(t, p, zero_division=0) * 100, "f1": f1_score(t, p, zero_division=0) * 100}
        else:
            pred = {"nmse": np.sum((y[te] - p) ** 2) / np.sum((y[te] - y[te].mean()) ** 2),
                    "r_squared": r2_score(y[te], p)}
        got = sig_genes(m, cols, trait, cond)["Variable"]
        prec = sum(g in ref for g in got) / len(got) if got else 0
        rec = sum(g in got for g in ref) / len(ref) if ref else 0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0
        un = set(got) | set(ref)
        jac = len(set(got) & set(ref)) / len(un) if un else 0
        rows.append({"prediction": pred, "selection": {"precision": prec * 100, "recall": rec * 100,
                                                       "f1": f1 * 100, "jaccard": jac * 100}})
    return {k: {s: np.mean([r[k][s] for r in rows]) for s in rows[0][k]} for k in rows[0]}


def tune(cls, X, y, cols, trait, ref, cond=None, z=None):
    pm = "f1" if len(np.unique(y)) == 2 else "r_squared"
    bs, bp, best, perf = -np.inf, -np.inf, None, {}
    for a in ALPHAS:
        r = cv(cls, a, X, y, cols, trait, ref, cond, z)
        if r["prediction"][pm] > bp:
            bp = r["prediction"][pm]
            perf["prediction"] = r["prediction"]
        if r["selection"]["precision"] > bs:
            bs = r["selection"]["precision"]
            best = a
            perf["selection"] = r["selection"]
    if bs <= 0:
        best = 0.1
    return best, perf


def load(pre, trait, cohort):
    return pd.read_csv(os.path.join(pre, trait, cohort + ".csv"), index_col=0).astype("float")


def solve(pre, task_info, trait, cond):
    """One problem; returns the output dict or None when no cohort qualifies."""
    related = lambda e: task_info[e]["related_genes"] if e in task_info else []  # noqa: E731
    z = None
    if cond is None or cond in ("Age", "Gender"):
        r = ranked(os.path.join(pre, trait, "cohort_info.json"), cond)
        if r.empty:
            return None
        df = load(pre, trait, r.iloc[0]["cohort_id"])
        if cond is None:
            df = df.drop(columns=["Age", "Gender"], errors="ignore")
        else:
            other = "Age" if cond == "Gender" else "Gender"
            df = df.drop(columns=[other], errors="ignore")
    else:
        rt = ranked(os.path.join(pre, trait, "cohort_info.json"))
        rc = ranked(os.path.join(pre, cond, "cohort_info.json"))
        if rt.empty or rc.empty:
            return None
        pairs = pd.merge(rt.assign(key=1), rc.assign(key=1), on="key").drop(columns="key")
        pairs["sample_product"] = pairs["sample_size_x"] * pairs["sample_size_y"]
        pairs = pairs.sort_values(by="sample_product", ascending=False)
        found = None
        for _, row in pairs.iterrows():
            td = load(pre, trait, row["cohort_id_x"])
            cd = load(pre, cond, row["cohort_id_y"])
            common = (set(td.columns) - {"Age", "Gender", trait}) & (set(cd.columns) - {"Age", "Gender", cond})
            regs = [g for g in related(cond) if g in common] if common and related(cond) else []
            if regs:
                found = (td, cd, regs)
                break
        if found is None:
            return None
        df, cd, regs = found
        df = df.drop(columns=["Age", "Gender"], errors="ignore")
        xc, yc = cd[regs].values, cd[cond].values
        binary = len(np.unique(yc)) == 2
        wide = xc.shape[1] > xc.shape[0]
        if binary:
            cm = LogisticRegression(penalty="l1", solver="liblinear", random_state=42) if wide else LogisticRegression()
        else:
            cm = Lasso() if wide else LinearRegression()
        cm.fit(std_scale(xc)[0], yc)
        xt = std_scale(df[regs].values)[0]
        df[cond] = cm.predict_proba(xt)[:, 1] if binary else cm.predict(xt)
    y = df[trait].values
    if cond is None:
        X = df.drop(columns=[trait]).values
    else:
        z = df[cond].values
        X = df.drop(columns=[trait, cond]).values
    cls = LMM if has_batch(X) else Lasso
    cols = df.columns.tolist()
    best, perf = tune(cls, X, y, cols, trait, related(trait), cond, z)
    m = Resid(cls, best).fit(std_scale(X)[0], y, None if z is None else std_scale(z)[0])
    return {"significant_genes": sig_genes(m, cols, trait, cond), "cv_performance": perf}


def run(root, out):
    """Every problem of ROOT/metadata/task_info.json from OUT/preprocess into OUT/regress (like regress.py)."""
    warnings.simplefilter("ignore", ConvergenceWarning)
    with open(os.path.join(root, "metadata", "task_info.json")) as f:
        task_info = json.load(f)
    pre = os.path.join(out, "preprocess")
    done = []
    for trait, cond in problem_list(task_info):
        try:
            res = solve(pre, task_info, trait, cond)
        except Exception as e:  # the reference prints and moves on
            print(f"oracle: {trait}/{cond} failed: {e!r}")
            continue
        if res is None:
            continue
        d = os.path.join(out, "regress", trait)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"significant_genes_condition_{cond}.json"), "w") as f:
            json.dump(res, f, indent=4)
        done.append((trait, cond))
    return done
