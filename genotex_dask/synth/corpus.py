"""Synthetic GenoTEX corpus in the real file formats, with a planted truth.

Why: the engine must be tested and benchmarked on data that looks like GEO/TCGA downloads (quoted series-matrix
rows, family SOFT platform tables, Xena matrices, messy characteristics), at any scale, with answers we know.
Every cohort is generated from its own random stream (``SeedSequence([seed, trait, cohort])``), written one at
a time (memory bounded by one cohort), gzip'ed with ``mtime=0`` so the bytes depend only on the seed.

Layout written under ``out`` (GenoTEX's):
``input/GEO/<Trait>/<GSE>/<GSE>[-<GPL>]_series_matrix.txt.gz`` + ``<GSE>_family.soft.gz``,
``input/TCGA/TCGA_<Trait>_(<CODE>)/TCGA.<CODE>.sampleMap_<CODE>_clinicalMatrix`` + ``..._HiSeqV2_PANCAN.gz``,
``metadata/task_info.json``, ``metadata/gene_synonym.json``, ``truth.json``, ``synth_summary.json``.

``truth.json`` follows the shared contract (seed, params, cohorts, problems, trait_genes) and adds, per cohort:
``scenario``, ``matrix_files``, ``n_cases``/``n_controls``, ``has_age``/``has_gender``, ``trait_row``/``age_row``/
``gender_row`` (0-based index among the ``!Sample_characteristics_ch1`` rows, None elsewhere); per two-step problem
``condition_genes``; and top-level ``covariate_genes`` (Age, Gender), ``alias_planted`` (the planted gene each trait
has under an alias on the first platform) and ``platforms``.  ``trait_values``/``gender_values`` keys are the raw
cells exactly as written (``"disease state: RA"``, a whole source name or title, ``"MALE"``); for TCGA the trait
keys are the barcode's sample-type code (``"01"``, ``"11"``).

Expression model (log2 scale): per gene a baseline (5-12) and noise level; per probe an offset and noise;
trait genes shift with the trait (1-2 log2 units), condition genes with a latent condition status that is
correlated with the trait, age genes with age, sex genes (XIST vs Y genes) with gender, and some cohorts carry a
strong two-cluster batch shift over 40% of the genes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from genotex_dask import layout
from genotex_dask.io import fs

# ---- catalogue of trait names and their label vocabularies -------------------------------------------------

# (trait, abbreviation, long name, tissue, TCGA code or None)
_NON_CANCER = [
    ("Rheumatoid_Arthritis", "RA", "rheumatoid arthritis", "synovial tissue"),
    ("Psoriasis", "PsO", "psoriasis", "skin biopsy"),
    ("Type_2_Diabetes", "T2D", "type 2 diabetes", "pancreatic islets"),
    ("Asthma", "asthma", "asthma", "bronchial epithelium"),
    ("Crohns_Disease", "CD", "Crohn's disease", "ileal mucosa"),
    ("Alzheimers_Disease", "AD", "Alzheimer's disease", "prefrontal cortex"),
    ("Systemic_Lupus_Erythematosus", "SLE", "systemic lupus erythematosus", "whole blood"),
    ("Osteoarthritis", "OA", "osteoarthritis", "articular cartilage"),
    ("Multiple_Sclerosis", "MS", "multiple sclerosis", "PBMC"),
    ("Obesity", "obese", "obesity", "subcutaneous adipose tissue"),
    ("Atherosclerosis", "plaque", "atherosclerosis", "carotid artery"),
    ("Parkinsons_Disease", "PD", "Parkinson's disease", "substantia nigra"),
]
_CANCER = [
    ("Kidney_Clear_Cell_Carcinoma", "ccRCC", "clear cell renal cell carcinoma", "kidney", "KIRC"),
    ("Bile_Duct_Cancer", "CCA", "cholangiocarcinoma", "bile duct", "CHOL"),
    ("Lung_Adenocarcinoma", "LUAD", "lung adenocarcinoma", "lung", "LUAD"),
    ("Breast_Cancer", "BC", "breast carcinoma", "breast", "BRCA"),
    ("Colon_Adenocarcinoma", "CRC", "colon adenocarcinoma", "colon", "COAD"),
    ("Liver_Cancer", "HCC", "hepatocellular carcinoma", "liver", "LIHC"),
    ("Prostate_Cancer", "PCa", "prostate adenocarcinoma", "prostate", "PRAD"),
    ("Thyroid_Cancer", "PTC", "papillary thyroid carcinoma", "thyroid", "THCA"),
]

SEX_FEMALE_GENES = ("XIST",)
SEX_MALE_GENES = ("RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY")
# Affymetrix control probe sets: the same IDs sit on several Affymetrix platforms; four carry a human gene.
AFFX_CONTROLS = (
    ("AFFX-BioB-3_at", ""), ("AFFX-BioB-5_at", ""), ("AFFX-BioB-M_at", ""), ("AFFX-BioC-3_at", ""),
    ("AFFX-BioC-5_at", ""), ("AFFX-BioDn-3_at", ""), ("AFFX-BioDn-5_at", ""), ("AFFX-CreX-3_at", ""),
    ("AFFX-CreX-5_at", ""), ("AFFX-DapX-3_at", ""), ("AFFX-LysX-3_at", ""), ("AFFX-PheX-3_at", ""),
    ("AFFX-ThrX-3_at", ""), ("AFFX-TrpnX-3_at", ""),
    ("AFFX-HUMGAPDH/M33197_3_at", "GAPDH"), ("AFFX-HUMGAPDH/M33197_5_at", "GAPDH"),
    ("AFFX-HSAC07/X00351_3_at", "ACTB"), ("AFFX-HSAC07/X00351_5_at", "ACTB"),
    ("AFFX-HUMISGF3A/M97935_3_at", "STAT1"), ("AFFX-HUMRGE/M10098_3_at", ""),
    ("AFFX-M27830_3_at", ""), ("AFFX-HUMTFRR/M11507_3_at", "TFRC"),
)
PLATFORM_KINDS = ("affy", "gene_assignment", "illumina")

# GEO cohorts j >= 1 of a trait cycle through these scenarios (j == 0 is always a usable characteristics
# cohort with age and gender), so that even a 3 x 3 corpus holds most kinds.
SCENARIO_CYCLE = ("tcga", "source_name", "too_few", "multi_platform", "no_trait", "tcga_biased", "all_cases",
                  "characteristics_only", "title")
# Scenarios whose cohort fails GenoTEX's usability checks (``_usability`` gives the reason): analysis never
# selects them, so a trait's regressions run on its largest cohort outside this set.
UNUSABLE_SCENARIOS = frozenset({"no_trait", "all_cases", "too_few", "tcga_biased"})
N_TRAIT_GENES = 10
N_DISTRACTORS = 4
N_UNMEASURED = 2
N_AGE_GENES = 8
TRAIT_EFFECT = (1.0, 2.0)
SEX_EFFECT = 4.0
AGE_SLOPE = 0.04  # log2 units per year
BATCH_SHIFT_SD = 2.0
BATCH_GENE_FRACTION = 0.4
# Shared biological variation: a few co-expression factors with smoothly decreasing strength, so that the
# eigenvalue spectrum of a cohort without batch has no big first gap (as in real data) while a batch does.
FACTOR_SD = (0.2, 0.17, 0.15, 0.13, 0.11, 0.09)

# Measured on this generator's output at 54,675 probes x 167 samples, gzip level 6 (bytes of gz per matrix
# cell, per platform-annotation row, per sample header, per cell of a full ^SAMPLE table); plan_corpus uses
# them to estimate the volume without writing anything.
_GZ_BYTES_PER_CELL = 2.89
_GZ_BYTES_PER_ANNOT_ROW = 38.4
_GZ_BYTES_PER_SAMPLE = 700.0
_GZ_BYTES_PER_SOFT_CELL = 6.35
XENA_GENES = 20530  # genes in a real Xena HiSeqV2_PANCAN matrix


@dataclass(frozen=True)
class Gene:
    symbol: str
    aliases: tuple[str, ...]
    entrez: int
    refseq: str


@lru_cache(maxsize=1)
def gene_table() -> tuple[Gene, ...]:
    """The shipped real gene/alias table (see make_gene_table.py for its source)."""
    raw = resources.files("genotex_dask.synth").joinpath("genes.tsv.gz").read_bytes()
    rows = gzip.decompress(raw).decode().splitlines()[1:]
    out = []
    for i, line in enumerate(rows):
        sym, _, al = line.partition("\t")
        # Entrez IDs and RefSeq accessions are not in the table: deterministic stand-ins.
        out.append(Gene(sym, tuple(a for a in al.split("|") if a), 1000 + 17 * i, f"NM_{100000 + 31 * i:06d}"))
    return tuple(out)


# ---- the plan ----------------------------------------------------------------------------------------------

@dataclass
class CohortPlan:
    trait: str
    trait_index: int
    cohort_index: int
    cohort: str
    kind: str  # GEO | TCGA
    scenario: str
    n_samples: int
    platforms: list[str]
    input_dir: str
    batch_effect: bool
    n_features: int
    est_gz_bytes: int = 0
    est_gz_bytes_full_soft: int = 0


@dataclass
class TraitPlan:
    name: str
    abbr: str
    long_name: str
    tissue: str
    tcga_code: str | None
    conditions: list[str] = field(default_factory=list)
    cancer: bool | None = None  # None: a cancer trait iff it has a TCGA code (the genotex preset sets it)

    @property
    def is_cancer(self) -> bool:
        return self.tcga_code is not None if self.cancer is None else self.cancer


def _trait_names(n: int, cancer_flags: list[bool], exclude: frozenset[str] = frozenset()) -> list[TraitPlan]:
    """Trait names in a fixed order; names in ``exclude`` (e.g. real cohorts' traits merged in) are skipped."""
    out, nc, c = [], 0, 0
    for t in range(n):
        while True:
            if cancer_flags[t]:
                name, abbr, long, tissue, code = _CANCER[c % len(_CANCER)]
                k = c // len(_CANCER)
                c += 1
                if k:
                    name, code = f"{name}_{k + 1}", f"{code}{k + 1}"
                plan = TraitPlan(name, abbr, long, tissue, code)
            else:
                name, abbr, long, tissue = _NON_CANCER[nc % len(_NON_CANCER)]
                k = nc // len(_NON_CANCER)
                nc += 1
                if k:
                    name = f"{name}_{k + 1}"
                plan = TraitPlan(name, abbr, long, tissue, None)
            if plan.name not in exclude:
                break
        out.append(plan)
    return out


def _scenarios(traits: int, cohorts_per_trait: int, platforms: int) -> list[list[str]]:
    out, g = [], 0
    for _t in range(traits):
        row = ["characteristics"]
        for _j in range(1, cohorts_per_trait):
            s = SCENARIO_CYCLE[g % len(SCENARIO_CYCLE)]
            g += 1
            if s.startswith("tcga") and any(x.startswith("tcga") for x in row):
                s = "characteristics_only"
            if s == "multi_platform" and platforms < 2:
                s = "title"
            row.append(s)
        out.append(row)
    return out


def _platform_ids(platforms: int) -> list[tuple[str, str]]:
    return [(f"GPL{90001 + 7 * k}", PLATFORM_KINDS[k % len(PLATFORM_KINDS)]) for k in range(platforms)]


def plan_corpus(traits: int = 4, cohorts_per_trait: int = 3, samples: int = 40, probes: int = 2000,
                platforms: int = 2, seed: int = 0, *, vary_samples: bool = True,
                exclude_traits: tuple[str, ...] = ()) -> dict:
    """The cheap plan: traits, platforms and every cohort with its size, plus an estimate of the gz volume.

    Nothing is generated; a benchmark can size the full GenoTEX scale (132 traits, ~7 cohorts each) from it.
    ``samples`` is the mean cohort size (each cohort drawn within +-30%) unless ``vary_samples`` is False.
    """
    if traits < 1 or cohorts_per_trait < 1 or samples < 12 or platforms < 1:
        raise ValueError("need traits >= 1, cohorts_per_trait >= 1, samples >= 12, platforms >= 1")
    scen = _scenarios(traits, cohorts_per_trait, platforms)
    tplans = _trait_names(traits, [any(s.startswith("tcga") for s in row) for row in scen],
                          frozenset(exclude_traits))
    for t, tp in enumerate(tplans):
        tp.conditions = ["Age", "Gender"] if t % 3 != 2 else ["Gender"]
        if traits >= 2 and t % 2 == 0:
            tp.conditions.append(tplans[(t + 1) % traits].name)
    gpls = _platform_ids(platforms)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    cohorts: list[CohortPlan] = []
    gse = 100000 + int(rng.integers(0, 50000))
    for t, tp in enumerate(tplans):
        for j, s in enumerate(scen[t]):
            u = rng.uniform(0.7, 1.3)
            n = int(round(samples * u)) if vary_samples else samples
            n = max(n, 25 if s == "too_few" else 12)
            if s.startswith("tcga"):
                d = f"TCGA_{tp.name}_({tp.tcga_code})"
                c = CohortPlan(tp.name, t, j, layout.TCGA_COHORT_ID, "TCGA", s, n, [], f"input/TCGA/{d}",
                               False, min(probes, XENA_GENES))
            else:
                gse += int(rng.integers(3, 400))
                k = (t * cohorts_per_trait + j) % platforms
                pl = [gpls[0][0], gpls[1][0]] if s == "multi_platform" else [gpls[k][0]]
                batch = (s == "characteristics" and t % 2 == 1) or (s == "characteristics_only")
                c = CohortPlan(tp.name, t, j, f"GSE{gse}", "GEO", s, n, pl,
                               f"input/GEO/{tp.name}/GSE{gse}", batch, probes)
            cells = c.n_samples * c.n_features * max(1, len(c.platforms))
            annot = c.n_features * len(c.platforms)
            c.est_gz_bytes = int(cells * _GZ_BYTES_PER_CELL + annot * _GZ_BYTES_PER_ANNOT_ROW
                                 + c.n_samples * max(1, len(c.platforms)) * _GZ_BYTES_PER_SAMPLE)
            c.est_gz_bytes_full_soft = c.est_gz_bytes + (int(cells * _GZ_BYTES_PER_SOFT_CELL) if c.kind == "GEO"
                                                         else 0)
            cohorts.append(c)
    return {"seed": seed,
            "params": {"traits": traits, "cohorts_per_trait": cohorts_per_trait, "samples": samples,
                       "probes": probes, "platforms": platforms, "seed": seed, "vary_samples": vary_samples,
                       **({"exclude_traits": sorted(exclude_traits)} if exclude_traits else {})},
            "traits": [asdict(tp) for tp in tplans], "platforms": [{"id": g, "kind": k} for g, k in gpls],
            "cohorts": [asdict(c) for c in cohorts],
            "estimated_gz_bytes": int(sum(c.est_gz_bytes for c in cohorts)),
            "estimated_gz_bytes_full_soft": int(sum(c.est_gz_bytes_full_soft for c in cohorts))}


# ---- the GenoTEX-scale preset ------------------------------------------------------------------------------

# (synthetic ID, kind, probes, like, share of GEO cohorts): sizes of the real platforms most GenoTEX cohorts use.
GENOTEX_PLATFORMS = (
    ("GPL90001", "affy", 54675, "GPL570", 0.38),
    ("GPL90008", "gene_assignment", 33297, "GPL6244", 0.14),
    ("GPL90015", "illumina", 47231, "GPL10558", 0.14),
    ("GPL90022", "affy", 22283, "GPL96", 0.12),
    ("GPL90029", "illumina", 48803, "GPL6947", 0.08),
    ("GPL90036", "affy", 22277, "GPL571", 0.06),
    ("GPL90043", "gene_assignment", 70523, "GPL17586", 0.08),
)
GENOTEX_TRAITS = 132
GENOTEX_COHORTS = 911  # one TCGA cohort per trait, the rest GEO
GENOTEX_PROBLEMS = 1384  # 132 unconditional + Age and Gender for every trait + 988 conditioned on another trait
GENOTEX_CLASSES = 8  # a trait's condition traits share its index modulo 8: 1/8, 1/4, 1/2 samples stay closed
_GENOTEX_GEO_SCENARIOS = tuple(s for s in SCENARIO_CYCLE if not s.startswith("tcga"))


def _fraction_step(fraction: float) -> int:
    step = round(1.0 / fraction) if fraction > 0 else 0
    if step < 1 or abs(step * fraction - 1.0) > 1e-9:
        raise ValueError(f"fraction must be 1/k for an integer k >= 1, not {fraction}")
    return step


def plan_genotex(seed: int = 0, fraction: float = 1.0) -> dict:
    """GenoTEX's shape: 132 traits, 911 cohorts (one TCGA per trait), 1,384 problems, samples per cohort with mean
    ~167 (TCGA up to ~1,200), the real platforms' sizes.  ``fraction`` 1/k keeps every k-th trait with all its
    cohorts and problems (traits alternate cancer/non-cancer and cohort sizes within each residue class, so the
    sample is stratified); the kept cohorts are byte-identical to the full corpus's, and for k in 1, 2, 4, 8
    every condition trait of a kept trait is kept too.
    """
    step = _fraction_step(fraction)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    flags = [(t // GENOTEX_CLASSES) % 3 == 0 for t in range(GENOTEX_TRAITS)]  # ~1/3 cancers, in every class
    tplans = _trait_names(GENOTEX_TRAITS, flags)
    non_cancer_codes = 0
    for t, tp in enumerate(tplans):
        tp.cancer = flags[t]
        if tp.tcga_code is None:  # every trait gets its nearest TCGA cohort, as GenoTEX pairs them
            non_cancer_codes += 1
            tp.tcga_code = f"SYN{non_cancer_codes}"
    n_other = GENOTEX_PROBLEMS - 3 * GENOTEX_TRAITS  # 988 conditions on another trait
    k_other = np.full(GENOTEX_TRAITS, n_other // GENOTEX_TRAITS)
    k_other[rng.permutation(GENOTEX_TRAITS)[: n_other - int(k_other.sum())]] += 1
    for t, tp in enumerate(tplans):
        mates = [u for u in range(GENOTEX_TRAITS) if u != t and u % GENOTEX_CLASSES == t % GENOTEX_CLASSES]
        pick = sorted(rng.choice(len(mates), min(int(k_other[t]), len(mates)), replace=False).tolist())
        tp.conditions = ["Age", "Gender"] + [tplans[mates[i]].name for i in pick]
    n_geo = GENOTEX_COHORTS - GENOTEX_TRAITS
    per_trait = 1 + rng.multinomial(n_geo - GENOTEX_TRAITS, rng.dirichlet(np.full(GENOTEX_TRAITS, 3.0)))
    shares = np.array([p[4] for p in GENOTEX_PLATFORMS])
    cohorts: list[CohortPlan] = []
    gse = 100000 + int(rng.integers(0, 50000))
    g = 0
    for t, tp in enumerate(tplans):
        n = int(np.clip(round(rng.lognormal(np.log(330), 0.75)), 40, 1220))
        cohorts.append(CohortPlan(tp.name, t, 0, layout.TCGA_COHORT_ID, "TCGA", "tcga", n, [],
                                  f"input/TCGA/TCGA_{tp.name}_({tp.tcga_code})", False, XENA_GENES))
        for j in range(1, 1 + int(per_trait[t])):
            s = "characteristics" if j == 1 else _GENOTEX_GEO_SCENARIOS[g % len(_GENOTEX_GEO_SCENARIOS)]
            g += j > 1
            n = int(np.clip(round(rng.lognormal(np.log(84), 0.95)), 12, 1500))
            n = max(n, 25) if s == "too_few" else n
            gse += int(rng.integers(3, 400))
            k = int(rng.choice(len(GENOTEX_PLATFORMS), p=shares / shares.sum()))
            pl = [GENOTEX_PLATFORMS[k][0]]
            if s == "multi_platform":
                pl.append(GENOTEX_PLATFORMS[(k + 1) % len(GENOTEX_PLATFORMS)][0])
            batch = (s == "characteristics" and t % 2 == 1) or s == "characteristics_only"
            cohorts.append(CohortPlan(tp.name, t, j, f"GSE{gse}", "GEO", s, n, pl, f"input/GEO/{tp.name}/GSE{gse}",
                                      batch, GENOTEX_PLATFORMS[k][2]))
    sizes = {p[0]: p[2] for p in GENOTEX_PLATFORMS}
    for c in cohorts:
        feats = [sizes[p] for p in c.platforms] or [c.n_features]
        cells = c.n_samples * sum(feats)
        c.est_gz_bytes = int(cells * _GZ_BYTES_PER_CELL + sum(feats) * _GZ_BYTES_PER_ANNOT_ROW * bool(c.platforms)
                             + c.n_samples * max(1, len(c.platforms)) * _GZ_BYTES_PER_SAMPLE)
        c.est_gz_bytes_full_soft = c.est_gz_bytes + (int(cells * _GZ_BYTES_PER_SOFT_CELL) if c.kind == "GEO" else 0)
    keep = {t for t in range(GENOTEX_TRAITS) if t % step == 0}
    kept = [c for c in cohorts if c.trait_index in keep]
    # GSM numbers as the full corpus assigns them (a sample's cohorts keep their bytes)
    gsm_start, gsm = {}, 100000 + 1000 * (seed % 1000)
    for c in cohorts:
        if c.kind == "GEO":
            gsm_start[f"{c.trait}/{c.cohort}"] = gsm
            gsm += c.n_samples * len(c.platforms) + 17
    kept_names = {tplans[t].name for t in keep}
    n_all = [c.n_samples for c in cohorts]
    return {"seed": seed,
            "params": {"scale": "genotex", "fraction": f"1/{step}", "seed": seed},
            "traits": [asdict(tp) for tp in tplans], "kept_traits": sorted(kept_names),
            "platforms": [{"id": p[0], "kind": p[1], "probes": p[2], "like": p[3]} for p in GENOTEX_PLATFORMS],
            "cohorts": [asdict(c) for c in kept], "gsm_start": gsm_start,
            "full_shape": {"traits": GENOTEX_TRAITS, "cohorts": len(cohorts),
                           "problems": GENOTEX_TRAITS + sum(len(tp.conditions) for tp in tplans),
                           "mean_samples": round(float(np.mean(n_all)), 1),
                           "max_tcga_samples": max(c.n_samples for c in cohorts if c.kind == "TCGA"),
                           "estimated_gz_bytes": int(sum(c.est_gz_bytes for c in cohorts))},
            "estimated_gz_bytes": int(sum(c.est_gz_bytes for c in kept)),
            "estimated_gz_bytes_full_soft": int(sum(c.est_gz_bytes_full_soft for c in kept))}


# ---- gene roles (corpus-wide) ------------------------------------------------------------------------------

@dataclass
class Roles:
    """Which real genes play which part, and the per-gene expression parameters (indices into gene_table())."""

    index: dict[str, int]
    mu: np.ndarray
    sd: np.ndarray
    female: list[int]
    male: list[int]
    controls: list[int]
    age: list[int]
    age_slope: np.ndarray
    trait_genes: dict[str, list[int]]
    trait_effect: dict[str, np.ndarray]
    distractors: dict[str, list[int]]
    unmeasured: dict[str, list[int]]
    alias_planted: dict[str, int]  # trait -> planted gene annotated by an alias on the first platform
    loadings: np.ndarray  # factors x genes

    @property
    def core(self) -> list[int]:
        out = self.female + self.male + self.controls + self.age
        for t in self.trait_genes:
            out += self.trait_genes[t] + self.distractors[t]
        return out


def _roles(trait_names: list[str], seed: int) -> Roles:
    genes = gene_table()
    index = {g.symbol: i for i, g in enumerate(genes)}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    mu = rng.uniform(5.0, 12.0, len(genes))
    sd = rng.uniform(0.15, 0.5, len(genes))
    female = [index[s] for s in SEX_FEMALE_GENES]
    male = [index[s] for s in SEX_MALE_GENES]
    controls = [index[s] for s in ("GAPDH", "ACTB", "STAT1", "TFRC")]
    fixed = set(female + male + controls)
    # planted genes come from better-known genes (two or more recorded aliases), in a seeded random order
    pool = [i for i in rng.permutation(len(genes)).tolist() if i not in fixed and len(genes[i].aliases) >= 2]
    need = N_AGE_GENES + len(trait_names) * (N_TRAIT_GENES + N_DISTRACTORS + N_UNMEASURED)
    if need > len(pool):
        raise ValueError(f"{len(trait_names)} traits need {need} distinct genes; the table has {len(pool)}")
    age, pos = pool[:N_AGE_GENES], N_AGE_GENES
    tg, te, dis, unm, alias_planted = {}, {}, {}, {}, {}
    for t in trait_names:
        tg[t] = pool[pos:pos + N_TRAIT_GENES]
        pos += N_TRAIT_GENES
        te[t] = rng.choice([-1.0, 1.0], N_TRAIT_GENES) * rng.uniform(*TRAIT_EFFECT, N_TRAIT_GENES)
        dis[t] = pool[pos:pos + N_DISTRACTORS]
        pos += N_DISTRACTORS
        unm[t] = pool[pos:pos + N_UNMEASURED]
        pos += N_UNMEASURED
        with_alias = [g for g in tg[t] if unique_aliases(genes[g])]
        if with_alias:
            alias_planted[t] = with_alias[0]
    slope = rng.choice([-1.0, 1.0], N_AGE_GENES) * AGE_SLOPE * rng.uniform(0.7, 1.3, N_AGE_GENES)
    loadings = rng.standard_normal((len(FACTOR_SD), len(genes))) * np.array(FACTOR_SD)[:, None]
    return Roles(index, mu, sd, female, male, controls, age, slope, tg, te, dis, unm, alias_planted, loadings)


# ---- platforms ---------------------------------------------------------------------------------------------

@dataclass
class Platform:
    gpl: str
    kind: str
    ids: list[str]
    gene: np.ndarray          # primary gene index per probe (-1: no gene, the probe measures background)
    symbols: list[list[str]]  # annotated symbols per probe (official, alias, LOC..., or none)
    offset: np.ndarray
    noise: np.ndarray
    table: bytes              # the SOFT platform section (attributes + table), uncompressed


_TITLE_WORDS = ("solute carrier family", "zinc finger protein", "kinase", "receptor", "transmembrane protein",
                "ribosomal protein", "coiled-coil domain containing", "family with sequence similarity",
                "ubiquitin specific peptidase", "transcription factor", "potassium channel", "phosphatase",
                "collagen type", "keratin", "interleukin", "chemokine ligand", "cadherin", "integrin subunit")
_GO = ("0006468 // protein phosphorylation // inferred from electronic annotation",
       "0005634 // nucleus // inferred from direct assay",
       "0005515 // protein binding // inferred from physical interaction",
       "0006355 // regulation of transcription, DNA-templated // inferred from electronic annotation",
       "0016021 // integral component of membrane // inferred from electronic annotation")


def _title(i: int) -> str:
    return f"{_TITLE_WORDS[i % len(_TITLE_WORDS)]} {1 + (i * 7) % 97}"


def _cyto(i: int) -> str:
    chrom = 1 + i % 22
    return f"{chrom}{'pq'[i % 2]}{11 + i % 25}.{1 + i % 3}"


def _build_platform(k: int, gpl: str, kind: str, probes: int, roles: Roles, seed: int) -> Platform:
    genes = gene_table()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, k]))
    controls = AFFX_CONTROLS if kind in ("affy", "gene_assignment") else ()
    n_rest = probes - len(controls)
    core = roles.core
    n_unmapped = int(0.04 * n_rest)
    n_distinct = min(int(0.8 * n_rest), len(genes) - sum(len(v) for v in roles.unmeasured.values()))
    if n_rest - n_unmapped < len(core) + 10:
        raise ValueError(f"platform {gpl}: {probes} probes cannot hold the {len(core)} planted/core genes")
    n_distinct = max(n_distinct, len(core))
    excluded = set(core) | {g for v in roles.unmeasured.values() for g in v}
    others = np.array([i for i in range(len(genes)) if i not in excluded])
    extra = rng.choice(others, n_distinct - len(core), replace=False).tolist()
    distinct = core + sorted(extra)
    dup = rng.choice(np.array(distinct), n_rest - n_unmapped - len(distinct), replace=True).tolist()
    prim = distinct + dup + [-1] * n_unmapped
    order = rng.permutation(len(prim))
    prim = [prim[i] for i in order]
    core_set = set(core)
    symbols: list[list[str]] = []
    for g in prim:
        if g < 0:
            symbols.append([])
            continue
        sym = genes[g].symbol
        u = rng.random()
        if g not in core_set and unique_aliases(genes[g]) and u < 0.03:
            al = unique_aliases(genes[g])
            symbols.append([al[int(rng.integers(len(al)))]])
        elif kind != "illumina" and g not in core_set and u < 0.06:
            other = int(others[rng.integers(len(others))])
            symbols.append([sym, genes[other].symbol])
        elif kind != "illumina" and g not in core_set and u < 0.07:
            symbols.append([sym, f"LOC{100130000 + int(rng.integers(0, 9999))}"])
        else:
            symbols.append([sym])
    if k == 0:  # one planted gene per trait is known on this platform only by an alias
        for g in roles.alias_planted.values():
            pos = prim.index(g)
            symbols[pos] = [unique_aliases(genes[g])[0]]
    # probe IDs in the platform's style
    if kind == "affy":
        suffix = ("_at", "_s_at", "_x_at", "_a_at")
        base = 200000 if k < len(PLATFORM_KINDS) else 1550000 + 100000 * (k // len(PLATFORM_KINDS))
        ids = [f"{base + 3 * i}{suffix[int(rng.integers(4))] if prim[i] >= 0 else '_at'}"
               for i in range(len(prim))]
    elif kind == "gene_assignment":
        ids = [f"TC{1 + i % 22:02d}{1000000 + i:07d}.hg.1" for i in range(len(prim))]
    else:
        ids = [f"ILMN_{1651199 + 11 * i}" for i in range(len(prim))]
    ctrl_gene = [roles.index[s] if s else -1 for _, s in controls]
    ids = [c for c, _ in controls] + ids
    prim = ctrl_gene + prim
    symbols = [[s] if s else [] for _, s in controls] + symbols
    offset = rng.normal(0.0, 0.4, len(ids))
    noise = rng.uniform(0.1, 0.35, len(ids))
    offset[: len(controls)] += 2.0
    # sort by ID as GEO tables are
    srt = sorted(range(len(ids)), key=lambda i: ids[i])
    ids = [ids[i] for i in srt]
    gene_arr = np.array([prim[i] for i in srt], dtype=np.int64)
    symbols = [symbols[i] for i in srt]
    table = _render_platform(gpl, kind, ids, symbols, [c for c, _ in controls], rng)
    return Platform(gpl, kind, ids, gene_arr, symbols, offset[srt], noise[srt], table)


@lru_cache(maxsize=1)
def _alias_counts() -> dict[str, int]:
    out: dict[str, int] = {}
    for g in gene_table():
        for a in g.aliases:
            out[a.upper()] = out.get(a.upper(), 0) + 1
    return out


@cache
def unique_aliases(g: Gene) -> tuple[str, ...]:
    """Aliases of ``g`` that no other gene of the table shares (they normalize back to ``g`` unambiguously)."""
    counts = _alias_counts()
    return tuple(a for a in g.aliases if counts[a.upper()] == 1)


def _gene_of(sym: str) -> Gene | None:
    idx = _symbol_index().get(sym)
    return gene_table()[idx] if idx is not None else None


@lru_cache(maxsize=1)
def _symbol_index() -> dict[str, int]:
    out = {}
    genes = gene_table()
    for i, g in enumerate(genes):
        out[g.symbol] = i
    for i, g in enumerate(genes):
        for a in g.aliases:
            out.setdefault(a, i)
    return out


_AFFY_COLS = ("ID", "GB_ACC", "SPOT_ID", "Species Scientific Name", "Annotation Date", "Sequence Type",
              "Sequence Source", "Target Description", "Representative Public ID", "Gene Title", "Gene Symbol",
              "ENTREZ_GENE_ID", "RefSeq Transcript ID", "Gene Ontology Biological Process",
              "Gene Ontology Cellular Component", "Gene Ontology Molecular Function")
_GA_COLS = ("ID", "GB_LIST", "SPOT_ID", "seqname", "RANGE_GB", "RANGE_STRAND", "RANGE_START", "RANGE_STOP",
            "total_probes", "gene_assignment", "mrna_assignment", "category")
_ILMN_COLS = ("ID", "Species", "Source", "Search_Key", "Transcript", "ILMN_Gene", "Source_Reference_ID",
              "RefSeq_ID", "Entrez_Gene_ID", "Symbol", "Probe_Type", "Chromosome", "Cytoband", "Definition",
              "Synonyms")
_COL_DOC = {
    "ID": "Probe set identifier", "GB_ACC": "GenBank Accession Number", "SPOT_ID": "identifies controls",
    "Gene Symbol": "A gene symbol, when one is available (from UniGene).",
    "ENTREZ_GENE_ID": 'Entrez Gene Database UID DELIMIT:" /// "',
    "gene_assignment": "Gene assignment: accession // symbol // description // cytoband // Entrez ID, "
                       "multiple assignments separated by ///",
    "Symbol": "Gene symbol", "Synonyms": "Gene synonyms",
}


def _render_platform(gpl: str, kind: str, ids: list[str], symbols: list[list[str]], controls: list[str],
                     rng: np.random.Generator) -> bytes:
    ctrl = set(controls)
    head = {
        "affy": ("[HG-SYN-A] Affymetrix Human Genome Synthetic Array", "Affymetrix", _AFFY_COLS),
        "gene_assignment": ("[HTA-SYN] Affymetrix Human Transcriptome Synthetic Array [transcript (gene) "
                            "version]", "Affymetrix", _GA_COLS),
        "illumina": ("Illumina HumanHT-SYN V4.0 expression beadchip", "Illumina Inc.", _ILMN_COLS),
    }[kind]
    out = io.StringIO()
    w = out.write
    w(f"^PLATFORM = {gpl}\n!Platform_title = {head[0]}\n!Platform_geo_accession = {gpl}\n")
    w("!Platform_status = Public on Mar 11 2012\n!Platform_submission_date = Feb 19 2012\n")
    w("!Platform_last_update_date = Jun 03 2019\n")
    w(f"!Platform_technology = {'oligonucleotide beads' if kind == 'illumina' else 'in situ oligonucleotide'}\n")
    w("!Platform_distribution = commercial\n!Platform_organism = Homo sapiens\n!Platform_taxid = 9606\n")
    w(f"!Platform_manufacturer = {head[1]}\n!Platform_manufacture_protocol = see manufacturer's web site\n")
    w("!Platform_description = Synthetic platform written by genotex_dask.synth (not a real GEO record).\n")
    w("!Platform_description = \n")
    w(f"!Platform_data_row_count = {len(ids)}\n")
    for c in head[2]:
        w(f"#{c} = {_COL_DOC.get(c, '')}\n")
    w("!platform_table_begin\n" + "\t".join(head[2]) + "\n")
    for i, (pid, syms) in enumerate(zip(ids, symbols)):
        gs = [_gene_of(s) for s in syms]
        real = [g for g in gs if g is not None]
        acc = real[0].refseq if real else ""
        g0 = real[0] if real else None
        titles = [_title(_symbol_index()[g.symbol]) for g in real]
        if kind == "affy":
            row = (pid, acc, "--Control" if pid in ctrl else "", "Homo sapiens", "Mar 11, 2009",
                   "Control sequence" if pid in ctrl else ("Exemplar sequence" if i % 3 else "Consensus sequence"),
                   "Affymetrix Proprietary Database" if i % 2 else "GenBank",
                   f"gb:{acc}.1 /DEF=Homo sapiens {titles[0]}, mRNA. /FEA=mRNA" if g0 else
                   ("control sequence" if pid in ctrl else f"gb:AI{300000 + i} /FEA=EST /CNT=12"),
                   acc or f"AI{300000 + i}", " /// ".join(titles), " /// ".join(syms),
                   " /// ".join(str(g.entrez) for g in real), " /// ".join(g.refseq for g in real),
                   _GO[i % len(_GO)] if g0 else "", _GO[(i + 1) % len(_GO)] if g0 else "",
                   _GO[(i + 2) % len(_GO)] if g0 else "")
        elif kind == "gene_assignment":
            if real:
                parts = [f"{g.refseq} // {s} // {t} // {_cyto(g.entrez)} // {g.entrez}"
                         for g, s, t in zip(real, [s for s in syms if _gene_of(s)], titles)]
                if i % 5 == 0:  # a second transcript of the same gene, as real tables list
                    parts.append(f"NM_{(real[0].entrez * 3) % 999999:06d} // {syms[0]} // {titles[0]} // "
                                 f"{_cyto(real[0].entrez)} // {real[0].entrez}")
                ga = " /// ".join(parts)
                ma = " /// ".join(f"{g.refseq} // RefSeq // Homo sapiens {t} ({g.symbol}), mRNA. // "
                                  f"chr{1 + g.entrez % 22} // 100 // 100 // 0" for g, t in zip(real, titles))
            else:
                ga, ma = "---", "---"
            chrom = 1 + i % 22
            start = 10000 + 1000 * i
            row = (pid, acc, f"chr{chrom}:{start}-{start + 2500}", f"chr{chrom}", f"NC_0000{chrom:02d}.10",
                   "+-"[i % 2], str(start), str(start + 2500), str(10 + i % 20), ga, ma,
                   "control->affx" if pid in ctrl else "main")
        else:
            sym = syms[0] if syms else ""
            row = (pid, "Homo sapiens", "RefSeq" if g0 else "ILMN_Controls", acc, f"ILMN_{10000 + i}",
                   sym, acc, acc, str(g0.entrez) if g0 else "", sym, "S" if g0 else "I",
                   str(1 + i % 22) if g0 else "", _cyto(g0.entrez) if g0 else "",
                   f"Homo sapiens {titles[0]} ({sym}), mRNA." if g0 else "",
                   "; ".join(g0.aliases) if g0 else "")
        w("\t".join(row) + "\n")
    w("!platform_table_end\n")
    return out.getvalue().encode()


# ---- cohorts -----------------------------------------------------------------------------------------------

@dataclass
class Samples:
    """Per-sample covariates of one cohort (shared by every platform of a multi-platform series)."""

    y: np.ndarray       # trait 0/1
    age: np.ndarray     # years (float, NaN when missing)
    male: np.ndarray    # 0/1
    batch: np.ndarray   # 0/1
    latent: dict[str, np.ndarray]  # condition trait -> latent 0/1 status


def _samples(plan: CohortPlan, tp: TraitPlan, trait_names: set[str], rng: np.random.Generator) -> Samples:
    n = plan.n_samples
    s = plan.scenario
    if s in ("all_cases", "no_trait"):
        y = np.ones(n, dtype=np.int64)
    elif s == "tcga_biased":
        y = np.ones(n, dtype=np.int64)
    elif s == "too_few":
        y = np.ones(n, dtype=np.int64)
        y[:2] = 0
    elif s == "tcga":
        n0 = max(5, int(round(n * rng.uniform(0.12, 0.22))))
        y = np.ones(n, dtype=np.int64)
        y[:n0] = 0
    else:
        n1 = int(np.clip(round(n * rng.uniform(0.4, 0.6)), 5, n - 5))
        y = np.zeros(n, dtype=np.int64)
        y[:n1] = 1
    y = y[rng.permutation(n)]
    age = np.round(rng.normal(52, 12, n) + 5 * y).clip(18, 90)
    male = (rng.random(n) < 0.5).astype(np.int64)
    batch = (rng.random(n) < 0.5).astype(np.int64) if plan.batch_effect else np.zeros(n, dtype=np.int64)
    latent = {c: (rng.random(n) < 0.3 + 0.4 * y).astype(np.int64)
              for c in tp.conditions if c in trait_names}
    return Samples(y, age, male, batch, latent)


def _gene_expression(sm: Samples, trait: str, roles: Roles, rng: np.random.Generator) -> np.ndarray:
    """Samples x all genes of the table (log2): baseline + planted effects + batch."""
    n, g = len(sm.y), len(roles.mu)
    cohort_shift = rng.normal(0.0, 0.25, g)
    e = roles.mu + cohort_shift + rng.standard_normal((n, g)) * roles.sd
    e += rng.standard_normal((n, len(FACTOR_SD))) @ roles.loadings
    e[:, roles.trait_genes[trait]] += np.outer(sm.y, roles.trait_effect[trait])
    for cond, c in sm.latent.items():
        e[:, roles.trait_genes[cond]] += np.outer(c, roles.trait_effect[cond])
    e[:, roles.age] += np.outer(np.nan_to_num(sm.age, nan=52.0) - 52.0, roles.age_slope)
    e[:, roles.female] += SEX_EFFECT * (1 - sm.male)[:, None]
    e[:, roles.male] += SEX_EFFECT * sm.male[:, None]
    if sm.batch.any():
        hit = rng.random(g) < BATCH_GENE_FRACTION
        delta = rng.normal(0.0, BATCH_SHIFT_SD, g) * hit
        e += np.outer(sm.batch, delta)
    return e


def _probe_values(e: np.ndarray, pf: Platform, rng: np.random.Generator) -> np.ndarray:
    n = e.shape[0]
    x = np.empty((n, len(pf.ids)))
    has = pf.gene >= 0
    x[:, has] = e[:, pf.gene[has]]
    x[:, ~has] = rng.uniform(3.0, 7.0, int((~has).sum()))
    z = rng.standard_normal(x.shape)  # in place: the same values as x + (offset + z * noise), fewer temporaries
    z *= pf.noise
    z += pf.offset
    x += z
    del z
    return np.clip(x, 1.5, 16.0, out=x)


def _fmt_rows(ids: list[str], x: np.ndarray, null: str, quote_ids: bool) -> list[str]:
    """Probe rows ``ID<TAB>v1<TAB>v2...`` from a probes x samples array, NaN written as ``null``."""
    fmt = "\t".join(["%.4f"] * x.shape[1])
    nan_rows = np.isnan(x).any(axis=1)
    out = []
    for pid, row, bad in zip(ids, x.tolist(), nan_rows.tolist()):
        body = fmt % tuple(row)
        if bad:
            body = "\t".join(null if v == "nan" else v for v in body.split("\t"))
        out.append(f'"{pid}"\t{body}' if quote_ids else f"{pid}\t{body}")
    return out


def _column_text(ids: list[str], col: np.ndarray, null: str) -> str:
    """``ID<TAB>VALUE`` lines of one sample table, formatted in a single C-level operation."""
    args: list[Any] = [None] * (2 * len(ids))
    args[::2] = ids
    args[1::2] = col.tolist()
    return (("%s\t%.4f\n" * len(ids)) % tuple(args)).replace("\tnan\n", f"\t{null}\n")


def _chain(*parts):
    for p in parts:
        yield from p


def _q(v: str) -> str:
    return f'"{v}"'


def _gz(parts, level: int, compressor: str = "isal") -> bytes:
    """gzip (mtime=0, no file name) of an iterable of byte chunks, compressed as they come.

    ``isal`` (default) is ISA-L's igzip at ``level`` 0-3 (~350 MB/s of text; at level 3 the output is ~8%
    larger than zlib's level 6); ``zlib`` is the stdlib's gzip at ``level`` 1-9 (bytes independent of ISA-L's
    version and CPU code path, ~15x slower at level 6: the generator's format before ISA-L)."""
    buf = io.BytesIO()
    if compressor == "isal":
        from isal import igzip

        opener = igzip.IGzipFile(fileobj=buf, mode="wb", compresslevel=min(level, 3), mtime=0)
    elif compressor == "zlib":
        opener = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0, filename="")
    else:
        raise ValueError(f"compressor must be 'isal' or 'zlib', not {compressor!r}")
    with opener as gz:
        for p in ([parts] if isinstance(parts, bytes) else parts):
            gz.write(p)
    return buf.getvalue()


def _table_chunks(ids: list[str], x: np.ndarray, null: str, quote_ids: bool, rows: int = 4096):
    """Encoded probe rows of a probes x samples array, a few thousand rows at a time (bounded memory).

    The compiled writer produces exactly the bytes of :func:`_fmt_rows`; rows it cannot take (huge or
    infinite values) are formatted by :func:`_fmt_rows` itself."""
    from genotex_dask.synth._format import format_block, id_blob

    blob, off = id_blob(ids)
    for i in range(0, len(ids), rows):
        out = format_block(blob, off[i:i + rows + 1], x[i:i + rows], null, quote_ids)
        yield out if out is not None else ("\n".join(_fmt_rows(ids[i:i + rows], x[i:i + rows], null, quote_ids))
                                           + "\n").encode()


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class GeoLabels:
    """The strings that carry trait/age/gender for one GEO cohort, and their truth."""

    titles: list[str]
    sources: list[str]
    chars: list[list[str]]          # characteristics rows, each one cell per sample ("key: value")
    truth: dict[str, Any]


def _geo_labels(plan: CohortPlan, tp: TraitPlan, sm: Samples, rng: np.random.Generator,
                platform_tag: str = "") -> GeoLabels:
    n, s = plan.n_samples, plan.scenario
    cancer = tp.is_cancer
    key = str(rng.choice(["tissue type", "disease state", "sample type", "histology"] if cancer
                         else ["disease state", "diagnosis", "disease", "status", "group"]))
    control_word = str(rng.choice(["adjacent normal tissue", "normal", "non-tumor"] if cancer
                                  else ["healthy control", "control", "normal", "healthy"]))
    spell2 = rng.random() < 0.5 or s == "characteristics_only"
    case_cells = [f"{key}: {tp.abbr}", f"{key}: {tp.long_name}"]
    truth: dict[str, Any] = {"trait_source": "none", "trait_key": None, "trait_row": None, "trait_values": {},
                             "age_key": None, "age_row": None, "gender_key": None, "gender_row": None,
                             "gender_values": {}}
    rows: list[tuple[str, list[str]]] = []
    if s in ("characteristics", "characteristics_only", "too_few", "all_cases"):
        use2 = (rng.random(n) < 0.3) & spell2
        cells = [case_cells[int(u)] if yy else f"{key}: {control_word}" for yy, u in zip(sm.y, use2)]
        rows.append(("trait", cells))
        truth.update(trait_source="characteristics", trait_key=key,
                     trait_values={c: (0 if c.endswith(f": {control_word}") else 1) for c in sorted(set(cells))})
    if s in ("characteristics", "characteristics_only", "all_cases", "no_trait"):
        rows.append(("tissue", [f"tissue: {tp.tissue}"] * n))
    if s in ("characteristics", "title", "all_cases", "no_trait"):
        akey = str(rng.choice(["age (yrs)", "age", "age at diagnosis"]))
        style = int(rng.integers(3))
        miss = rng.random(n) < (0.05 if rng.random() < 0.5 else 0.0)
        cells = []
        for a, m in zip(sm.age, miss):
            v = "NA" if m else (f"{int(a)}", f"{int(a)} years", f"{int(a)}y")[style]
            cells.append(f"{akey}: {v}")
        sm.age[miss] = np.nan
        rows.append(("age", cells))
        truth["age_key"] = akey
    if s in ("characteristics", "too_few", "multi_platform", "no_trait"):
        gkey = str(rng.choice(["Sex", "gender", "sex", "Gender"]))
        f, m = [("F", "M"), ("female", "male"), ("Female", "Male")][int(rng.integers(3))]
        cells = [f"{gkey}: {m if x else f}" for x in sm.male]
        rows.append(("gender", cells))
        truth.update(gender_key=gkey, gender_values={f"{gkey}: {f}": 0, f"{gkey}: {m}": 1})
    order = rng.permutation(len(rows)).tolist()
    rows = [rows[i] for i in order]
    for r, (what, _) in enumerate(rows):
        if what in ("trait", "age", "gender"):
            truth[f"{what}_row"] = r
    # titles and source names
    if s == "source_name":
        case_src = (f"Trizol isolation of total RNA from {tp.long_name} tissue" if cancer
                    else f"{tp.tissue}, {tp.long_name} patient")
        ctrl_src = (f"Trizol isolation of total RNA from normal {tp.tissue} tissue adjacent to {tp.long_name}"
                    if cancer else f"{tp.tissue}, healthy donor")
        sources = [case_src if yy else ctrl_src for yy in sm.y]
        truth.update(trait_source="source_name", trait_values={case_src: 1, ctrl_src: 0})
    else:
        sources = [f"{tp.tissue}"] * n
    if s in ("title", "multi_platform"):
        titles = [f"{tp.abbr} patient {i + 1}{platform_tag}" if yy else f"healthy control {i + 1}{platform_tag}"
                  for i, yy in enumerate(sm.y)]
        truth.update(trait_source="title", trait_values={t: int(yy) for t, yy in zip(titles, sm.y)})
    else:
        titles = [f"{tp.tissue} sample {i + 1}{platform_tag}" for i in range(n)]
    return GeoLabels(titles, sources, [cells for _, cells in rows], truth)


def _usability(plan: CohortPlan, sm: Samples) -> tuple[bool, str]:
    s, n = plan.scenario, plan.n_samples
    if s == "no_trait":
        return False, "no trait information: no characteristics row, title or source name separates cases from controls"
    if s == "all_cases":
        return False, f"trait constant: all {n} samples are cases"
    if s == "too_few":
        k = int((sm.y == 0).sum())
        return False, f"trait biased: only {k} controls among {n} samples (under 10% and under 5)"
    if s == "tcga_biased":
        return False, f"trait biased: all {n} samples are primary tumours (no -11 normals)"
    return True, ""


# ---- writers -----------------------------------------------------------------------------------------------

def _date(rng: np.random.Generator) -> str:
    return f"{_MONTHS[int(rng.integers(12))]} {int(rng.integers(1, 29)):02d} {int(rng.integers(2005, 2023))}"


def _series_text(plan: CohortPlan, tp: TraitPlan) -> tuple[str, str, str]:
    if plan.scenario == "no_trait":
        summary = f"Gene expression profiling of {tp.tissue} obtained from patients with {tp.long_name}."
        design = f"{plan.n_samples} {tp.long_name} patients were profiled."
    else:
        summary = (f"To identify transcriptional changes associated with {tp.long_name}, we profiled "
                   f"{tp.tissue} from patients and controls.")
        design = f"{tp.tissue} samples from {tp.long_name} patients and control subjects were hybridized."
    return f"Transcriptome of {tp.tissue} in {tp.long_name} ({plan.cohort})", summary, design


def _write_geo(out: str, plan: CohortPlan, tp: TraitPlan, roles: Roles, pfs: dict[str, Platform],
               trait_names: set[str], seed: int, gsm_start: int, level: int, full_tables: bool,
               compressor: str = "isal") -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3, plan.trait_index, plan.cohort_index]))
    sm = _samples(plan, tp, trait_names, rng)
    e = _gene_expression(sm, plan.trait, roles, rng)
    title, summary, design = _series_text(plan, tp)
    sub, upd = _date(rng), _date(rng)
    null = "null" if rng.random() < 0.5 else ""
    nan_rate = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.0005, 0.003))
    multi = len(plan.platforms) > 1
    per_pf = []
    truth_labels = None
    gsm = gsm_start
    for k, gpl in enumerate(plan.platforms):
        tag = f" [{gpl}]" if multi else ""
        lab = _geo_labels(plan, tp, sm, np.random.default_rng(
            np.random.SeedSequence([seed, 4, plan.trait_index, plan.cohort_index])), tag)
        truth_labels = truth_labels or lab.truth
        if multi and k:
            # the title map must cover both platforms' titles
            truth_labels["trait_values"].update(lab.truth["trait_values"])
        pf = pfs[gpl]
        x = _probe_values(e, pf, rng)
        if nan_rate:
            x[rng.random(x.shape) < nan_rate] = np.nan
            x[:, int(rng.integers(x.shape[1]))] = np.nan  # one probe missing in every sample
        gsms = [f"GSM{gsm + i}" for i in range(plan.n_samples)]
        gsm += plan.n_samples
        per_pf.append((gpl, pf, lab, gsms, x))
    files = {}
    for gpl, pf, lab, gsms, x in per_pf:
        name = f"{plan.cohort}-{gpl}_series_matrix.txt.gz" if multi else f"{plan.cohort}_series_matrix.txt.gz"
        n = len(gsms)

        def row(tag: str, vals: list[str]) -> str:
            return tag + "\t" + "\t".join(_q(v) for v in vals) + "\n"

        head = [f"!Series_title\t{_q(title)}\n", f"!Series_geo_accession\t{_q(plan.cohort)}\n",
                f"!Series_status\t{_q('Public on ' + sub)}\n", f"!Series_submission_date\t{_q(sub)}\n",
                f"!Series_last_update_date\t{_q(upd)}\n", f"!Series_summary\t{_q(summary)}\n",
                f"!Series_overall_design\t{_q(design)}\n",
                f"!Series_type\t{_q('Expression profiling by array')}\n",
                f"!Series_contributor\t{_q('Ada,,Synth')}\n",
                f"!Series_sample_id\t{_q(' '.join(gsms) + ' ')}\n",
                f"!Series_contact_country\t{_q('USA')}\n",
                f"!Series_platform_id\t{_q(gpl)}\n", f"!Series_platform_taxid\t{_q('9606')}\n",
                f"!Series_sample_taxid\t{_q('9606')}\n", "\n",
                row("!Sample_title", lab.titles), row("!Sample_geo_accession", gsms),
                row("!Sample_status", ["Public on " + sub] * n), row("!Sample_submission_date", [sub] * n),
                row("!Sample_last_update_date", [upd] * n), row("!Sample_type", ["RNA"] * n),
                row("!Sample_channel_count", ["1"] * n), row("!Sample_source_name_ch1", lab.sources),
                row("!Sample_organism_ch1", ["Homo sapiens"] * n)]
        head += [row("!Sample_characteristics_ch1", cells) for cells in lab.chars]
        head += [row("!Sample_molecule_ch1", ["total RNA"] * n), row("!Sample_label_ch1", ["biotin"] * n),
                 row("!Sample_taxid_ch1", ["9606"] * n),
                 row("!Sample_data_processing", ["RMA, log2 transformed"] * n),
                 row("!Sample_platform_id", [gpl] * n), row("!Sample_data_row_count", [str(len(pf.ids))] * n),
                 "!series_matrix_table_begin\n", "\t".join(['"ID_REF"'] + [_q(g) for g in gsms]) + "\n"]
        chunks = _table_chunks(pf.ids, x.T, null, quote_ids=True)
        data = _gz(_chain(["".join(head).encode()], chunks, [b"!series_matrix_table_end\n"]), level, compressor)
        url = layout.join(out, plan.input_dir, name)
        fs.write_bytes_atomic(url, data)
        files[name] = len(data)
    # family SOFT: database, series, platform(s), samples
    soft = [(b"^DATABASE = GeoMiame\n!Database_name = Gene Expression Omnibus (GEO)\n"
             b"!Database_institute = NCBI NLM NIH\n!Database_web_link = http://www.ncbi.nlm.nih.gov/geo\n"
             b"!Database_email = geo@ncbi.nlm.nih.gov\n")]
    ser = [f"^SERIES = {plan.cohort}\n", f"!Series_title = {title}\n", f"!Series_geo_accession = {plan.cohort}\n",
           f"!Series_status = Public on {sub}\n", f"!Series_submission_date = {sub}\n",
           f"!Series_last_update_date = {upd}\n", f"!Series_summary = {summary}\n",
           f"!Series_overall_design = {design}\n", "!Series_type = Expression profiling by array\n",
           "!Series_contributor = Ada,,Synth\n"]
    ser += [f"!Series_sample_id = {g}\n" for _, _, _, gsms, _ in per_pf for g in gsms]
    ser += ["!Series_contact_country = USA\n"] + [f"!Series_platform_id = {g}\n" for g in plan.platforms]
    soft.append("".join(ser).encode())
    soft += [pfs[g].table for g in plan.platforms]
    n_tab = len(pfs[plan.platforms[0]].ids) if full_tables else 10
    name = f"{plan.cohort}_family.soft.gz"
    data = _gz(_chain(soft, _soft_samples(plan, per_pf, sub, upd, null, n_tab)), level, compressor)
    fs.write_bytes_atomic(layout.join(out, plan.input_dir, name), data)
    files[name] = len(data)
    ok, reason = _usability(plan, sm)
    t = dict(truth_labels or {})
    return {"sm": sm, "files": files, "gsm_next": gsm, "usable": ok, "reason": reason, "labels": t,
            "matrix_files": sorted(n for n in files if "matrix" in n)}


