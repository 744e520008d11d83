"""genotex_dask: the GenoTEX gene-expression benchmark pipeline as a distributed Dask engine."""

__version__ = "0.1.0"
