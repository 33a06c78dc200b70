"""Scoreboard JSON: content matches the forecasts, the schema rejects broken documents."""

from __future__ import annotations

import copy
import json

import jsonschema
import polars as pl
import pytest
from forecast_factory import T0, make_forecasts

from flare_core.errors import ParseError
from flare_core.publish.scoreboard_json import (
    SCOREBOARD_SCHEMA,
    build_scoreboard_document,
    read_scoreboard_json,
    validate_scoreboard_document,
    write_scoreboard_json,
)


@pytest.fixture
def forecasts() -> pl.DataFrame:
    return make_forecasts([T0])


def test_schema_is_itself_valid():
    jsonschema.Draft202012Validator.check_schema(SCOREBOARD_SCHEMA)


def test_document_carries_the_forecast(forecasts):
    doc = build_scoreboard_document(forecasts)
    sub = doc["forecast_submission"]
    assert sub["issue_time"] == "2014-10-22T00:00Z"
    assert sub["model"] == {"short_name": "cox_ph", "version": "v1",
                            "spase_id": "spase://CCMC/SimulationModel/flareflow_cox_ph/v1"}
    window = sub["full_disk_forecasts"][0]["prediction_window"]
    assert window == {"start_time": "2014-10-22T00:00Z", "end_time": "2014-10-23T00:00Z"}
    assert len(sub["region_forecasts"]) == forecasts.height
    for region in sub["region_forecasts"]:
        harp = int(next(x["number"] for x in region["region_ids"] if x["type"] == "HARP"))
        row = forecasts.filter(pl.col("harpnum") == harp).row(0, named=True)
        probs = {p["class"]: p["probability"] for p in region["flare_probabilities"]}
        assert probs == pytest.approx({"C+": row["p_c24"], "M+": row["p_m24"],
                                       "X+": row["p_x24"]}, abs=5e-5)
        assert {"type": "NOAA", "number": row["noaa_ars"]} in region["region_ids"]
        assert region["mean_lifetime_h"] == pytest.approx(row["mean_lifetime_h"], abs=0.005)
        assert region["survival_curve"]["time_h"] == row["survival_grid_h"]
        assert region["survival_curve"]["survival_probability"] == pytest.approx(
            row["survival_curve"], abs=5e-5)
        assert region["prediction_window"] == window
        assert region["data_time"] == "2014-10-21T23:48Z"
    # full disk = 1 - prod(1 - p) over the regions, independently recomputed
    full = {p["class"]: p["probability"]
            for p in sub["full_disk_forecasts"][0]["flare_probabilities"]}
    for col, label in (("p_c24", "C+"), ("p_m24", "M+"), ("p_x24", "X+")):
        q = 1.0
        for p in forecasts[col]:
            q *= 1 - p
        assert full[label] == pytest.approx(1 - q, abs=5e-5)
    assert sub["full_disk_forecasts"][0]["number_of_regions"] == 3


def test_missing_classes_and_extras_are_left_out(forecasts):
    fc = forecasts.with_columns(p_x24=pl.lit(None, pl.Float64),
                                survival_curve=pl.lit(None, pl.List(pl.Float64)),
                                survival_grid_h=pl.lit(None, pl.List(pl.Float64)),
                                noaa_ars=pl.Series(["12192,12193", None, "0"]))
    sub = build_scoreboard_document(fc, mode="historical")["forecast_submission"]
    assert sub["mode"] == "historical"
    classes = {p["class"] for p in sub["full_disk_forecasts"][0]["flare_probabilities"]}
    assert classes == {"C+", "M+"}
    for region in sub["region_forecasts"]:
        assert region["survival_curve"] is None
        assert "X+" not in {p["class"] for p in region["flare_probabilities"]}
    ids = {len(r["region_ids"]) for r in sub["region_forecasts"]}
    assert ids == {1, 3}  # no NOAA number (None or "0") / two NOAA numbers


