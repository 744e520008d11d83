"""genotex_dask.preprocess"""
