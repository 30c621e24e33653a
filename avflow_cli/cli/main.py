"""Entry point of the ``avflow`` CLI: assembles the command groups and reports user errors.

User errors (:class:`avflow_cli.errors.AvflowError`) are printed as one red line on stderr with
exit status 2; so are the file-system refusals a user's paths cause (a name too long, no
permission, a full or read-only disk, a path through a file: :data:`USER_OS_ERRORS`).
Everything else keeps its traceback, because it is a bug; ``AVFLOW_DEBUG=1`` shows tracebacks
for file-system errors too.

Usage errors (a bad option value, a missing argument: click's ``UsageError``) are one line too,
``error: avflow synth: Invalid value for '--speed': …``, exit status 2, for every command.

SIGTERM (``kill``, a job scheduler, ``timeout``) is handled like Ctrl-C: the handler raises
KeyboardInterrupt, so the cleanup every command already runs on Ctrl-C (temporaries beside
outputs, temporary folders) runs too; the exit status is 128 + 15.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer ≥ 0.20 carries its own copy of click; its usage errors are that copy's classes
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_errors

from avflow_cli import __version__
from avflow_cli.console import err_console
from avflow_cli.errors import AvflowError


USER_OS_ERRORS = frozenset({
    errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
    errno.EISDIR, errno.ELOOP, errno.EXDEV, errno.ENOENT,
})


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """Within the block SIGTERM raises KeyboardInterrupt (once); yields a list that holds the
    signal number once one arrived. Only the main thread can own signal handlers."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def interrupt(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _usage_exit(err: click_errors.UsageError) -> Exception:
    """What to raise for a usage error: the help itself for a bare group (``avflow train``), else
    one line ``error: avflow synth: Invalid value for '--steps': …`` and exit status 2."""
    if type(err).__name__ == "NoArgsIsHelpError":
        return err
    where = err.ctx.command_path if err.ctx is not None else "avflow"
    return _fail(f"{where}: {' '.join(err.format_message().split())}", err.exit_code)


class AvflowGroup(TyperGroup):
    """Root command group that turns AvflowError (and file-system refusals) below it into one line."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main with SIGTERM handled as Ctrl-C (module docstring): exit status 128 + 15."""
        with _sigterm_as_interrupt() as received:
            try:
                rv = super().main(args, prog_name, complete_var, standalone_mode=standalone_mode, **extra)
            except SystemExit:
                if received:
                    raise SystemExit(128 + received[0]) from None
                raise
        return 128 + received[0] if received else rv

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:  # the root's own options and arguments
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_errors.UsageError as err:
            raise _usage_exit(err) from None

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click_errors.UsageError as err:  # a command's options and arguments, an unknown command
            raise _usage_exit(err) from None
        except AvflowError as err:
            raise _fail(str(err), err.exit_code) from None
        except OSError as err:
            if err.errno not in USER_OS_ERRORS or os.environ.get("AVFLOW_DEBUG"):
                raise
            where = err.filename if err.filename is not None else "file system"
            raise _fail(f"{where}: {err.strerror or err}") from None


app = typer.Typer(
    cls=AvflowGroup,
    name="avflow",
    help="AV-Flow toolkit: text to speech, face motion and head motion of a talking avatar, jointly.\n\n"
         "Commands that take a model use the shipped one (`pretrained`) unless --model names another, or "
         "AVFLOW_MODEL does (a model directory or a shipped name); `avflow doctor` shows which.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"avflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """AV-Flow toolkit: prep data, train, synthesize and evaluate talking avatars."""


def _register() -> None:
    from avflow_cli.cli import data, demo, doctor, eval as eval_cli, importers, prep, render, serve, synth, train

    app.add_typer(prep.app, name="prep", help="Prepare data: VAD, mel, tokens, head pose, SMIRK, HDF5 shards.")
    app.add_typer(data.app, name="data", help="Inspect and verify shard directories.")
    app.add_typer(train.app, name="train", help="Train the head-pose VAE, AV-Flow and text-to-tokens.")
    synth.register(app)
    from avflow_cli.cli import converse

    converse.register(app)
    from avflow_cli.cli import live

    live.register(app)
    render.register(app)
    serve.register(app)
    app.add_typer(eval_cli.app, name="eval")  # its callback docstring (examples, GEN layout) is the help
    app.add_typer(demo.app, name="demo", help="Built-in demo: corpus generation and the whole lifecycle.")
    app.add_typer(importers.app, name="import", help="Import released checkpoints into avflow model directories.")
    doctor.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="avflow")


if __name__ == "__main__":  # pragma: no cover
    main()
