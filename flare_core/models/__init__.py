"""Forecast models, one family per module; fit/predict, no file or network I/O."""
