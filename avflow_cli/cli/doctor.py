"""``avflow doctor``: what this installation can run, and where the pretrained parts are looked for."""

from __future__ import annotations

import platform
import sys

import typer
from rich.table import Table

from avflow_cli.console import console


def register(app: typer.Typer) -> None:
    """Add ``avflow doctor`` to the root app."""
    app.command("doctor")(doctor)


def doctor() -> None:
    """Check Python, torch, CUDA, external tools and pretrained checkpoints; say which fallbacks run.

    Checkpoints are searched in: an explicit --checkpoint path, then $AVFLOW_CHECKPOINTS (default
    ~/.cache/avflow/checkpoints), then torch hub's checkpoints folder, then inside installed wheels.
    """
    import torch

    from avflow_cli.checkpoints import active_choices, checkpoint_status, tool_status
    from avflow_cli.shipped import is_shipped, shipped_names

    env = Table(title="environment", show_header=False)
    env.add_column(no_wrap=True)
    env.add_column(overflow="fold")
    env.add_row("python", f"{platform.python_version()} ({sys.executable})")
    env.add_row("torch", torch.__version__)
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        env.add_row("CUDA", f"[green]yes[/] (CUDA {torch.version.cuda}): {names}")
    else:
        env.add_row("CUDA", "[yellow]no GPU visible[/]: CPU only")
    env.add_row("CPU threads", str(torch.get_num_threads()))
    for tool, path in tool_status().items():
        env.add_row(tool, f"[green]{path}[/]" if path else "[red]missing[/] (install the Debian package)")
    console.print(env)

    status = checkpoint_status()
    parts = Table(title="pretrained parts", expand=True)
    parts.add_column("part", ratio=2)
    parts.add_column("status (full paths)", ratio=5, overflow="fold")
    parts.add_column("without it", ratio=3)
    for st in status:
        if st.found:
            where = f"[green]found[/] {st.path}"
        else:
            name = st.spec.main_name + ("/" if st.spec.kind == "folder" else "")
            searched = "\n".join(f"  {d}" for d in st.searched)
            where = f"[red]missing[/] {name}\nsearched:\n{searched}"
        parts.add_row(st.spec.title, where, st.spec.fallback)
    console.print(parts)

    roles = Table(title="what will run", show_header=False)
    roles.add_row("model (no --model)", _default_model())
    for name in shipped_names():
        roles.add_row(f"--model {name}", "[green]shipped[/]" if is_shipped(name) else "not shipped in this version")
    for role, choice in active_choices(status).items():
        roles.add_row(role, choice)
    console.print(roles)


def _default_model() -> str:
    """Which model a plain ``avflow synth`` would use, and why (or why none)."""
    from avflow_cli.errors import AvflowError
    from avflow_cli.shipped import choose_model

    try:
        choice = choose_model(None)
    except AvflowError as err:
        return f"[red]{err}[/]"
    return f"{choice.path} ({choice.origin()})"
