"""The one logging set-up of every ``flareflow`` command.

`setup_logging` runs first in every invocation (the ``flareflow`` callback, with
``--verbose``) and again in commands that have their own ``-v`` or want progress lines
(``train``, ``predict``, ``evaluate``: ``level=logging.INFO``). It

* sets whether error lines are followed by their traceback (`errors.set_verbose`);
* gives the root logger one stderr handler (`_CliLogHandler`), lines
  ``2014-10-22T13:00:00Z INFO flare_core.training: message`` (UTC), at WARNING by default,
  ``level`` when a command asks for more, DEBUG with ``--verbose``; flareflow's own
  packages (``flare_core``, ``flareflow``, ``tasks``, ``flows``) log at that level too,
  third-party libraries stay at WARNING.

It leaves alone a process whose root logger already has other handlers (like
`logging.basicConfig`: a test harness, an application embedding the CLI). When a command
then runs a Prefect flow, Prefect's logging set-up replaces the handler with its own
console handler, so flow-run lines (and flareflow's) look as Prefect prints them, once.
"""

from __future__ import annotations

import logging
import sys
import time

from .errors import is_verbose, set_verbose

__all__ = ["setup_logging", "LOG_FORMAT"]

#: Format of the command line's log lines (UTC times, ISO 8601).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PACKAGES = ("flare_core", "flareflow", "tasks", "flows")


class _CliLogHandler(logging.StreamHandler):
    """Writes to the *current* ``sys.stderr`` (which a test runner may swap per command).

    The leading underscore is deliberate: Prefect's logging set-up replaces root handlers
    whose class names start with ``_`` by its console handler; one it took for the user's
    own would stay, and Prefect's INFO lines of a flow run would go unprinted.
    """

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(sys.stderr)
        self.setLevel(level)
        formatter = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        self.setFormatter(formatter)

    @property  # type: ignore[override]
    def stream(self):
        """The stream of the moment: ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it
        pass


def setup_logging(verbose: bool | None = None, *, level: int = logging.WARNING) -> None:
    """Configure logging and error verbosity for one ``flareflow`` command.

    Parameters
    ----------
    verbose : bool or None, default None
        ``--verbose``: DEBUG lines, and tracebacks after error lines. The ``flareflow``
        callback passes its flag (True or False: a new invocation); a command's own ``-v``
        passes ``verbose or None``, None keeping what the invocation set.
    level : int, default logging.WARNING
        The lowest level shown without ``verbose`` (``logging.INFO`` for progress lines).
    """
    if verbose is not None:
        set_verbose(verbose)
    shown = logging.DEBUG if is_verbose() else level
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _CliLogHandler)]
    if root.handlers and not ours:
        return  # configured by someone else (like logging.basicConfig): left as it is
    if ours:
        ours[0].setLevel(shown)
    else:
        root.addHandler(_CliLogHandler(shown))
    # flareflow's packages log INFO at least: Prefect's run logs take flare_core INFO lines
    # (tasks.common), whatever this handler shows
    target = min(shown, logging.INFO)
    for name in _PACKAGES:
        pkg = logging.getLogger(name)
        if pkg.level == logging.NOTSET or pkg.level > target:
            pkg.setLevel(target)
