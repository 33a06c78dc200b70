"""Writing files atomically and hashing their content: the one implementation of each.

Atomic writes
-------------
`atomic_write` puts bytes, text, or whatever a writer callback produces into a temporary
file in the target's directory (``.<name>.<random>.tmp``, so the final rename never crosses
a file system), flushes it to disk (``fsync``), then moves it onto the target with
`os.replace`. A reader sees the old file or the new one, never a half-written file; an
error (or ``KeyboardInterrupt``) while writing removes the temporary file and leaves the
target as it was. `atomic_file` is the same as a context manager, for a target whose name
is known only once the content is written (content-addressed names).

``fsync=False`` skips the two flushes (the file's and its directory's): the write stays
atomic for readers, but a power cut shortly after it may leave the old file or an empty one.
Files that can be rebuilt from other data and come in numbers or sizes where the flushes
would cost measurable time use it (scoreboard documents, feature parts).

New files get the permissions of a plain ``open(path, "w")`` (``0o666`` less the umask),
not the ``0o600`` of `tempfile.mkstemp`; parent directories are created.

Hashes
------
SHA-256, hex digests: `hash_bytes` of bytes, `hash_path` of a file (its bytes) or of a
directory (each file's relative path and bytes), `hash_files` of several files and
directories (each file's name and bytes, the files sorted by path: the data hash of a
MODEL_DIR, equal to `flare_core.training.hash_files`), `hash_json` of a JSON-able object
(``sort_keys=True``, so dict order does not matter).

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", "one line\\n").read_text()
'one line\\n'
>>> hash_path(d / "a.txt") == hash_bytes(b"one line\\n")
True
>>> _ = atomic_write(d / "b.bin", lambda tmp: tmp.write_bytes(b"\\x00\\x01"))
>>> sorted(p.name for p in d.iterdir())  # no temporary file is left behind
['a.txt', 'b.bin']
>>> hash_json({"b": 1, "a": [1, 2]}) == hash_json({"a": [1, 2], "b": 1})
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "AtomicFile",
    "atomic_file",
    "atomic_write",
    "temp_files_of",
    "hash_bytes",
    "hash_path",
    "hash_files",
    "hash_json",
]

_CHUNK = 1 << 20
_TEMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------------------ atomic writes


class AtomicFile:
    """The temporary file of an `atomic_file` block and the target it will replace.

    Attributes
    ----------
    path : pathlib.Path
        The temporary file to write (it exists, empty, when the block starts).
    target : pathlib.Path
        What ``path`` replaces when the block ends without an error. It may be reassigned
        inside the block (a name derived from the content), to a file of the same directory.
    """

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target

    def __repr__(self) -> str:
        return f"AtomicFile(path={str(self.path)!r}, target={str(self.target)!r})"


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty ``.<name>.<random>.tmp`` next to ``target`` (mode 0o666 less umask),
    open for writing: its file descriptor and path."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[AtomicFile]:
    """Write a temporary file in the block; on a clean exit it replaces ``path``.

    Parameters
    ----------
    path : path-like
        The target; its parent directories are created. Reassign ``AtomicFile.target``
        inside the block to replace another file of the same directory instead.
    fsync : bool, default True
        Flush the file and its directory to disk (see the module docstring).

    Yields
    ------
    AtomicFile
        ``.path`` is the temporary file to write, ``.target`` what it replaces.

    Raises
    ------
    ValueError
        ``target`` was moved to another directory.

    Notes
    -----
    An exception in the block, or from the replace, removes the temporary file and
    propagates; the target is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_file(d / "part.bin") as f:
    ...     _ = f.path.write_bytes(b"payload")
    ...     f.target = d / f"part-{hash_path(f.path)[:8]}.bin"
    >>> [p.name for p in d.iterdir()]
    ['part-239f59ed.bin']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target)
    os.close(fd)
    f = AtomicFile(tmp, target)
    try:
        yield f
        final = Path(f.target)
        if final.parent != target.parent and final.parent.resolve() != target.parent.resolve():
            raise ValueError(f"atomic_file: target moved from {target.parent} to "
                             f"{final.parent}; it must stay in the same directory")
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(final.parent)


