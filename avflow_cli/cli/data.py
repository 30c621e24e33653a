"""``avflow data verify|info``: check a shard directory against its manifest, and summarise it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from avflow_cli.console import console, progress

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify(
    shard_dir: Path = typer.Argument(..., help="Shard directory (holding index.json and shard-*.h5)."),
    max_problems: int = typer.Option(20, help="How many problems to list before summarising the rest."),
) -> None:
    """Check every shard against index.json: files, clip groups, lengths, dims and finite values."""
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.data.verify import verify_shards
    from avflow_cli.errors import AvflowError

    if max_problems < 0:
        raise AvflowError(f"--max-problems must be 0 or more, got {max_problems}")
    total = len(ShardIndex.load(shard_dir).clips)
    with progress(transient=True) as bar:
        task = bar.add_task("verify", total=total, status=str(shard_dir))
        report = verify_shards(shard_dir, on_clip=lambda: bar.advance(task))
    if report.ok:
        console.print(f"[green]ok[/]: {report.clips_checked} clips in {report.shards_checked} shards match index.json")
        return
    for problem in report.problems[:max_problems]:
        console.print(f"[red]✗[/] {problem}", highlight=False)
    more = len(report.problems) - max_problems
    if more > 0:
        console.print(f"… and {more} more")
    raise AvflowError(f"{shard_dir}: {len(report.problems)} problem(s) found")


@app.command("info")
def info(
    shard_dir: Path = typer.Argument(..., help="Shard directory (holding index.json)."),
    max_problems: int = typer.Option(10, help="How many shard problems to list before summarising the rest."),
) -> None:
    """Clips, hours, per-split counts and per-stream dims / means / stds (train statistics).

    Also opens every shard (cheaply: no values are read) and fails, after the summary, when one
    is missing or unreadable; `avflow data verify` checks every value.
    """
    from avflow_cli.data.verify import shard_info
    from avflow_cli.errors import AvflowError

    if max_problems < 0:
        raise AvflowError(f"--max-problems must be 0 or more, got {max_problems}")

    summary = shard_info(shard_dir)
    console.print(
        f"[bold]{shard_dir}[/]: {summary['clips']} clips from {summary['sessions']} sessions in "
        f"{summary['shards']} shards, {summary['hours']:.3f} h at {summary['fps']:.4f} fps"
    )
    splits = Table("split", "clips", "sessions", "hours", title="splits")
    for name, s in summary["splits"].items():
        splits.add_row(name, str(s["clips"]), str(s["sessions"]), f"{s['hours']:.3f}")
    console.print(splits)
    streams = Table("stream", "dim", "mean (avg over dims)", "std (avg over dims)", "extractor", title="streams")
    for name, s in summary["streams"].items():
        fmt = (lambda v: "—" if v is None else f"{v:.4g}")
        streams.add_row(name, str(s["dim"]), fmt(s["mean"]), fmt(s["std"]), s["extractor"])
    console.print(streams)
    problems = summary["problems"]
    if problems:
        for problem in problems[:max_problems]:
            console.print(f"[red]✗[/] {problem}", highlight=False, soft_wrap=True)
        if len(problems) > max_problems:
            console.print(f"… and {len(problems) - max_problems} more")
        raise AvflowError(f"{shard_dir}: {len(problems)} shard problem(s): the clips and hours above are the manifest's, "
                          "not what can be read; `avflow data verify` checks everything")
