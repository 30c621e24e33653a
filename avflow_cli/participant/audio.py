"""Participant audio: read a user's recording and refuse what would make guidance meaningless.

Decisions (said in ``avflow synth --help`` and the README):
- **stereo / multi-channel**: refused unless a channel is chosen (``channel=0|1|…`` or ``"mix"``).
  A two-channel file is often a dyadic capture (actor | participant), where mixing would feed the
  avatar its own voice as the user's; the user must say which channel is the user.
- **below 16 kHz** (e.g. 8 kHz telephone audio): refused. Both token extractors (Wav2Vec2 and
  pocketsphinx's acoustic model) are trained on 16 kHz speech; up-sampling leaves 4–8 kHz
  empty and recognition collapses, so the guidance would be garbage rather than a clear error.
- **silent** (no 30 ms frame above ``SILENCE_DBFS``): refused; there is nothing to listen to.
- **shorter than the avatar's speech**: accepted; the caller pads it with silence (a silent listener).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avflow_cli.constants import TOKEN_SAMPLE_RATE
from avflow_cli.errors import AvflowError, InputFileError

MIN_SAMPLE_RATE = TOKEN_SAMPLE_RATE  # 16 kHz: what both token extractors were trained on
SILENCE_DBFS = -50.0  # loudest 30 ms frame below this: a silent recording
FRAME_SECONDS = 0.03


@dataclass
class ParticipantAudio:
    """Mono participant speech and how it was obtained."""

    wav: np.ndarray  # (N,) float32
    sample_rate: int
    source: str  # file path or "stream"
    channel_note: str  # "mono", "channel 1 of 2", "2 channels mixed"

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate


def loudest_frame_dbfs(wav: np.ndarray, sample_rate: int) -> float:
    """dBFS of the loudest 30 ms frame (RMS), −inf for digital silence."""
    n = max(1, int(FRAME_SECONDS * sample_rate))
    frames = wav[: len(wav) // n * n].reshape(-1, n) if len(wav) >= n else wav[None]
    rms = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max()) if frames.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def check_participant_wav(wav: np.ndarray, sample_rate: int, what: str) -> None:
    """Raise a one-line AvflowError for audio that cannot guide the avatar (rate, silence)."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise AvflowError(
            f"{what}: {sample_rate} Hz audio; participant audio needs at least {MIN_SAMPLE_RATE} Hz "
            "(the token extractors hear 0-8 kHz; telephone-band audio is refused, not up-sampled)"
        )
    level = loudest_frame_dbfs(wav, sample_rate)
    if level < SILENCE_DBFS:
        raise AvflowError(f"{what}: silent (loudest 30 ms frame {level:.0f} dBFS < {SILENCE_DBFS:.0f}); "
                          "nothing for the avatar to listen to")


def read_participant_audio(path: str | Path, channel: str | int | None = None) -> ParticipantAudio:
    """Read a participant recording as mono speech; see the module docstring for what is refused."""
    from avflow_cli.audio.io import read_audio

    audio, sr = read_audio(path)  # (C, N); missing/corrupt/empty files raise InputFileError
    n_ch = audio.shape[0]
    if n_ch == 1:
        if channel not in (None, 0, "0", "mix"):
            raise InputFileError(path, f"mono audio has no channel {channel}")
        wav, note = audio[0], "mono"
    elif channel is None:
        raise InputFileError(
            path, f"{n_ch} channels: say which one is the user with --participant-channel 0..{n_ch - 1} "
                  "(or 'mix' to average them)"
        )
    elif str(channel) == "mix":
        wav, note = audio.mean(axis=0), f"{n_ch} channels mixed"
    else:
        try:
            k = int(channel)
        except ValueError:
            raise AvflowError(f"--participant-channel must be a channel number or 'mix', got {channel!r}") from None
        if not 0 <= k < n_ch:
            raise InputFileError(path, f"has {n_ch} channels; channel {k} does not exist")
        wav, note = audio[k], f"channel {k} of {n_ch}"
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    check_participant_wav(wav, sr, str(path) if note == "mono" else f"{path} ({note})")
    return ParticipantAudio(wav, int(sr), str(path), note)
