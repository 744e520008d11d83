"""Import GenoTEX's per-cohort notebook decisions as cohort specs: data read from notebooks, never code run."""
