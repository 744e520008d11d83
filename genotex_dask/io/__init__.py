"""genotex_dask.io"""