@pytest.mark.parametrize("model", ["defn", "lstm", "logistic", "persistence", "climatology"])
def test_every_model_forecasts_the_issue_time_window(model):
    """Issue 11 point 2 (updated from the record-time window test): every model, region and
    the full disk forecast (issue_time, issue_time + 24 h]; data_time still names each
    region's record, and the document states the window rule."""
    from datetime import timedelta

    from flare_core.publish.scoreboard_json import PREDICTION_WINDOW_RULE

    fc = make_forecasts([T0], model=model, with_curves=False).with_columns(
        t_rec=pl.Series([T0 - timedelta(minutes=12), T0 - timedelta(hours=5),
                         T0 - timedelta(hours=1, minutes=36)]))
    sub = build_scoreboard_document(fc)["forecast_submission"]
    issue_window = {"start_time": "2014-10-22T00:00Z", "end_time": "2014-10-23T00:00Z"}
    for region in sub["region_forecasts"]:
        harp = int(next(x["number"] for x in region["region_ids"] if x["type"] == "HARP"))
        t_rec = fc.filter(pl.col("harpnum") == harp)["t_rec"].item()
        assert region["data_time"] == f"{t_rec:%Y-%m-%dT%H:%M}Z"
        assert region["prediction_window"] == issue_window
    assert sub["full_disk_forecasts"][0]["prediction_window"] == issue_window
    assert sub["prediction_window_rule"] == PREDICTION_WINDOW_RULE
    survival = build_scoreboard_document(fc.with_columns(model=pl.lit("survival")))
    windows = {(r["prediction_window"]["start_time"], r["prediction_window"]["end_time"])
               for r in survival["forecast_submission"]["region_forecasts"]}
    assert windows == {("2014-10-22T00:00Z", "2014-10-23T00:00Z")}
    # a row without t_rec no longer changes the window (it used to be refused)
    doc = build_scoreboard_document(fc.with_columns(t_rec=pl.lit(None, fc["t_rec"].dtype)))
    assert doc["forecast_submission"]["region_forecasts"][0]["data_time"] is None


def test_document_names_series_failed_regions_absent_classes_and_lifetime(tmp_path):
    from datetime import timedelta

    fc = make_forecasts([T0, T0 + timedelta(hours=1)], model="lstm").with_columns(
        series=pl.lit("hmi.sharp_720s_nrt"), p_c24=pl.lit(None, pl.Float64))
    failed = pl.DataFrame({"issue_time": [T0, T0, T0 + timedelta(hours=1)],
                           "harpnum": [4711, 4700, 4711],
                           "model_version": ["v1", "v1", "other"],
                           "reason": ["input: record has usflux = 1e+308", "model: NaN", "x"]})
    paths = write_scoreboard_json(fc, tmp_path, failed=failed)
    first, second = (read_scoreboard_json(p)["forecast_submission"] for p in paths)
    assert first["series"] == "hmi.sharp_720s_nrt"
    assert first["failed_regions"] == [{"harpnum": 4700, "reason": "model: NaN"},
                                       {"harpnum": 4711,
                                        "reason": "input: record has usflux = 1e+308"}]
    assert second["failed_regions"] == []  # the other failure is of another model version
    for region in first["region_forecasts"]:
        assert region["absent"] == {"C+": "the model forecasts >=M flares only"}
        assert {p["class"] for p in region["flare_probabilities"]} == {"M+", "X+"}
        # restricted mean lifetime in words, on the curve's own follow-up
        assert region["lifetime_label"].startswith(("restricted mean time to >=M flare",
                                                    "no >=M flare expected within"))
        assert "of 144 h" in region["lifetime_label"] or "6 d" in region["lifetime_label"]
    assert "method" not in first  # only rows made by a rule carry one
    doc = build_scoreboard_document(fc.filter(pl.col("issue_time") == T0).with_columns(
        model=pl.lit("headline"), method=pl.lit("M+: defn (best validation TSS 0.9)")))
    assert doc["forecast_submission"]["method"] == "M+: defn (best validation TSS 0.9)"
    mixed = fc.filter(pl.col("issue_time") == T0).with_columns(
        series=pl.Series(["a", "b", "a"]))
    with pytest.raises(ParseError, match="mix SHARP series"):
        build_scoreboard_document(mixed)


