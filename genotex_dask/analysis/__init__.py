"""genotex_dask.analysis"""
