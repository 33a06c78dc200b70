"""`flareflow.cli.logs.setup_logging`: one logging set-up for every command.

Each check runs in a fresh interpreter: pytest's own handlers sit on the root logger here,
and the set-up (rightly) leaves a root logger that has handlers alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_levels_format_and_one_handler():
    proc = _run("""
        import logging
        from flareflow.cli.errors import is_verbose
        from flareflow.cli.logs import setup_logging
        log = logging.getLogger("flare_core.example")
        setup_logging(False)
        log.info("info hidden"); log.warning("warning shown")
        logging.getLogger("somelib").info("third-party info hidden")
        setup_logging(None, level=logging.INFO)          # a model command: progress lines
        log.info("info shown"); log.debug("debug hidden")
        setup_logging(None, level=logging.INFO)
        print("handlers", len(logging.getLogger().handlers), "verbose", is_verbose())
        setup_logging(True)                               # flareflow --verbose
        setup_logging(None, level=logging.INFO)           # a command without -v keeps it
        log.debug("debug shown")
        print("verbose", is_verbose(), "root", logging.getLevelName(logging.getLogger().level))
        setup_logging(False)                              # the next invocation
        print("verbose", is_verbose())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["handlers", "1", "verbose", "False", "verbose", "True",
                                   "root", "WARNING", "verbose", "False"]
    lines = proc.stderr.splitlines()
    assert [ln.split(": ", 1)[1] for ln in lines] == ["warning shown", "info shown",
                                                       "debug shown"]
    assert all(LINE.match(ln) for ln in lines), lines
    assert lines[0].split()[1:3] == ["WARNING", "flare_core.example:"]


def test_a_configured_process_is_left_alone():
    proc = _run("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="app %(message)s", level=logging.INFO)
        from flareflow.cli.logs import setup_logging
        setup_logging(True, level=logging.INFO)
        logging.getLogger("flare_core.x").warning("once")
        logging.getLogger("flare_core.x").debug("not shown")
        print(len(logging.getLogger().handlers))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["app once", "1"] and proc.stderr == ""


def test_prefect_logging_takes_over_in_a_flow_run():
    """Prefect's logging set-up (a flow run) puts its console handler in place of ours: a
    line is printed once, as Prefect prints it, and a later set-up leaves that alone."""
    proc = _run("""
        import logging
        from flareflow.cli.logs import setup_logging
        setup_logging(False)
        from prefect.logging.configuration import setup_logging as prefect_setup
        prefect_setup()
        names = sorted(type(h).__name__ for h in logging.getLogger().handlers)
        setup_logging(False)
        print(names, sorted(type(h).__name__ for h in logging.getLogger().handlers))
        logging.getLogger("flare_core.x").warning("printed once")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['PrefectConsoleHandler'] ['PrefectConsoleHandler']"
    assert proc.stderr.count("printed once") == 1
    assert not any(LINE.match(ln) for ln in proc.stderr.splitlines())  # Prefect's format


def test_a_command_logs_its_warnings_in_that_format(tmp_path, data_dir):
    """``flareflow ingest file`` of a flare list with a bad class: the reader's WARNING line
    goes to stderr through the set-up, the summary to stdout."""
    lines = (data_dir / "flares/liu2019/M-class.csv").read_text().splitlines()[:5]
    lines[2] = "Q1.0" + lines[2][4:]
    bad = tmp_path / "M-class.csv"
    bad.write_text("\n".join(lines) + "\n")
    proc = _run("""
        import sys
        from flareflow.cli import app
        try:
            app(sys.argv[1:])
        except SystemExit as e:
            print("RC", e.code)
    """, "ingest", "file", str(bad), "--store", str(tmp_path / "store"))
    assert "RC 0" in proc.stdout and "1 unknown GOES class" in proc.stdout, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if " WARNING " in ln]
    assert warnings and all(LINE.match(ln) for ln in warnings), proc.stderr
    assert any("unknown GOES class" in ln for ln in warnings)
