"""genotex_dask.io: streaming GEO/TCGA readers (geo, tcga), the Zarr cohort store (store), fsspec I/O (fs).

Every reader raises :class:`InputFormatError` (file, line, cause) for malformed input.
"""

from genotex_dask.io.errors import InputFormatError

__all__ = ["InputFormatError"]
