"""benchmarks/figures_table.py: the README targets table comes from recorded RESULT lines."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "figures_table.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_table_takes_the_newest_line_and_judges_each_target(tmp_path: Path) -> None:
    log = tmp_path / "results.log"
    log.write_text(
        "# a comment RESULT seconds=1\n"
        "bench_features.py RESULT records=10000000 seconds=152.8 peak_rss_gib=1.5 "
        "speedup_vs_pandas=17.8\n"
        "$ python benchmarks/bench_features.py --records 10000000\n"
        "... progress ...\n"
        "RESULT records=10000000 seconds=48.1 peak_rss_gib=5.2 speedup_vs_pandas=41\n"
        "bench_survival.py RESULT layout=paper baseline_speedup=20 predict_speedup=70 "
        "max_diff=3e-7\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- figures-table -->\nold\n<!-- figures-table -->\nrest\n")
    assert _run("--log", str(log), "--readme", str(readme), "--check").returncode == 1
    done = _run("--log", str(log), "--readme", str(readme))
    assert done.returncode == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| 48.1 | met |" in text  # the newest features run, not the first
    assert "| 20 | **missed** |" in text  # baseline 20x < 50x
    assert "| 70 | met |" in text
    assert "bench_forecast.py` | one hourly forecast" in text and "not measured" in text
    # 6 targets of the two benchmarks in the log (5 met, 1 missed); every other not measured
    spec = importlib.util.spec_from_file_location("figures_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    unmeasured = len(module.TARGETS) - 6
    assert done.stdout.strip().splitlines()[-1] == (
        f"RESULT met=5 missed=1 not_measured={unmeasured}")
    assert _run("--log", str(log), "--readme", str(readme), "--check").returncode == 0
