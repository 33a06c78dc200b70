"""Save an evaluation's results and write its generated block into EVALUATION.md.

Used by the evaluation scripts (`evaluate_nrt.py`, `evaluate_resampling.py`): the text
between ``begin`` and ``end`` is replaced; when the markers are absent, ``heading`` and
the block are inserted before the first line starting with ``before`` (or appended).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_block(path: Path, begin: str, end: str, text: str, *, heading: str,
                before: str | None = None) -> None:
    """Replace (or insert, under ``heading``) the marked block of ``path``."""
    doc = path.read_text(encoding="utf-8")
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        i = doc.find(before) if before else -1
        doc = (doc[:i].rstrip() + heading + block + "\n" + doc[i:] if i >= 0
               else doc.rstrip() + heading + block + "\n")
    path.write_text(doc, encoding="utf-8")


def save_results(res: dict[str, Any], json_path: Path, text: str, *, write: bool,
                 write_evaluation: Any) -> None:
    """Write ``res`` to ``json_path``, print the Markdown ``text`` and, when ``write``, put it
    into EVALUATION.md with ``write_evaluation(text)``."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=1, default=str))
    print(text)
    if write:
        write_evaluation(text)
