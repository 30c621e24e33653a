"""Choosing AV-Flow's token gain (``model.token_gain``) by what recognisers hear.

A model trained on minutes of one real voice follows its tokens weakly: given a real recording's
own alignment tokens it mumbles the first words, and it is heard better from text-to-tokens'
(larger) tokens than from the true ones. Reading the normalised tokens more strongly at sampling
makes it articulate (docs/quality.md "Token gain"); the demo model, trained on 30 minutes of one
synthetic voice, gains nothing. So the gain is a property of each trained model and is measured per
model: the text path speaks the development probe sentences (never the frozen test set) several
times at each candidate gain, every waveform is transcribed by each recogniser, and the gain with
the lowest WER averaged over the recognisers is stored. Ties go to the gain nearest 1 (as trained).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from avflow_cli import constants as K
from avflow_cli.checks import check_token_gain
from avflow_cli.errors import AvflowError
from avflow_cli.metrics.probe import SAMPLE_SEED_STRIDE

DEFAULT_GAINS = (1.0, 1.5, 2.0, 2.5)
DEFAULT_SAMPLES = 3  # one sample's WER moves by ±0.05 with the seed on ten sentences (docs/quality.md)
RECORD = "token_gain.json"  # in the model directory: what the stored gain was chosen from
TIE = 1e-9

GainProgress = Callable[[int, int], None]  # (waveforms done, total)


@dataclass
class GainScore:
    """WER of the text path at one gain, by each recogniser (pooled over sentences and samples)."""

    gain: float
    wer_by_asr: dict[str, float]

    @property
    def mean_wer(self) -> float:
        return sum(self.wer_by_asr.values()) / len(self.wer_by_asr)


@dataclass
class TokenGainChoice:
    """The chosen gain, every candidate's score, and what they were measured on."""

    gain: float
    scores: list[GainScore]
    sentences: str
    samples: int
    stored: bool


def choose_gain(scores: Sequence[GainScore]) -> float:
    """The gain with the lowest mean WER; among equals, the one nearest 1 (the model as trained)."""
    if not scores:
        raise AvflowError("no token gains were measured")
    best = min(s.mean_wer for s in scores)
    return min((s.gain for s in scores if s.mean_wer <= best + TIE), key=lambda g: (abs(g - 1.0), g))


def check_gains(gains: Sequence[float]) -> list[float]:
    """Candidate gains, each in (0, TOKEN_GAIN_MAX], without repeats; a one-line error otherwise."""
    out = sorted({check_token_gain(g, "--gains") for g in gains})
    if not out:
        raise AvflowError("--gains needs at least one value")
    return out


def measure_token_gains(synth, sentences: Sequence[str], gains: Sequence[float], asr: Sequence[str],  # noqa: ANN001
                        samples: int = DEFAULT_SAMPLES, progress: GainProgress | None = None) -> list[GainScore]:
    """Speak every sentence ``samples`` times (seeds i + k · SAMPLE_SEED_STRIDE) at every gain with
    ``synth`` (a :class:`~avflow_cli.synth.Synthesizer`) and score each waveform with each recogniser.
    The synthesizer's own gain is restored afterwards."""
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    own = synth.model.config
    total, done = len(gains) * samples * len(sentences), 0
    scores = []
    try:
        for gain in gains:
            synth.model.config = dataclasses.replace(own, token_gain=float(gain))
            totals = {spec: WordErrors() for spec in asr}
            for k in range(samples):
                for i, text in enumerate(sentences):
                    wav = synth.synthesize(text, seed=i + k * SAMPLE_SEED_STRIDE).wav  # runs without autograd
                    for spec in asr:
                        totals[spec] = totals[spec] + word_errors(text, transcribe_segments(wav, K.SAMPLE_RATE, spec)[0])
                    done += 1
                    if progress is not None:
                        progress(done, total)
            scores.append(GainScore(float(gain), {spec: round(v.wer, 4) for spec, v in totals.items()}))
    finally:
        synth.model.config = own
    return scores


def tune_token_gain(model_dir: str | Path, *, gains: Sequence[float] = DEFAULT_GAINS, sentences: str = "dev",
                    samples: int = DEFAULT_SAMPLES, asr: Sequence[str] = ("pocketsphinx",), store: bool = True,
                    device: str = "cpu", vocoder: str = "auto", vocoder_checkpoint: str | Path | None = None,
                    progress: GainProgress | None = None) -> TokenGainChoice:
    """Measure the candidate gains on the probe sentences of set ``sentences`` and (with ``store``)
    write the best into ``model_dir``'s config.json; the model's weights are not touched.
    ``vocoder``/``vocoder_checkpoint``: as ``avflow synth`` (the vocoder the model will speak with,
    e.g. a training run's fine-tuned one before it is packaged)."""
    from avflow_cli.audio.asr import parse_backend
    from avflow_cli.metrics.probe import probe_sentences
    from avflow_cli.metrics.sentence_sets import SETS
    from avflow_cli.models.registry import CONFIG_NAME, set_model_field
    from avflow_cli.synth import Synthesizer

    gains = check_gains(gains)
    if sentences not in SETS:
        raise AvflowError(f"--sentences must be {' or '.join(SETS)}, got {sentences!r}")
    texts = probe_sentences(sentences)
    if samples < 1:
        raise AvflowError(f"--samples must be at least 1, got {samples}")
    if not asr:
        raise AvflowError("give at least one recogniser (--asr)")
    for spec in asr:
        parse_backend(spec)  # a typo stops before minutes of synthesis
    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_NAME).is_file():
        raise AvflowError(f"{model_dir}: not a model directory (no {CONFIG_NAME}); give an AV-Flow run's folder")
    synth = Synthesizer(model_dir, device=device, vocoder=vocoder, vocoder_checkpoint=vocoder_checkpoint)
    synth.load_t2t()  # the text path needs text-to-tokens: a missing one fails before any synthesis
    scores = measure_token_gains(synth, texts, gains, asr, samples, progress)
    gain = choose_gain(scores)
    choice = TokenGainChoice(gain, scores, sentences, samples, store)
    if store:
        write_record(model_dir / RECORD, choice, synth.components["vocoder"])
        set_model_field(model_dir, "token_gain", gain)
    return choice


def write_record(path: Path, choice: TokenGainChoice, vocoder: str) -> None:
    """Every candidate's WER beside the model (a package's README quotes it)."""
    import json

    from avflow_cli.fsutil import atomic_path

    scores = [{"gain": s.gain, "wer_by_asr": s.wer_by_asr, "mean_wer": round(s.mean_wer, 4)} for s in choice.scores]
    record = {"token_gain": choice.gain, "sentences": choice.sentences, "samples": choice.samples,
              "vocoder": vocoder, "scores": scores}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
