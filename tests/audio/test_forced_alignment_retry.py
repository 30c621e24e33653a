"""The forced aligner's retry for tightly cut audio (docs in avflow_cli/audio/forced_alignment.py):
pocketsphinx's phone pass fails, the audio is aligned again with edge silence, and the times come
back on the recording's own clock. pocketsphinx itself is replaced here by a recorder; the real
prompts that needed this are tested in tests/real/test_real_voice_asterisk.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from avflow_cli.audio import forced_alignment as fa
from avflow_cli.constants import TOKEN_SAMPLE_RATE


@dataclass
class Seg:
    name: str
    start: int  # frames at 100 per second
    duration: int


class FakeAlignment(list):
    def __init__(self, words: list[Seg], phones: list[Seg]) -> None:
        super().__init__(words)
        self._phones = phones

    def phones(self) -> list[Seg]:
        return self._phones


def test_failed_phone_pass_is_retried_with_edge_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = 0.5
    wav = np.zeros(int(seconds * TOKEN_SAMPLE_RATE), np.float32)
    seen: list[int] = []
    pad_frames = round(fa.EDGE_PAD_S * fa.ALIGN_FRAME_RATE)

    def two_passes(dec: object, pcm: bytes, words: list[str]) -> tuple[float, object]:
        seen.append(len(pcm) // 2)  # samples
        if len(seen) == 1:
            raise RuntimeError("Failed to stop utterance processing")
        # padded clock: silence over the padding, the word right after it, silence to the end
        word = Seg("april", pad_frames, 50)
        phones = [Seg("SIL", 0, pad_frames + 2), Seg("EY", pad_frames + 2, 20), Seg("L", pad_frames + 22, 28),
                  Seg("SIL", pad_frames + 50, 50 + pad_frames)]
        return 0.9, FakeAlignment([Seg("<s>", 0, pad_frames), word], phones)

    monkeypatch.setattr(fa, "_two_passes", two_passes)
    monkeypatch.setattr(fa, "_decoder", lambda kind: type("D", (), {"lookup_word": lambda self, w: "EY P R AH L"})())
    words, phones, score = fa.align(wav, ["april"])
    assert seen[1] == len(wav) + 2 * round(fa.EDGE_PAD_S * TOKEN_SAMPLE_RATE)  # retried on the padded audio
    assert words == [("APRIL", 0.0, 0.5)]  # shifted back by the padding
    assert phones == [("pau", 0.0, 0.02), ("ey", 0.02, 0.22), ("l", 0.22, 0.5)]  # the trailing silence was all padding
    assert score == 0.9


def test_an_aligner_failure_after_the_retry_is_an_alignment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(dec: object, pcm: bytes, words: list[str]) -> tuple[float, object]:
        raise RuntimeError("Failed to stop utterance processing")

    monkeypatch.setattr(fa, "_two_passes", fail)
    monkeypatch.setattr(fa, "_decoder", lambda kind: type("D", (), {"lookup_word": lambda self, w: "X"})())
    with pytest.raises(fa.AlignmentError, match=r"the aligner failed \(Failed to stop utterance processing\)"):
        fa.align(np.zeros(8000, np.float32), ["april"])