def test_one_document_per_issue_time_and_model(tmp_path, issue_times):
    fc = pl.concat([make_forecasts(issue_times[:3]),
                    make_forecasts(issue_times[:2], model="defn", version="2")])
    paths = write_scoreboard_json(fc, tmp_path / "json")
    assert len(paths) == 5
    assert paths[0].name == "cox_ph_v1.20141022T0000.20141022T0000.json"
    for path in paths:
        doc = read_scoreboard_json(path)
        assert len(doc["forecast_submission"]["region_forecasts"]) == 3
    # a re-run replaces, never adds files
    write_scoreboard_json(fc, tmp_path / "json")
    assert sorted(p.name for p in (tmp_path / "json").iterdir()) == sorted(p.name for p in paths)
    with pytest.raises(ParseError, match="one issue time of one model"):
        build_scoreboard_document(fc)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda s: s["region_forecasts"][0]["flare_probabilities"][0].update(probability=1.2),
         "greater than the maximum"),
        (lambda s: s.update(issue_time="2014-10-22 00:00"), "does not match"),
        (lambda s: s.update(mode="guess"), "is not one of"),
        (lambda s: s["region_forecasts"][0]["region_ids"].pop(0), "does not contain items"),
        (lambda s: s["region_forecasts"][0]["flare_probabilities"][0].update({"class": "M5"}),
         "is not one of"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["time_h"].pop(),
         "7 probabilities"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["survival_probability"]
         .reverse(), "S\\(t\\) increases"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["survival_probability"]
         .__setitem__(-1, 1.5), "outside \\[0, 1\\]"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["time_h"].__setitem__(0, -1.0),
         "negative time_h"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["time_h"].__setitem__(1, "x"),
         "must be numbers"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["survival_probability"]
         .__setitem__(1, True), "must be numbers"),
        (lambda s: s["region_forecasts"][0]["survival_curve"]["survival_probability"]
         .__setitem__(1, None), "non-finite"),
        (lambda s: s["region_forecasts"][1].update(region_ids=[{"type": "HARP",
                                                                "number": "4676"}]),
         "more than one region"),
        (lambda s: s["full_disk_forecasts"][0]["prediction_window"].update(
            end_time="2014-10-21T00:00Z"), "end_time is not after"),
        (lambda s: s["region_forecasts"][0]["prediction_window"].update(
            start_time="2014-10-21T00:00Z"), "outside the full-disk prediction window"),
        (lambda s: s.update(extra=1), "Additional properties"),
        (lambda s: s.pop("region_forecasts"), "required property"),
    ],
)
def test_validation_rejects_broken_documents(forecasts, breakage, message):
    doc = build_scoreboard_document(forecasts)
    validate_scoreboard_document(doc)
    bad = copy.deepcopy(doc)
    breakage(bad["forecast_submission"])
    with pytest.raises(ParseError, match=message):
        validate_scoreboard_document(bad)


def test_reading_a_broken_file_names_it(tmp_path, forecasts):
    path = write_scoreboard_json(forecasts, tmp_path)[0]
    doc = json.loads(path.read_text())
    doc["forecast_submission"]["mode"] = "guess"
    path.write_text(json.dumps(doc))
    with pytest.raises(ParseError, match=path.name):
        read_scoreboard_json(path)
    path.write_text("{not json")
    with pytest.raises(ParseError, match=path.name):
        read_scoreboard_json(path)


def test_documents_are_written_as_json_dumps_writes_them(tmp_path, forecasts):
    """`dumps_document` is ``json.dumps(indent=1, allow_nan=False)`` byte for byte, also for
    what the documents never hold (the odd values fall back to json.dumps and its errors)."""
    import numpy as np

    from flare_core.publish.scoreboard_json import dumps_document

    for path in write_scoreboard_json(forecasts, tmp_path):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=1, allow_nan=False) + "\n"
    odd = {"é\u2603\"\\\n": [1, 1.0, -0.0, 1e-05, 1e16, 12345678901234567890, True, False,
                             None, (1.5, 2.5), [], {}, [[0.1, 0.2], []], np.float64(0.1)],
           "curve": [0.1, 0.30000000000000004, 5e-324, 1.7976931348623157e308]}
    assert dumps_document(odd) == json.dumps(odd, indent=1, allow_nan=False)
    assert dumps_document({1: "a"}) == json.dumps({1: "a"}, indent=1, allow_nan=False)
    for bad in ({"x": float("nan")}, {"x": [1.0, float("inf")]}, {"x": np.int64(1)}):
        with pytest.raises((ValueError, TypeError)):
            dumps_document(bad)


def test_the_fast_schema_check_never_passes_what_jsonschema_rejects(forecasts):
    from flare_core.publish.scoreboard_json import _VALIDATOR, _surely_valid

    doc = build_scoreboard_document(forecasts)
    assert _surely_valid(doc) and _VALIDATOR.is_valid(doc)
    edits = [
        lambda s: s["region_forecasts"][0].update(mean_lifetime_h=-1.0),
        lambda s: s["region_forecasts"][0].update(mean_lifetime_h=True),
        lambda s: s["region_forecasts"][0]["region_ids"][0].update(number="12a"),
        lambda s: s["region_forecasts"][0]["region_ids"][0].update(type="NOAA"),
        lambda s: s["region_forecasts"][0].update(absent={"B+": "x"}),
        lambda s: s["region_forecasts"][0].update(survival_curve={"time_h": []}),
        lambda s: s["full_disk_forecasts"][0].update(number_of_regions=-1),
        lambda s: s["full_disk_forecasts"].append(s["full_disk_forecasts"][0]),
        lambda s: s["model"].update(short_name=""),
        lambda s: s.update(series=3),
        lambda s: s.update(failed_regions=[{"harpnum": 1, "reason": ""}]),
        lambda s: s["region_forecasts"][0]["flare_probabilities"][0].update(probability=-0.1),
        lambda s: s["region_forecasts"][0].update(data_time="yesterday"),
    ]
    for edit in edits:
        bad = copy.deepcopy(doc)
        edit(bad["forecast_submission"])
        assert not _VALIDATOR.is_valid(bad)
        assert not _surely_valid(bad)


