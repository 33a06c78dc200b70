"""One error style for every ``flareflow`` command, and the exit codes.

=====  ==================================================================================
code   meaning
=====  ==================================================================================
0      ok
1      failed: the command could not do its work (no model, no data at that time, an
       archive or the store failed)
2      bad input or usage: an unknown option or value, a time in the future, a file that
       is empty, malformed or of the wrong kind
3      partial: the command finished, but some regions failed (the others are published)
=====  ==================================================================================

A failure prints exactly one line, ``error: <message>``, on stderr; the traceback follows
only with ``--verbose`` (``flareflow --verbose <command>`` or a command's own ``-v``; both
go through `flareflow.cli.logs.setup_logging`). Commands wrap their body in `handled`, which
turns library errors into these codes; code that catches an error itself ends the command
with `fail` (the message and the code it chooses, `exit_code_of` by default).
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_PARTIAL", "fail", "handled",
           "set_verbose", "is_verbose", "exit_code_of"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

_state = {"verbose": False}

F = TypeVar("F", bound=Callable)


def set_verbose(verbose: bool) -> None:
    """Show tracebacks after the error line (``--verbose``); set by every invocation
    (`flareflow.cli.logs.setup_logging`)."""
    _state["verbose"] = bool(verbose)


def is_verbose() -> bool:
    """Whether this invocation asked for ``--verbose``."""
    return _state["verbose"]


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and end the command with ``code``.

    With ``--verbose`` the traceback of the exception being handled, if any, follows.
    """
    line = " ".join(str(message).split())  # one line, whatever the message held
    typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
    if _state["verbose"] and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    raise typer.Exit(code=code)


def exit_code_of(exc: BaseException) -> int:
    """`EXIT_USAGE` for bad input (`ConfigError`, `ParseError`, a typer ``BadParameter``),
    `EXIT_FAILED` for everything else."""
    from flare_core.errors import ConfigError, ParseError

    if isinstance(exc, ConfigError | ParseError | typer.BadParameter):
        return EXIT_USAGE
    return EXIT_FAILED


def _message(exc: BaseException) -> str:
    from flare_core.errors import FlareflowError

    if isinstance(exc, typer.BadParameter):
        return exc.format_message()
    if isinstance(exc, FlareflowError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def handled(fn: F) -> F:
    """Decorate a command: any exception becomes one `fail` line with its exit code."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the one place commands turn errors into codes
            fail(_message(e), exit_code_of(e))

    return wrapper  # type: ignore[return-value]
