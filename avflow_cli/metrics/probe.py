"""Intelligibility probe: does a demo-trained model speak sentences it has never heard?

Everyday sentences outside the demo corpus (``--sentences dev``: the ten of
``resources/probe_sentences.txt``, a development set now; ``test``: the frozen final set) are spoken
by the demo actor's voice (flite ``slt``), so their exact truth is known: phone timing gives the
input tokens the way ``prep`` makes them (alignment tokens at 50 Hz, resampled to FPS) and the
demo avatar's lip opening. Two paths are scored (issue "the avatar must be understood"):

- **tokens → AV-Flow** (``score_tokens_path``): the Synthesizer generates from the true tokens; WER of
  its vocoded speech, and lip-closure F1 *within speech frames* against the true lips (the
  frames where a sentence's phones are spoken — listening frames would flatter F1).
- **text → tokens → AV-Flow** (``score_text_path``): what ``avflow synth`` does; WER only, since
  the generated timing differs from flite's and lips cannot be compared frame by frame.

WER uses the same pause-segmented pocketsphinx transcription as ``avflow eval``; the flite audio
and its resynthesis through the same vocoder set the ceiling (``reference_scores``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avflow_cli import constants as K

# several samples of one text: sample k of text i uses seed i + k · stride (real_voice evaluate,
# `avflow train token-gain`), so sample 0 is the single-sample seed and no two texts share one
SAMPLE_SEED_STRIDE = 1000


def probe_sentences(name: str = "dev") -> list[str]:
    """The held-out everyday sentences of set ``name`` (none is in the demo corpus's Harvard list):
    ``dev`` the ten that chose the designs, ``test`` the frozen final set (metrics/sentence_sets.py)."""
    from avflow_cli.metrics.sentence_sets import sentence_set

    return sentence_set(name)


@dataclass
class ProbeItem:
    """One probe sentence with its truth at FPS."""

    text: str
    tokens: np.ndarray  # (T, 29) alignment-token logits at FPS, as prep writes them
    lip_distance: np.ndarray  # (T,) the demo avatar's true inner-lip opening in mm
    speech: np.ndarray  # (T,) bool: frames inside a spoken phone
    audio: np.ndarray  # (S,) flite's own speech at K.SAMPLE_RATE


def make_probe_items(sentences: Sequence[str] | None = None) -> list[ProbeItem]:
    """Speak each sentence with the actor's voice and derive its tokens and lips (needs flite)."""
    from avflow_cli.audio.alignment_tokens import tokens_from_transcript
    from avflow_cli.audio.io import resample
    from avflow_cli.data.demo_corpus import ACTOR_VOICE, TRACK_RATE, Flite, articulation
    from avflow_cli.data.resample import resample_to_fps
    from avflow_cli.render.demo_avatar import NUM_PARAMS, PARAM_INDEX, lip_distance

    flite = Flite()
    items = []
    try:
        for text in sentences or probe_sentences():
            utt = flite.synth(text, ACTOR_VOICE)
            duration = utt.duration
            n = int(np.floor(duration * K.FPS))
            turn = {"text": text, "phones": [list(p) for p in utt.phones], "start": 0.0, "end": duration}
            tokens50 = tokens_from_transcript([turn], duration, None)  # (N_tok, 29), exactly as prep makes them
            tokens = resample_to_fps(tokens50, K.TOKEN_RATE, n)  # (T, 29)
            n_face = int(np.ceil(duration * K.FACE_RATE))
            params = np.zeros((n_face, NUM_PARAMS), dtype=np.float32)
            params[:, [PARAM_INDEX["jaw_open"], PARAM_INDEX["lip_closure"], PARAM_INDEX["lip_round"]]] = articulation(
                utt.phones, n_face, K.FACE_RATE)
            lips = resample_to_fps(lip_distance(params)[:, None], K.FACE_RATE, n)[:, 0]  # (T,)
            t = np.arange(n) / K.FPS
            speech = np.zeros(n, dtype=bool)
            for _, start, end in utt.phones:
                speech |= (t >= start) & (t < end)
            audio = resample(utt.audio, TRACK_RATE, K.SAMPLE_RATE).numpy()
            items.append(ProbeItem(text, tokens.astype(np.float32), lips.astype(np.float32), speech, audio))
    finally:
        flite.close()
    return items


def corpus_wer(references: Sequence[str], wavs: Sequence[np.ndarray], sample_rate: int, asr: str = "auto") -> float:
    """Word error rate pooled over sentences (errors / reference words), the ASR ``asr`` as in eval."""
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    total = WordErrors()
    for ref, wav in zip(references, wavs):
        total = total + word_errors(ref, transcribe_segments(wav, sample_rate, backend=asr)[0])
    return total.wer


def speech_lip_f1(items: Sequence[ProbeItem], generated_lips: Sequence[np.ndarray], threshold: float) -> float:
    """Lip-closure F1 pooled over the speech frames of every item (AV-Flow's F1 lips, speech only)."""
    from avflow_cli.metrics.lipsync import F1Counts, event_counts, lip_closures

    total = F1Counts()
    for item, gen in zip(items, generated_lips):
        n = min(len(gen), len(item.lip_distance))
        keep = item.speech[:n]
        total = total + event_counts(lip_closures(gen[:n][keep], threshold),
                                     lip_closures(item.lip_distance[:n][keep], threshold))
    return total.f1


@dataclass
class ProbeScores:
    wer: float
    lip_f1_speech: float | None = None


Vocode = Callable[[np.ndarray], np.ndarray]  # mel (T, 80) → wav (S,) at K.SAMPLE_RATE


def score_tokens_path(synth, items: Sequence[ProbeItem], mouth, *, steps: int | None = None,
                      seed: int = 0, asr: str = "auto") -> ProbeScores:
    """AV-Flow generating from the items' true tokens (``synth.synthesize_tokens``, a
    :class:`~avflow_cli.synth.Synthesizer`): WER of its speech, lip F1 within speech frames."""
    wavs, lips = [], []
    sample_rate = K.SAMPLE_RATE
    for i, item in enumerate(items):
        result = synth.synthesize_tokens(item.tokens, steps=steps, seed=seed + i)
        wavs.append(result.wav)
        sample_rate = result.sample_rate
        if mouth is not None:
            lips.append(mouth.lip_distance(result.face))
    wer = corpus_wer([it.text for it in items], wavs, sample_rate, asr)
    f1 = speech_lip_f1(items, lips, mouth.lip_closed_threshold) if mouth is not None else None
    return ProbeScores(wer, f1)


def score_text_path(synthesize: Callable[[str, int], np.ndarray], items: Sequence[ProbeItem], seed: int = 0,
                    asr: str = "auto") -> ProbeScores:
    """Text → tokens → AV-Flow → vocoder, as ``avflow synth`` runs it: WER only."""
    wavs = [synthesize(item.text, seed + i) for i, item in enumerate(items)]
    return ProbeScores(corpus_wer([it.text for it in items], wavs, K.SAMPLE_RATE, asr))


def reference_scores(items: Sequence[ProbeItem], vocode: Vocode, asr: str = "auto") -> dict[str, float]:
    """The ceiling: WER of flite's own audio, and of its mel resynthesised by the same vocoder."""
    from avflow_cli.audio.mel import log_mel

    resynth = [vocode(np.asarray(log_mel(item.audio))) for item in items]
    texts = [it.text for it in items]
    return {"flite": corpus_wer(texts, [it.audio for it in items], K.SAMPLE_RATE, asr),
            "flite_vocoded": corpus_wer(texts, resynth, K.SAMPLE_RATE, asr)}


def token_cer(text_to_tokens: Callable[[str, int], np.ndarray], items: Sequence[ProbeItem], seed: int = 0) -> float:
    """Character error rate of text-to-tokens alone: its tokens greedily CTC-decoded vs the text.

    Isolates the text-to-tokens model from AV-Flow and the vocoder; the items' own tokens decode
    to their text exactly (CER 0), so this is the tokens' spelling and word-boundary error.
    """
    import jiwer

    from avflow_cli.audio.alignment_tokens import greedy_decode, normalize_word

    refs = [" ".join(w for w in (normalize_word(x) for x in item.text.split()) if w) for item in items]
    hyps = [greedy_decode(text_to_tokens(item.text, seed + i)) for i, item in enumerate(items)]
    return float(jiwer.cer(refs, hyps))


def probe_model(model_dir: str | Path, *, t2t: str | Path | None = None, head_vae: str | Path | None = None,
                vocoder: str = "auto", vocoder_checkpoint: str | Path | None = None, temperature: float | None = None,
                device: str = "cpu", sentences: str = "dev", asr: str = "auto",
                token_gain: float | None = None) -> dict[str, float | None]:
    """Both paths of one model family on the held-out sentences of set ``sentences`` (``dev`` or
    ``test``): the numbers docs/quality.md reports (tokens-path WER and lip F1 in speech, text-path
    WER, token CER, the ceiling), every WER by the recogniser ``asr``
    (:func:`avflow_cli.audio.asr.transcribe`)."""
    from avflow_cli.audio.asr import parse_backend

    parse_backend(asr)  # a typo stops before minutes of synthesis
    from avflow_cli.metrics.face_decoder import load_mouth_decoder
    from avflow_cli.synth import Synthesizer, find_face_decoder

    synth = Synthesizer(model_dir, t2t=t2t, head_vae=head_vae, vocoder=vocoder, vocoder_checkpoint=vocoder_checkpoint,
                        temperature=temperature, token_gain=token_gain, device=device)
    items = make_probe_items(probe_sentences(sentences))
    face_decoder = find_face_decoder(synth.model_dir)
    mouth = load_mouth_decoder(face_decoder) if face_decoder is not None else None
    tokens_path = score_tokens_path(synth, items, mouth, asr=asr)
    text_path = score_text_path(lambda text, seed: synth.synthesize(text, seed=seed).wav, items, asr=asr)
    cer = token_cer(lambda text, seed: synth.text_to_tokens(text, seed=seed), items)
    ceiling = reference_scores(items, lambda mel: synth.vocoder(torch.as_tensor(mel, dtype=torch.float32)[None])[0].float().numpy(),
                               asr=asr)
    return {"temperature": synth.temperature, "token_gain": synth.token_gain, "tokens_wer": tokens_path.wer, "lip_f1_speech": tokens_path.lip_f1_speech,
            "text_wer": text_path.wer,
            "token_cer": cer, "flite_wer": ceiling["flite"], "flite_vocoded_wer": ceiling["flite_vocoded"]}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m avflow_cli.metrics.probe MODEL [--sentences dev|test] [--t2t DIR] [--head-vae DIR]``: print the probe."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Probe a model family on held-out sentences (docs/quality.md).")
    parser.add_argument("model", help="AV-Flow model directory, or `pretrained`")
    parser.add_argument("--t2t", default=None)
    parser.add_argument("--head-vae", default=None)
    parser.add_argument("--vocoder", default="auto", help="auto, student, hifigan, bigvgan, griffinlim (as avflow synth)")
    parser.add_argument("--vocoder-checkpoint", default=None, help="a student or BigVGAN folder")
    parser.add_argument("--temperature", type=float, default=None, help="AV-Flow sampling temperature (default: the model's)")
    parser.add_argument("--token-gain", type=float, default=None, help="AV-Flow's token gain (default: the model's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sentences", choices=("dev", "test"), default="dev",
                        help="dev: the ten probe sentences that chose the designs; test: the frozen final set "
                             "(resources/test_sentences.txt, never tuned on)")
    parser.add_argument("--asr", default="auto", help="recogniser of every WER: auto, pocketsphinx, wav2vec2, whisper, whisper:DIR")
    args = parser.parse_args(argv)
    from avflow_cli.errors import AvflowError

    try:
        with torch.inference_mode():
            scores = probe_model(args.model, t2t=args.t2t, head_vae=args.head_vae, vocoder=args.vocoder,
                                 vocoder_checkpoint=args.vocoder_checkpoint, temperature=args.temperature,
                                 token_gain=args.token_gain, device=args.device, sentences=args.sentences, asr=args.asr)
    except AvflowError as err:  # a user mistake (no model there, …): one line, exit 2
        import sys

        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: None if v is None else round(float(v), 3) for k, v in scores.items()}, indent=1))


if __name__ == "__main__":
    main()