def _soft_samples(plan: CohortPlan, per_pf: list, sub: str, upd: str, null: str, n_tab: int):
    """The ^SAMPLE sections of a family SOFT, one encoded sample at a time."""
    for gpl, pf, lab, gsms, x in per_pf:
        for i, g in enumerate(gsms):
            s = [f"^SAMPLE = {g}\n", f"!Sample_title = {lab.titles[i]}\n", f"!Sample_geo_accession = {g}\n",
                 f"!Sample_status = Public on {sub}\n", f"!Sample_submission_date = {sub}\n",
                 f"!Sample_last_update_date = {upd}\n", "!Sample_type = RNA\n", "!Sample_channel_count = 1\n",
                 f"!Sample_source_name_ch1 = {lab.sources[i]}\n", "!Sample_organism_ch1 = Homo sapiens\n"]
            s += [f"!Sample_characteristics_ch1 = {cells[i]}\n" for cells in lab.chars]
            s += ["!Sample_molecule_ch1 = total RNA\n", "!Sample_label_ch1 = biotin\n",
                  "!Sample_data_processing = RMA, log2 transformed\n", f"!Sample_platform_id = {gpl}\n",
                  f"!Sample_series_id = {plan.cohort}\n", f"!Sample_data_row_count = {min(n_tab, len(pf.ids))}\n",
                  "#ID_REF = \n", "#VALUE = RMA normalized log2 signal\n", "!sample_table_begin\n",
                  "ID_REF\tVALUE\n"]
            s.append(_column_text(pf.ids[:n_tab], x[i, :n_tab], null))
            s.append("!sample_table_end\n")
            yield "".join(s).encode()