def atomic_write(path: str | os.PathLike[str],
                 data: bytes | bytearray | memoryview | str | Callable[[Path], Any], *,
                 encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, `os.replace`).

    Parameters
    ----------
    path : path-like
        Target file; parent directories are created.
    data : bytes, str or callable
        Bytes are written as they are; a str is encoded with ``encoding`` (no newline
        translation); a callable is called with the temporary file's path and writes it
        itself (``lambda tmp: frame.write_parquet(tmp)``); its return value is ignored.
    encoding : str, default "utf-8"
        Encoding of a str ``data``.
    fsync : bool, default True
        Flush the file and its directory to disk (see the module docstring).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        ``data`` is none of the three kinds.
    OSError
        The write or the replace failed (the temporary file is removed, ``path`` kept as
        it was); whatever the callback raises propagates the same way.
    """
    target = Path(path)
    if callable(data):
        with atomic_file(target, fsync=fsync) as f:
            data(f.path)
        return target
    if isinstance(data, str):
        data = data.encode(encoding)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write: data must be bytes, str or a callable, got "
                        f"{type(data).__name__}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target)
    try:
        with open(fd, "wb") as fh:  # closes fd
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(target.parent)
    return target


def temp_files_of(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that interrupted atomic writes of ``path`` left behind (a crash
    between creating and replacing), for clean-up by the owner of ``path``."""
    target = Path(path)
    return sorted(target.parent.glob(f".{target.name}.*{_TEMP_SUFFIX}"))


# ------------------------------------------------------------------------------------- hashes


def _update_with_file(digest: Any, path: Path) -> None:
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 (hex) of ``data``."""
    return hashlib.sha256(data).hexdigest()


def hash_path(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, or of every file under a directory.

    Parameters
    ----------
    path : path-like
        A file: the digest of its bytes (equal to ``hash_bytes(path.read_bytes())``). A
        directory: the files under it, recursively, sorted by path, each contributing its
        path relative to ``path`` (UTF-8) and then its bytes; renaming or moving a file
        inside the directory changes the digest.

    Returns
    -------
    str
        64 hex digits.
    """
    p = Path(path)
    digest = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(str(f.relative_to(p)).encode())
            _update_with_file(digest, f)
    else:
        _update_with_file(digest, p)
    return digest.hexdigest()


def hash_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """SHA-256 (hex) of several files and directories, as one digest.

    Parameters
    ----------
    paths : iterable of path-like
        Files and directories (expanded to the files under them, recursively).

    Returns
    -------
    str
        64 hex digits over every file, sorted by path, each contributing its *name* (not
        its directory, UTF-8) and then its bytes. The order of ``paths`` does not matter;
        the same file listed twice counts twice. This is the data hash of a MODEL_DIR
        (`flare_core.training.hash_files` gives the same digest).
    """
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    digest = hashlib.sha256()
    for p in sorted(files):
        digest.update(p.name.encode())
        _update_with_file(digest, p)
    return digest.hexdigest()


def hash_json(obj: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """SHA-256 (hex) of ``json.dumps(obj, sort_keys=True, default=default)`` (UTF-8).

    Parameters
    ----------
    obj : JSON-able object
        Dicts are hashed independently of their key order; lists keep their order.
    default : callable, optional
        Turns what JSON cannot hold into something it can (``default=str`` for paths and
        datetimes); None (the default) raises ``TypeError`` for such values. For an object
        that is JSON-able already, ``default`` does not change the digest.

    Returns
    -------
    str
        64 hex digits.
    """
    return hash_bytes(json.dumps(obj, sort_keys=True, default=default).encode())