def test_batch_rounding_of_curves_is_pythons_round():
    """`_published_survival` (numpy, per batch) gives `_clipped` (Python's ``round``) bit for
    bit: exact ties (1/32 = 0.03125), values a hair off a tie, -0.0, values outside [0, 1]."""
    import numpy as np

    from flare_core.publish.scoreboard_json import _clipped, _published_survival

    rng = np.random.default_rng(3)
    ties = (np.arange(20001) + 0.5) / 20000
    values = np.concatenate([
        rng.uniform(-0.01, 1.01, 50_000), ties, np.nextafter(ties, 0), np.nextafter(ties, 1),
        [0.0, -0.0, 1.0, 0.03125, 0.00005, -1e-300, 1e-300, 5e-324, 1 + 1e-6, -1e-6]])
    out, text = _published_survival(values)
    want = [_clipped(float(v)) for v in values]
    assert [float.__repr__(v) for v in out.tolist()] == [float.__repr__(v) for v in want]
    assert text.tolist() == [float.__repr__(v) for v in want]


def test_batch_curve_checks_say_what_the_document_check_says():
    """`_curve_problems` (vectorised over a batch) gives each curve the messages the per
    document check (`_semantic_problems` on plain lists) gives it, in its order."""
    import numpy as np

    from flare_core.publish.scoreboard_json import _curve_problems, _semantic_problems

    curves = [([0.0, 1.0, 2.0], [1.0, 0.9, 0.8]), ([0.0], [1.0]),
              ([-1.0, 1.0, 1.0], [1.0, 0.95, 0.96]), ([0.0, np.inf], [1.0, 0.5]),
              ([0.0, 2.0, 1.0], [1.0, 1.5, -0.1]), ([0.0, 1.0], [0.5, 0.5 + 5e-7])]
    t = np.concatenate([np.asarray(c[0]) for c in curves])
    sv = np.concatenate([np.asarray(c[1]) for c in curves])
    ends = np.cumsum([len(c[0]) for c in curves])
    got = _curve_problems(t, sv, ends - [len(c[0]) for c in curves], ends)
    for i, (time_h, surv) in enumerate(curves):
        region = {"region_ids": [{"type": "HARP", "number": str(i)}],
                  "prediction_window": {"start_time": "2014-10-22T00:00Z",
                                        "end_time": "2014-10-23T00:00Z"},
                  "survival_curve": {"time_h": time_h, "survival_probability": surv}}
        want = _semantic_problems({"full_disk_forecasts": [], "region_forecasts": [region]})
        assert [f"region_forecasts/0/survival_curve: {p}" for p in got[i]] == want, i
    assert got[0] == () and got[1] == () and got[5] == ()


def test_written_files_are_json_dumps_of_the_built_documents(tmp_path, issue_times):
    """The batch path (curves and regions encoded by shape, a writer thread) writes, for
    every group, ``json.dumps(build_scoreboard_document(group), indent=1)``: odd NOAA lists,
    absent classes, no curve, a rounding tie, failed regions, a headline method."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    fc = pl.concat([
        make_forecasts(issue_times[:3]),
        make_forecasts(issue_times[:2], model="headline", seed=2, with_curves=False)
        .with_columns(pl.lit("M+: cox_ph").alias("method"), pl.lit(None, pl.Float64)
                      .alias("p_x24"), pl.lit("12190; 0,12191").alias("noaa_ars")),
    ]).with_columns(pl.when(pl.col("harpnum") == 4676).then(
        pl.col("survival_curve").list.eval(pl.element().clip(upper_bound=0.03125)))
        .otherwise(pl.col("survival_curve")).alias("survival_curve"))
    failed = pl.DataFrame({"issue_time": [issue_times[1]], "harpnum": [4711],
                           "model_version": ["v1"], "series": [None],
                           "reason": ["input: \u00e9 \"quoted\""]}, schema=FAILED_SCHEMA)
    paths = write_scoreboard_json(fc, tmp_path, mode="historical", failed=failed)
    groups = fc.partition_by("issue_time", "model", as_dict=True)
    assert len(paths) == len(groups) == 5
    for part in groups.values():
        doc = build_scoreboard_document(part, mode="historical", failed=failed)
        from flare_core.publish.scoreboard_json import scoreboard_filename

        text = (tmp_path / scoreboard_filename(doc)).read_text()
        assert text == json.dumps(doc, indent=1, allow_nan=False) + "\n"
