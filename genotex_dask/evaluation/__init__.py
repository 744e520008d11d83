"""genotex_dask.evaluation"""
