"""The one writer of avflow's output folders (synth, streamed synth, converse, live).

An output folder holds ``speech.wav``, ``motion.npz``, ``meta.json`` and optionally
``preview.mp4`` (converse adds ``conversation.wav``, live ``live_stats.json``). :class:`OutputFolder` checks the target
before any work (the rule of :mod:`avflow_cli.fsutil`: a missing, empty or own-kind folder is
fine, anything else needs ``force``, and a folder the job reads is refused even with it),
stages every file in a temporary folder beside it, and commits on success: a new folder appears
whole; into an existing one only avflow's own file names (:data:`OWNED`) are replaced, one
atomic rename each with ``meta.json`` last, so ``--force`` never wipes a user's folder and a
user's ``face.mp4`` next to ``speech.wav`` survives a re-run. A failed or killed job leaves
nothing (the staging folder is removed; after ``kill -9`` the next run removes it).

    with OutputFolder(out, kind="synth", force=force, protect=synth.reads) as folder:
        with folder.audio_stream(sample_rate) as speech:   # streamed audio, appended as it arrives
            for chunk in chunks:
                speech.append(chunk.wav)
        folder.write_npz(MOTION_NAME, face=face, fps=fps)
        folder.write_json(META_NAME, meta)
    # committed here
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.fsutil import atomic_dir, check_output_dir

SPEECH_NAME = "speech.wav"
MOTION_NAME = "motion.npz"
META_NAME = "meta.json"
PREVIEW_NAME = "preview.mp4"
CONVERSATION_NAME = "conversation.wav"
LIVE_STATS_NAME = "live_stats.json"  # avflow live: what the session measured
OWNED = (SPEECH_NAME, CONVERSATION_NAME, MOTION_NAME, PREVIEW_NAME, LIVE_STATS_NAME, META_NAME)  # commit order: meta.json last


class AudioAppender:
    """16-bit PCM wav written as chunks arrive (the stream's audio, before it is complete)."""

    def __init__(self, path: Path, sample_rate: int, channels: int = 1) -> None:
        import soundfile as sf

        self.path, self.sample_rate = path, int(sample_rate)
        self.samples = 0
        self._file = sf.SoundFile(str(path), "w", samplerate=self.sample_rate, channels=channels,
                                  subtype="PCM_16", format="WAV")

    def append(self, wav: np.ndarray) -> None:
        """Append samples ((N,) mono or (N, C)); flushed so a reader of the staging file sees them."""
        wav = np.asarray(wav, np.float32)
        if wav.size:
            self._file.write(np.clip(wav, -1.0, 1.0))
            self._file.flush()
            self.samples += len(wav)

    def close(self) -> None:
        self._file.close()


class OutputFolder:
    """One output folder being written: check first, stage each file, commit on success."""

    def __init__(self, path: str | Path, *, kind: str, force: bool = False,
                 protect: Iterable[str | Path | None] = (), owned: Iterable[str] = OWNED) -> None:
        self.path, self.kind, self.force = Path(path), kind, force
        self.protect = [p for p in protect if p is not None]
        self.owned = tuple(owned)
        self.staging: Path | None = None
        self._stack: contextlib.ExitStack | None = None
        self.check()

    def check(self) -> Path:
        """Refuse (one line) a target this job may not write; nothing is created."""
        return check_output_dir(self.path, kind=self.kind, force=self.force, protect=self.protect)

    def __enter__(self) -> OutputFolder:
        self._stack = contextlib.ExitStack()
        self.staging = self._stack.enter_context(
            atomic_dir(self.path, kind=self.kind, force=self.force, protect=self.protect, owned=self.owned))
        return self

    def __exit__(self, *exc: Any) -> bool:
        assert self._stack is not None
        return bool(self._stack.__exit__(*exc))

    # --- files ------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """The staging path of ``name`` (one of :attr:`owned`), for writers that take a path."""
        if self.staging is None:
            raise RuntimeError("OutputFolder.file() is used inside `with OutputFolder(...)`")
        if name not in self.owned:
            raise ValueError(f"{name!r} is not an output file of this folder (known: {', '.join(self.owned)})")
        return self.staging / name

    def write_audio(self, name: str, wav: np.ndarray, sample_rate: int) -> Path:
        from avflow_cli.audio.io import write_audio

        path = self.file(name)
        write_audio(path, wav, sample_rate)
        return path

    @contextlib.contextmanager
    def audio_stream(self, sample_rate: int, name: str = SPEECH_NAME, channels: int = 1) -> Iterator[AudioAppender]:
        """An :class:`AudioAppender` on ``name``: append chunks as they arrive; closed (finalised)
        when the block ends, committed with the folder."""
        appender = AudioAppender(self.file(name), sample_rate, channels)
        try:
            yield appender
        finally:
            appender.close()

    def write_npz(self, name: str, **arrays: np.ndarray) -> Path:
        path = self.file(name)
        np.savez_compressed(path, **arrays)
        return path

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        path = self.file(name)
        path.write_text(json.dumps(data, indent=2))
        return path
