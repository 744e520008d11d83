"""genotex_dask.synth"""
