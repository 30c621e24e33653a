"""Importers: published datasets and plain videos → the session layout `prep` reads.

One module per source, each writing docs/INTERFACES.md §1 sessions through
:mod:`avflow_cli.data.importers.session` (validated, atomic, skipped when finished):
``a2p`` (Audio2Photoreal), ``avflow50h`` (the AV-Flow authors' 50 h dataset), ``video`` (one
monocular talking-head video through SMIRK) and ``ljspeech`` (text-to-tokens training folder).
docs/data_formats.md lists exactly which published file feeds which session file.
"""
