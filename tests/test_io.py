"""`flare_core.io`: one atomic write, one set of SHA-256 hashes."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

import flare_core.io as fio
from flare_core.io import (
    atomic_file,
    atomic_write,
    hash_bytes,
    hash_files,
    hash_json,
    hash_path,
    temp_files_of,
)


def test_module_examples_run():
    res = doctest.testmod(fio, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("fsync", [True, False])
def test_atomic_write_bytes_text_and_callback(tmp_path, fsync):
    target = tmp_path / "sub" / "dir" / "f.json"  # parents are created
    assert atomic_write(target, b"\x00raw", fsync=fsync) == target
    assert target.read_bytes() == b"\x00raw"
    atomic_write(target, "ä line\r\n", fsync=fsync)  # encoded as given, no newline change
    assert target.read_bytes() == "ä line\r\n".encode()
    atomic_write(target, "x", encoding="latin-1", fsync=fsync)
    assert target.read_bytes() == b"x"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps({"a": 1})), fsync=fsync)
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.json"]


def test_atomic_write_keeps_the_target_on_error(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"good")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"good"
    assert list(tmp_path.iterdir()) == [target]  # the temporary file is gone
    with pytest.raises(TypeError, match="bytes, str or a callable"):
        atomic_write(target, 42)  # type: ignore[arg-type]
    assert target.read_bytes() == b"good"


def test_interrupt_while_writing_removes_the_temporary_file(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as f:
        f.path.write_text("partial")
        raise KeyboardInterrupt
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_a_reader_never_sees_a_partial_file(tmp_path):
    """While the writer has written half its content, the target still holds the old one."""
    target = tmp_path / "page.html"
    atomic_write(target, "old")
    with atomic_file(target) as f:
        assert f.path.parent == tmp_path and f.path.name.startswith(".page.html.")
        f.path.write_text("ne")
        assert target.read_text() == "old"
        assert temp_files_of(target) == [f.path]
        with f.path.open("a") as fh:
            fh.write("w")
    assert target.read_text() == "new" and temp_files_of(target) == []


def test_content_addressed_target(tmp_path):
    with atomic_file(tmp_path / "frame.parquet") as f:
        f.path.write_bytes(b"rows")
        f.target = tmp_path / f"frame-{hash_path(f.path)[:16]}.parquet"
    assert [p.name for p in tmp_path.iterdir()] == [
        f"frame-{hashlib.sha256(b'rows').hexdigest()[:16]}.parquet"]
    with pytest.raises(ValueError, match="same directory"), \
            atomic_file(tmp_path / "a.bin") as f:
        f.path.write_bytes(b"x")
        f.target = tmp_path / "elsewhere" / "a.bin"
    assert not (tmp_path / "a.bin").exists() and temp_files_of(tmp_path / "a.bin") == []


def test_new_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_hash_path_of_a_file_and_a_directory(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_bytes(b"alpha")
    (tmp_path / "d" / "sub" / "b.txt").write_bytes(b"beta")
    assert hash_path(tmp_path / "d" / "a.txt") == hashlib.sha256(b"alpha").hexdigest()
    expected = hashlib.sha256(b"a.txt" + b"alpha" + b"sub/b.txt" + b"beta").hexdigest()
    assert hash_path(tmp_path / "d") == expected
    (tmp_path / "d" / "sub" / "b.txt").rename(tmp_path / "d" / "b.txt")
    assert hash_path(tmp_path / "d") != expected  # a move inside the directory counts


def _format1_data_hash(paths) -> str:
    """The ``data_hash`` of MODEL_DIR format 1 as first written (before io.py): sha256 over
    each file's name then bytes, files sorted by path, directories recursively."""
    digest = hashlib.sha256()
    files = []
    for p in map(Path, paths):
        files.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    for p in sorted(files):
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


def test_hash_files_equals_training_hash_files(tmp_path, data_dir):
    """The data hash of a MODEL_DIR stays the same when computed by io."""
    training_hash_files = _format1_data_hash

    (tmp_path / "dir" / "deep").mkdir(parents=True)
    (tmp_path / "dir" / "x.csv").write_text("1,2\n")
    (tmp_path / "dir" / "deep" / "y.csv").write_text("3,4\n")
    (tmp_path / "z.txt").write_bytes(b"")
    flares = data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"
    harp_map = data_dir / "harp_noaa" / "all_harps_with_noaa_ars.txt"
    cases = [
        [flares],
        [harp_map, flares],
        [flares, harp_map, tmp_path / "dir", tmp_path / "z.txt"],
        [tmp_path / "dir"],
        [tmp_path / "z.txt", tmp_path / "z.txt"],
        [],
    ]
    for paths in cases:
        assert hash_files(paths) == training_hash_files(paths), paths
        assert hash_files([str(p) for p in paths]) == training_hash_files(paths)
    assert hash_files([flares, harp_map]) == hash_files([harp_map, flares])
    assert hash_files([]) == hashlib.sha256().hexdigest()


def test_hash_json(tmp_path):
    obj = {"b": [1, 2.5, None], "a": {"y": "t", "x": True}}
    assert hash_json(obj) == hashlib.sha256(
        json.dumps(obj, sort_keys=True).encode()).hexdigest()
    assert hash_json(obj) == hash_json(dict(reversed(list(obj.items()))))
    assert hash_json(obj, default=str) == hash_json(obj)  # JSON-able: default unused
    assert hash_json([1, 2]) != hash_json([2, 1])
    with pytest.raises(TypeError):
        hash_json({"p": tmp_path})
    assert hash_json({"p": tmp_path}, default=str) == hash_json({"p": str(tmp_path)})
    assert hash_bytes(b"") == hashlib.sha256(b"").hexdigest()


def test_io_is_the_only_atomic_write():
    """No package module renames temporary files by itself (issue 10: one atomic write)."""
    import re

    repo = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"\bos\.(replace|rename)\(|tempfile\.mkstemp\(")
    modules = [p for pkg in ("flare_core", "tasks", "flows", "flareflow", "deployments")
               for p in sorted((repo / pkg).rglob("*.py")) if p != repo / "flare_core" / "io.py"]
    offenders = [f"{p.relative_to(repo)}:{i}" for p in modules
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line.split("#", 1)[0])]
    assert offenders == []
