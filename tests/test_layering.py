"""flare_core is a plain library: importing it must not import Prefect or the orchestration."""

import subprocess
import sys


def test_flare_core_does_not_import_prefect():
    code = (
        "import sys, pkgutil, importlib, flare_core\n"
        "for m in pkgutil.walk_packages(flare_core.__path__, 'flare_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('prefect', 'tasks', 'flows')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
