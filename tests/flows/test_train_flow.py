"""Ingest and train flows on real data: results, caching and the validation artifact."""

from __future__ import annotations

import json
from pathlib import Path

from flare_core.store import Store
from tests.flows.conftest import TEST_MODELS, TRAIN_END, TRAIN_START, bundled_test_files


def test_ingest_filled_the_store(installation):
    info = Store(installation["root"]).info()["tables"]
    kinds = [r["kind"] for r in installation["ingest"]]
    assert kinds == ["harp_map", "sharp", "sharp", "flares"]  # the map first, flares last
    assert info["sharp"]["harps"] > 100 and info["flares"]["with_harpnum"] > 1000
    assert sum(r["rows_added"] for r in installation["ingest"] if r["kind"] == "sharp") \
        == info["sharp"]["rows"]


def test_reingest_is_cached_and_changes_nothing(installation, data_dir):
    from flows.ingest import ingest_files

    gen = Store(installation["root"]).manifest()["generation"]
    state = ingest_files(bundled_test_files(data_dir), str(installation["root"]),
                         return_state=True)
    reports = state.result()
    assert reports == installation["ingest"]  # the cached results, not a second ingestion
    assert Store(installation["root"]).manifest()["generation"] == gen


def test_model_trained_only_before_the_cut(installation):
    meta = json.loads((Path(installation["model_dir"]) / "model.json").read_text())
    assert set(meta["models"]) == set(TEST_MODELS)
    assert meta["training_range"]["end"] <= TRAIN_END.isoformat()
    assert meta["training_range"]["start"] >= TRAIN_START.isoformat()


def test_retrain_on_unchanged_data_is_cached(installation):
    from flows.train import train

    model_json = Path(installation["model_dir"]) / "model.json"
    before = model_json.stat().st_mtime_ns
    again = train(TRAIN_START, TRAIN_END, str(installation["root"]), quick=True,
                  config={"models": TEST_MODELS})
    assert again == installation["model_dir"]
    assert model_json.stat().st_mtime_ns == before  # not retrained


def test_validation_skill_artifact(installation):
    from prefect.artifacts import Artifact

    art = Artifact.get("validation-skill")
    assert art is not None and art.type == "table"
    rows = json.loads(art.data)
    assert {r["model"] for r in rows} >= {"logistic"}
