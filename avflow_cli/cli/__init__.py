"""The ``avflow`` command line: one Typer module per command group, each thin over the library."""