def _write_tcga(out: str, plan: CohortPlan, tp: TraitPlan, roles: Roles, trait_names: set[str], seed: int,
                level: int, compressor: str = "isal") -> dict:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3, plan.trait_index, plan.cohort_index]))
    genes = gene_table()
    sm = _samples(plan, tp, trait_names, rng)
    n = plan.n_samples
    alnum = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    n_norm = int((sm.y == 0).sum())
    n_pat = n - n_norm
    pats: list[str] = []
    seen: set[str] = set()
    while len(pats) < n_pat:
        p = f"TCGA-{''.join(rng.choice(alnum, 2))}-{''.join(rng.choice(alnum, 4))}"
        if p not in seen:
            seen.add(p)
            pats.append(p)
    # tumours: one per patient; normals: paired with the first patients (as in TCGA CHOL)
    tumour_pos = np.flatnonzero(sm.y == 1)
    normal_pos = np.flatnonzero(sm.y == 0)
    barcode = [""] * n
    patient = [""] * n
    for k, i in enumerate(tumour_pos):
        barcode[i], patient[i] = f"{pats[k]}-01", pats[k]
    for k, i in enumerate(normal_pos):
        j = tumour_pos[k % n_pat]
        barcode[i], patient[i] = f"{pats[k % n_pat]}-11", pats[k % n_pat]
        sm.male[i], sm.age[i] = sm.male[j], sm.age[j]  # a normal sample shares its patient's sex and age
    e = _gene_expression(sm, plan.trait, roles, rng)
    # genes measured: the core plus a random set, some under an old alias, a few as ?|EntrezID
    core = roles.core
    excluded = set(core) | {g for v in roles.unmeasured.values() for g in v}
    others = np.array([i for i in range(len(genes)) if i not in excluded])
    n_genes = max(len(core), min(plan.n_features, len(genes) - len(excluded) + len(core)))
    extra = rng.choice(others, n_genes - len(core), replace=False).tolist()
    gidx = core + extra
    names = []
    core_set = set(core)
    for g in gidx:
        if g not in core_set and unique_aliases(genes[g]) and rng.random() < 0.02:
            names.append(unique_aliases(genes[g])[0])
        else:
            names.append(genes[g].symbol)
    n_q = max(3, len(gidx) // 700)
    spare = np.setdiff1d(others, np.array(gidx))
    qgenes = [int(v) for v in rng.choice(spare, min(n_q, len(spare)), replace=False)]
    names += [f"?|{genes[g].entrez}" for g in qgenes]
    gidx += qgenes
    x = e[:, gidx] - roles.mu[gidx] + rng.normal(0.0, 0.1, (n, len(gidx)))
    rorder = rng.permutation(len(gidx))
    corder = rng.permutation(n)
    head = "sample\t" + "\t".join(barcode[i] for i in corder) + "\n"
    chunks = _table_chunks([names[i] for i in rorder], x[corder][:, rorder].T, "", quote_ids=False)
    d = f"TCGA_{tp.name}_({tp.tcga_code})"
    code = tp.tcga_code
    expr_name = f"TCGA.{code}.sampleMap_HiSeqV2_PANCAN.gz"
    data = _gz(_chain([head.encode()], chunks), level, compressor)
    fs.write_bytes_atomic(layout.join(out, "input", "TCGA", d, expr_name), data)
    # clinical matrix: samples x fields, rows sorted by barcode (order differs from the expression file)
    cols = ["sampleID", "_INTEGRATION", "_PATIENT", "_cohort", "_primary_disease", "_primary_site",
            "age_at_initial_pathologic_diagnosis", "days_to_birth", "gender", "histological_type",
            "pathologic_stage", "sample_type", "sample_type_id", "vital_status",
            f"_GENOMIC_ID_TCGA_{code}_exp_HiSeqV2_PANCAN"]
    miss_pat = {p for p in pats if rng.random() < 0.03}
    sm.age[[i for i in range(n) if patient[i] in miss_pat]] = np.nan
    lines = ["\t".join(cols)]
    for i in sorted(range(n), key=lambda i: barcode[i]):
        normal = sm.y[i] == 0
        age = "" if np.isnan(sm.age[i]) else str(int(sm.age[i]))
        dob = "" if not age else str(-int(sm.age[i]) * 365 - int(hashlib.sha1(patient[i].encode()).hexdigest()[:4], 16) % 365)
        lines.append("\t".join([
            barcode[i], barcode[i], patient[i], f"TCGA {tp.name.replace('_', ' ')} ({code})", tp.long_name,
            tp.tissue.capitalize(), age, dob, "MALE" if sm.male[i] else "FEMALE", tp.long_name.capitalize(),
            str(rng.choice(["Stage I", "Stage II", "Stage III", "Stage IV", ""])),
            "Solid Tissue Normal" if normal else "Primary Tumor", "11" if normal else "01",
            str(rng.choice(["LIVING", "DECEASED"])), hashlib.sha1(barcode[i].encode()).hexdigest()[:32]]))
    clin_name = f"TCGA.{code}.sampleMap_{code}_clinicalMatrix"
    clin = ("\n".join(lines) + "\n").encode()
    fs.write_bytes_atomic(layout.join(out, "input", "TCGA", d, clin_name), clin)
    ok, reason = _usability(plan, sm)
    labels = {"trait_source": "barcode", "trait_key": None, "trait_row": None,
              "trait_values": {"01": 1, "11": 0} if n_norm else {"01": 1},
              "age_key": "age_at_initial_pathologic_diagnosis", "age_row": None, "gender_key": "gender",
              "gender_row": None, "gender_values": {"FEMALE": 0, "MALE": 1}}
    return {"sm": sm, "files": {expr_name: len(data), clin_name: len(clin)}, "usable": ok, "reason": reason,
            "labels": labels, "matrix_files": [expr_name]}


@lru_cache(maxsize=1)
def _gene_synonyms_json() -> bytes:
    return json.dumps(_gene_synonyms()).encode()


def _gene_synonyms() -> dict[str, str]:
    """GenoTEX's rule: official symbols map to themselves, an alias never overwrites an official symbol."""
    genes = gene_table()
    out = {g.symbol.upper(): g.symbol for g in genes}
    for g in genes:
        for a in g.aliases:
            out.setdefault(a.upper(), g.symbol)
    return dict(sorted(out.items()))


def write_corpus(out: str, traits: int = 4, cohorts_per_trait: int = 3, samples: int = 40, probes: int = 2000,
                 platforms: int = 2, seed: int = 0, *, full_sample_tables: bool = False, compresslevel: int = 3,
                 compressor: str = "isal",
                 vary_samples: bool = True, progress: bool = False, exclude_traits: tuple[str, ...] = (),
                 scale: str | None = None, fraction: float = 1.0) -> dict:
    """Write the synthetic corpus (input/, metadata/, truth.json) to any fsspec URL; returns a run summary.

    ``full_sample_tables`` gives each ^SAMPLE of the family SOFT its whole VALUE table (as GEO does; used by the
    ingest benchmark) instead of the first 10 rows.  ``scale="genotex"`` writes :func:`plan_genotex`'s corpus
    (the shape arguments are then ignored), ``fraction`` 1/k its stratified sample.
    """
    t0 = time.perf_counter()
    if scale == "genotex":
        plan = plan_genotex(seed, fraction)
    elif scale is not None:
        raise ValueError(f"unknown scale {scale!r} (known: genotex)")
    else:
        _fraction_step(fraction)
        if fraction != 1.0:
            raise ValueError("fraction needs scale='genotex'")
        plan = plan_corpus(traits, cohorts_per_trait, samples, probes, platforms, seed, vary_samples=vary_samples,
                           exclude_traits=tuple(exclude_traits))
    gsm_start = plan.get("gsm_start", {})
    tplans = [TraitPlan(**t) for t in plan["traits"]]
    names = [t.name for t in tplans]
    trait_names = set(names)
    roles = _roles(names, seed)
    pfs: dict[str, Platform] = {}
    cohorts_truth: dict[str, dict] = {}
    n_files = n_bytes = 0
    gsm = 100000 + 1000 * (seed % 1000)
    for cd in plan["cohorts"]:
        cp = CohortPlan(**cd)
        tp = tplans[cp.trait_index]
        for gpl in cp.platforms:
            if gpl not in pfs:
                k = [p["id"] for p in plan["platforms"]].index(gpl)
                pfs[gpl] = _build_platform(k, gpl, plan["platforms"][k]["kind"],
                                           plan["platforms"][k].get("probes", probes), roles, seed)
        if cp.kind == "TCGA":
            res = _write_tcga(out, cp, tp, roles, trait_names, seed, compresslevel, compressor)
        else:
            gsm = gsm_start.get(f"{cp.trait}/{cp.cohort}", gsm)
            res = _write_geo(out, cp, tp, roles, pfs, trait_names, seed, gsm, compresslevel, full_sample_tables,
                            compressor)
            gsm = res["gsm_next"] + 17
        n_files += len(res["files"])
        n_bytes += sum(res["files"].values())
        sm = res["sm"]
        lab = res["labels"]
        cohorts_truth[f"{cp.trait}/{cp.cohort}"] = {
            "trait": cp.trait, "cohort": cp.cohort, "kind": cp.kind, "input_dir": cp.input_dir,
            "n_samples": cp.n_samples, "platforms": cp.platforms, "expected_usable": res["usable"],
            "reason": res["reason"], "scenario": cp.scenario, "matrix_files": res["matrix_files"],
            "n_cases": int((sm.y == 1).sum()), "n_controls": int((sm.y == 0).sum()),
            "has_age": lab["age_key"] is not None, "has_gender": lab["gender_key"] is not None,
            **lab, "batch_effect": cp.batch_effect}
        if progress:
            print(f"synth: {cp.trait}/{cp.cohort} ({cp.scenario}, n={cp.n_samples})", flush=True)
    genes = gene_table()
    sym = [g.symbol for g in genes]
    task_info, problems, trait_genes = {}, [], {}
    kept = set(plan.get("kept_traits", names))
    for tp in sorted(tplans, key=lambda t: t.name):
        if tp.name not in kept:
            continue
        tp.conditions = [c for c in tp.conditions if c in ("Age", "Gender") or c in kept]
        tg = [sym[i] for i in roles.trait_genes[tp.name]]
        related = tg + [sym[i] for i in roles.distractors[tp.name] + roles.unmeasured[tp.name]]
        rrng = np.random.default_rng(np.random.SeedSequence([seed, 5, names.index(tp.name)]))
        task_info[tp.name] = {"related_genes": [related[i] for i in rrng.permutation(len(related))],
                              "conditions": list(tp.conditions)}
        trait_genes[tp.name] = tg
        problems.append({"trait": tp.name, "condition": None, "category": "unconditional", "planted_genes": tg})
        for c in tp.conditions:
            if c in ("Age", "Gender"):
                problems.append({"trait": tp.name, "condition": c, "category": "conditional_one_step",
                                 "planted_genes": tg})
            else:
                problems.append({"trait": tp.name, "condition": c, "category": "two_step", "planted_genes": tg,
                                 "condition_genes": [sym[i] for i in roles.trait_genes[c]]})
    covariate_genes = {"Age": [sym[i] for i in roles.age],
                       "Gender": [sym[i] for i in roles.female + roles.male]}
    alias_planted = {t: {"official": sym[g], "alias": unique_aliases(genes[g])[0], "platform": plan["platforms"][0]["id"]}
                     for t, g in sorted(roles.alias_planted.items())}
    truth = {"seed": seed, "params": plan["params"], "cohorts": cohorts_truth, "problems": problems,
             "trait_genes": trait_genes, "covariate_genes": covariate_genes, "alias_planted": alias_planted,
             "platforms": plan["platforms"]}
    fs.write_json_atomic(layout.task_info_path(out), task_info)
    fs.write_bytes_atomic(layout.gene_synonym_path(out), _gene_synonyms_json())
    fs.write_json_atomic(layout.join(out, "truth.json"), truth, indent=1)
    usable = sum(1 for c in cohorts_truth.values() if c["expected_usable"])
    summary = {"traits": len(kept), "cohorts": len(cohorts_truth), "usable_cohorts": usable,
               "problems": len(problems), "data_files": n_files, "data_bytes_gz": n_bytes,
               "params": plan["params"]}
    fs.write_json_atomic(layout.join(out, "synth_summary.json"), summary)  # no path or time: byte-stable
    return {"out": out, **summary, "seconds": round(time.perf_counter() - t0, 3)}
