"""build_dataset: the joined modelling table on synthetic and real sun2022 data."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from flare_core.dataset import DatasetColumns, build_dataset
from flare_core.errors import ConfigError
from flare_core.features import RunningStats, build_running_stats, feature_columns
from flare_core.history import HISTORY_COLUMNS, build_flare_history
from flare_core.labels import label_columns, label_time_to_event
from flare_core.schema import UTC_DATETIME
from tests.support import bundled_flares
from tests.test_history import T0, flare_frame


def _sharp(n: int = 12) -> pl.DataFrame:
    rows = [{"harpnum": h, "t_rec": T0 + timedelta(minutes=96 * i), "usflux": 1e21 * (i + h),
             "r_value": 3.0 + 0.1 * i} for h in (1, 2) for i in range(n)]
    rows.append(dict(rows[3], usflux=9e21))  # a re-delivered record: the last copy wins
    return pl.DataFrame(rows, schema_overrides={"t_rec": UTC_DATETIME})


def test_dataset_is_the_join_of_the_three_parts():
    sharp = _sharp()
    flares = flare_frame([(1, T0 + timedelta(hours=5), "M2.0"),
                          (2, T0 + timedelta(hours=3), "C1.0")])
    got = build_dataset(sharp, flares)
    cols = DatasetColumns.of(got)
    assert got.height == 24  # 2 regions x 12 distinct records
    assert cols.history == HISTORY_COLUMNS
    assert list(cols.labels) == label_columns()
    assert cols.inputs == feature_columns(got)
    assert got.columns == ["harpnum", "t_rec", *cols.features, *cols.history, *cols.labels]
    feats = build_running_stats(sharp, RunningStats())
    hist = build_flare_history(sharp, flares)
    labs = label_time_to_event(sharp, flares)
    assert got.select("harpnum", "t_rec", *cols.features).equals(feats)
    assert got.select("harpnum", "t_rec", *cols.history).equals(hist)
    assert got.select("harpnum", "t_rec", *cols.labels).equals(labs)
    assert got.filter(pl.col("harpnum") == 1, pl.col("t_rec") == T0 + timedelta(minutes=288))[
        "usflux__last"].item() == 9e21


def test_inference_without_labels_or_flares():
    sharp = _sharp()
    got = build_dataset(sharp, None, with_labels=False)
    assert DatasetColumns.of(got).labels == ()
    assert got.select(HISTORY_COLUMNS).null_count().sum_horizontal().item() == 24 * len(
        HISTORY_COLUMNS)
    with pytest.raises(ConfigError, match="flare list"):
        build_dataset(sharp, None)


def test_real_sun2022_folds(data_dir):
    files = pytest.importorskip("flare_core.sources.files")
    flares = bundled_flares(data_dir)
    path = data_dir / "sharp" / "sun2022_sharp_m24h_fold1.csv.gz"
    sharp = files.read_sun2022(path)
    got = build_dataset(sharp, flares)
    cols = DatasetColumns.of(got)
    assert got.height == sharp.unique(["harpnum", "t_rec"]).height
    # the four sun2022 keywords, 15 statistics each
    assert {c.split("__")[0] for c in cols.features} == {"usflux", "meangbz", "r_value", "area"}
    assert len(cols.features) == 4 * 15
    # every record has a label; events are the minority but present
    assert got["time_to_event_h"].null_count() == 0
    assert 0 < got["event"].sum() < got.height
    # inference table = the labelled one without the label columns
    infer = build_dataset(sharp, flares, with_labels=False)
    assert infer.equals(got.drop(list(cols.labels)))
