"""Thin test wrapper: `flare_core.sources.jsoc_replay.JsocReplay` serving given records.

`JsocReplayServer(records)` replays a list of JSOC keyword dicts (strings, T_REC in TAI)
for the definitive CEA and both NRT series names with no replay clock (everything served) and no
outage schedule: the SWAN-SF sample (`load_swan_records`) or records a test builds from a
store. Faults are `JsocReplay`'s (``server.inject(name)`` / ``server.faults``; the old names
``"500"``, ``"status"``, ``"empty"``, ``"truncated"`` still work). The NRT stream as JSOC
served it is `JsocReplay` itself (see ``tests/sources/test_jsoc_nrt.py``).
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import polars as pl

from flare_core.sources.jsoc_replay import JsocReplay

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
KEYWORDS_CSV = DATA / "jsoc/hmi.sharp_cea_720s_keywords.csv"
#: the records answer to the definitive CEA name and both NRT names (the live flows ask for
#: ``hmi.sharp_720s_nrt``): a stand-in archive, not a claim about which series they are from
SERIES = ("hmi.sharp_cea_720s", "hmi.sharp_cea_720s_nrt", "hmi.sharp_720s_nrt")
_TAI_FMT = "%Y.%m.%d_%H:%M:%S_TAI"


def load_swan_records(mvts_dir: Path = DATA / "swan_sf/mvts") -> list[dict[str, str]]:
    """One dict of JSOC keyword -> string per record of the SWAN-SF sample windows.

    The SWAN-SF ``Timestamp`` is the (TAI) T_REC; overlapping windows repeat a record, so
    records are unique on (HARPNUM, T_REC). Missing values are served as ``nan``.
    """
    recs: dict[tuple[str, str], dict[str, str]] = {}
    for f in sorted(mvts_dir.glob("*.csv")):
        harp = re.search(r"_id\[(\d+)\]", f.name).group(1)
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                t = datetime.fromisoformat(row["Timestamp"]).strftime(_TAI_FMT)
                rec = {"HARPNUM": harp, "T_REC": t}
                for k, v in row.items():
                    if k in ("Timestamp", "NOAA_AR") or "FLARE" in k or k.startswith("XR_"):
                        continue
                    v = (v or "").strip()
                    rec[k] = v if v and v not in ("NA", "None") else "nan"
                q = rec.get("QUALITY", "nan")
                rec["QUALITY"] = f"0x{int(float(q)):08x}" if q != "nan" else "0x00000000"
                noaa = (row.get("NOAA_AR") or "").strip()
                rec["NOAA_ARS"] = ",".join(str(int(float(a))) for a in noaa.split(";") if a)
                recs.setdefault((harp, t), rec)
    return sorted(recs.values(), key=lambda r: (int(r["HARPNUM"]), r["T_REC"]))


class JsocReplayServer(JsocReplay):
    """`JsocReplay` of a list of record dicts; ``with`` gives the server (``.url``)."""

    def __init__(self, records: list[dict[str, str]] | None = None, *,
                 slow_s: float = 2.0) -> None:
        recs = records if records is not None else load_swan_records()
        frame = pl.from_dicts(recs, infer_schema_length=None).select(pl.all().cast(pl.Utf8))
        super().__init__(frame, series=SERIES, keyword_table=KEYWORDS_CSV, clock=None,
                         outages=(), slow_s=slow_s)

    def __enter__(self) -> JsocReplayServer:  # type: ignore[override]
        self.start()
        return self
