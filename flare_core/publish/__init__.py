"""Publishing issued forecasts: the forecast store, scoreboard JSON, plots and an HTML page.

Modules
-------
forecast_store
    `ForecastStore`: every issued forecast in one DuckDB file, idempotent and process-safe.
full_disk
    `full_disk_probabilities`: ``1 - prod(1 - p_region)`` per issue time.
scoreboard_json
    One JSON document per issue time in the CCMC Flare Scoreboard style, schema-checked.
plots
    PNG figures (matplotlib, Agg): survival curves, lifetime tracks, full-disk series and the
    evaluation plots (ROC, reliability, AUC(t), TSS vs threshold).
summary
    `rank_regions` (risk order) and `summary_markdown` (digest for Prefect artifacts).
page
    A self-contained static HTML page of the latest forecast.

Import the submodules directly; this package imports nothing heavy on its own.
"""

__all__: list[str] = []
