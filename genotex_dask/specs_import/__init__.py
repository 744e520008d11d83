"""Import GenoTEX's per-cohort notebook decisions as cohort specs: data read from notebooks, never code run.

``notebooks`` reads a notebook's JSON (bounded), ``resolve`` finds the decisions in force at the last executed
call by static analysis (``ast``; nothing from a notebook is executed), ``convert`` turns converter functions into
value tables through the restricted interpreter (``restricted``), ``write`` assembles one spec file per trait.
"""

from pathlib import Path

SHIPPED = str(Path(__file__).resolve().parents[1] / "specs" / "genotex")   # `--specs genotex`
