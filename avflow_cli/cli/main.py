"""Entry point of the ``avflow`` CLI: assembles the command groups and reports user errors.

User errors (:class:`avflow_cli.errors.AvflowError`) are printed as one red line on stderr with
exit status 2; so are the file-system refusals a user's paths cause (a name too long, no
permission, a full or read-only disk, a path through a file: :data:`USER_OS_ERRORS`).
Everything else keeps its traceback, because it is a bug; ``AVFLOW_DEBUG=1`` shows tracebacks
for file-system errors too.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import click
import typer
from typer.core import TyperGroup

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


class AvflowGroup(TyperGroup):
    """Root command group that turns AvflowError (and file-system refusals) below it into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
    help="AV-Flow toolkit: text to speech, face motion and head motion of a talking avatar, jointly.",
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
