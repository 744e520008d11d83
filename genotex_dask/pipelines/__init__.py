"""genotex_dask.pipelines"""
