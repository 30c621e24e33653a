"""Measuring the listening avatar and the streaming schedules on shards whose truth is known.

:func:`guidance_table` — the paper's Fig. 7 analysis as a table: for every test clip the model
generates from the clip's own tokens with the participant's guidance streams (both, audio only,
visual only, none) and is scored **while listening** (frames where the actor's own tokens say it
is silent, smoothed over ``LISTEN_SMOOTH_S``):

- *smile-return F1*: per-frame smiles of the generated avatar vs the ground-truth avatar (which on
  the demo corpus smiles back 0.5–1 s after the participant), counts pooled over clips;
- *BC_h (listening)*: Beat Align Score of the avatar's head-motion beats against the
  participant's speech beats, on listening frames. The shards hold the participant's tokens but
  not their audio, so the participant's beats are the onsets of their character posteriors
  (softmax of the tokens; ``metrics.beat.onset_strength`` on them = where new characters start).

:func:`stream_quality` — the low-latency schedule (one row per look-ahead) against offline on the
same clips: MCD, lip F1 and WER of each against the ground truth and their deltas, the MCD
between each output and offline, an offline run with another seed as the noise floor a delta
must beat, and the exact schedule's maximum deviation (which should be ~1e-6).

Both run on any model directory + shard directory (``benchmarks/guidance_eval.py``,
``benchmarks/stream_quality.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from avflow_cli import constants as K

VARIANTS = ("audio+visual", "audio only", "visual only", "none")
LISTEN_SMOOTH_S = 0.5  # a frame is "listening" when the actor is silent over this window
SPEECH_POSTERIOR = 0.5  # actor speaks where its non-blank posterior exceeds this


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def speaking_mask(tokens: np.ndarray) -> np.ndarray:
    """Frames (T,) where the actor speaks: its non-blank posterior exceeds ``SPEECH_POSTERIOR``."""
    return 1.0 - _softmax(np.asarray(tokens, np.float64))[:, K.TOKEN_BLANK] > SPEECH_POSTERIOR


def listening_mask(tokens: np.ndarray) -> np.ndarray:
    """Frames (T,) where the actor is silent for the whole ``LISTEN_SMOOTH_S`` window around them."""
    from scipy.ndimage import maximum_filter1d

    speaking = speaking_mask(tokens)  # (T,)
    near_speech = maximum_filter1d(speaking.astype(np.uint8), size=max(1, int(LISTEN_SMOOTH_S * K.FPS)), mode="nearest")
    return near_speech == 0


def participant_beats(p_tokens: np.ndarray) -> np.ndarray:
    """Beat frames of the participant's speech from their character posteriors (see module docstring)."""
    from avflow_cli.metrics.beat import onset_strength, peak_pick

    post = _softmax(np.asarray(p_tokens, np.float64))
    return peak_pick(onset_strength(np.log(np.maximum(post, 1e-5))))


def bc_h_listening(head_pose: np.ndarray, p_tokens: np.ndarray, listening: np.ndarray) -> float:
    """BC_h of head motion against the participant's beats, only on listening frames."""
    from avflow_cli.metrics.beat import beat_align_score, head_velocity, motion_beats

    head = motion_beats(head_velocity(head_pose))
    head = head[listening[head]] if len(head) else head
    beats = participant_beats(p_tokens)
    return beat_align_score(beats, head)


@dataclass
class Clip:
    id: str
    tokens: np.ndarray
    p_tokens: np.ndarray | None
    p_smirk: np.ndarray | None
    face: np.ndarray
    head_pose: np.ndarray
    mel: np.ndarray
    text: str | None


def clip_text(shards: Path, record: Any, truth_text: str | None, frames: int) -> str | None:
    """The actor's words in the first ``frames`` frames of a clip: the clip's own text when it is
    kept whole, else its session transcript's turns inside that window (session found with
    :func:`avflow_cli.evaluate.session_dir`); None when unknown (a cut clip's whole-clip text
    would count words it no longer has)."""
    from dataclasses import replace

    from avflow_cli.evaluate import transcript_text

    if truth_text is not None and frames >= record.frames:
        return truth_text
    return transcript_text(replace(record, frames=frames), shards=shards)


def load_clips(shards: str | Path, split: str = "test", max_clips: int | None = None, max_frames: int | None = None) -> list[Clip]:
    """Test clips with their ground truth (optionally the first ``max_frames`` frames of each, the
    text cut to the turns inside them)."""
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.evaluate import load_truth

    shards = Path(shards)
    records = ShardIndex.load(shards).split(split)[: max_clips or None]
    out = []
    for rec in records:
        t = load_truth(shards, rec)
        cut = slice(0, max_frames)
        frames = min(rec.frames, max_frames) if max_frames else rec.frames
        out.append(Clip(rec.id, t["tokens"][cut], t["p_tokens"][cut] if "p_tokens" in t else None,
                        t["p_smirk"][cut] if "p_smirk" in t else None, t["face"][cut], t["head_pose"][cut],
                        t["mel"][cut], clip_text(shards, rec, t.get("text"), frames)))
    return out


def _variant_inputs(clip: Clip, variant: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    audio = variant in ("audio+visual", "audio only")
    visual = variant in ("audio+visual", "visual only")
    return (clip.p_tokens if audio else None), (clip.p_smirk if visual else None)


def guidance_table(synth: Any, shards: str | Path, *, split: str = "test", max_clips: int | None = None,
                   max_frames: int | None = None, seed: int = 0, steps: int | None = None,
                   decoder_path: str | Path | None = None) -> dict[str, Any]:
    """Smile-return F1 and BC_h while listening, per guidance variant (module docstring)."""
    from avflow_cli.errors import AvflowError
    from avflow_cli.metrics.face_decoder import find_mouth_decoder, load_mouth_decoder
    from avflow_cli.metrics.lipsync import F1Counts, event_counts, smiles
    from avflow_cli.participant import Participant

    cfg = synth.model.config
    if not (cfg.participant_tokens or cfg.participant_visual_dim):
        raise AvflowError(f"{synth.model_dir}: trained without participant guidance; nothing to compare "
                          "(train with configs/dyadic.toml)")
    path = Path(decoder_path) if decoder_path else find_mouth_decoder(Path(shards), synth.model_dir)
    if path is None:
        raise AvflowError("smile-return F1 needs a face decoder (face_decoder.npz beside the shards or the model)")
    decoder = load_mouth_decoder(path)
    clips = load_clips(shards, split, max_clips, max_frames)
    if not clips or clips[0].p_tokens is None and clips[0].p_smirk is None:
        raise AvflowError(f"{shards}: the {split} clips carry no participant streams (p_tokens / p_smirk)")
    both = bool(cfg.participant_tokens and cfg.participant_visual_dim)
    variants = (list(VARIANTS) if both else
                ["audio only", "none"] if cfg.participant_tokens else ["visual only", "none"])
    rows: dict[str, dict[str, Any]] = {}
    for variant in variants:
        counts, bcs, frames = F1Counts(), [], 0
        for clip in clips:
            p_tok, p_vis = _variant_inputs(clip, variant)
            p_tok = p_tok if cfg.participant_tokens else None
            p_vis = p_vis if cfg.participant_visual_dim else None
            motion = synth.generate_motion(clip.tokens, participant=Participant(p_tok, p_vis, None), seed=seed,
                                           steps=steps)  # no vocoder: only motion is scored
            face, pose = motion.face, motion.head_pose
            listen = listening_mask(clip.tokens)
            frames += int(listen.sum())
            thr = decoder.smile_threshold
            gen_s = smiles(decoder.mouth_corner_distance(face), thr)
            true_s = smiles(decoder.mouth_corner_distance(clip.face), thr)
            counts = counts + event_counts(gen_s[listen], true_s[listen])
            if pose is not None and clip.p_tokens is not None:
                bcs.append(bc_h_listening(pose, clip.p_tokens, listen))
        rows[variant] = {"smile_return_f1": counts.f1, "bc_h_listening": float(np.mean(bcs)) if bcs else None,
                         "listening_frames": frames, "counts": counts.to_dict()}
    truth_bc = [bc_h_listening(c.head_pose, c.p_tokens, listening_mask(c.tokens)) for c in clips if c.p_tokens is not None]
    return {"model": str(synth.model_dir), "shards": str(shards), "split": split, "clips": len(clips),
            "steps": steps or cfg.steps, "seed": seed, "temperature": float(synth.temperature), "variants": rows,
            "ground_truth_bc_h_listening": float(np.mean(truth_bc)) if truth_bc else None,
            "definitions": {"listening": f"actor non-blank posterior ≤ {SPEECH_POSTERIOR} over ±{LISTEN_SMOOTH_S / 2} s",
                            "bc_h_listening": "Beat Align Score, head-motion beats vs participant character-onset beats"}}


def guidance_markdown(res: dict[str, Any]) -> str:
    """The table for docs/."""
    lines = [f"| guidance | smile-return F1 (listening) | BC_h (listening) | listening frames |", "|---|---|---|---|"]
    for name, row in res["variants"].items():
        bc = "—" if row["bc_h_listening"] is None else f"{row['bc_h_listening']:.3f}"
        lines.append(f"| {name} | {row['smile_return_f1']:.3f} | {bc} | {row['listening_frames']} |")
    if res.get("ground_truth_bc_h_listening") is not None:
        lines.append(f"| ground truth | 1.000 | {res['ground_truth_bc_h_listening']:.3f} | |")
    return "\n".join(lines)


METRICS = ("MCD", "lip_F1", "WER")


@dataclass
class _Scores:
    """One output's scores pooled over clips: MCD and WER per clip (mean), lip counts pooled."""

    mcd: list[float]
    wer: list[float]
    lips: Any  # F1Counts on the actor's speech frames
    lips_all: Any  # F1Counts on every frame (listening frames are mostly closed mouths on both sides)
    vs_offline: list[float]

    def row(self, decoder: bool) -> dict[str, Any]:
        return {"MCD": float(np.mean(self.mcd)), "lip_F1": self.lips.f1 if decoder else None,
                "lip_F1_all_frames": self.lips_all.f1 if decoder else None,
                "WER": float(np.mean(self.wer)) if self.wer else None,
                "per_clip": {"MCD": self.mcd, "WER": self.wer},
                "MCD_vs_offline": float(np.mean(self.vs_offline)) if self.vs_offline else None}


def stream_quality(synth: Any, shards: str | Path, *, split: str = "test", max_clips: int | None = None,
                   max_frames: int | None = None, chunk: int = 16,
                   lookaheads: Sequence[int | None] = (None,), seed: int = 0, steps: int | None = None,
                   wer: bool = True, exact: bool = True, reference_seed: int | None = None) -> dict[str, Any]:
    """Low-latency (one row per look-ahead; None = the default, one network's receptive field) vs
    offline on the clips' own tokens and participant streams, all scored against the truth: MCD
    (DTW) over the whole clip, lip-closure F1 on the actor's speech frames (:func:`speaking_mask`;
    the all-frames F1 is kept too), WER of the actor's words (none when the clips have no text).

    ``reference_seed``: also score offline with another seed, the noise floor a delta must beat
    (two offline draws differ by this much without any streaming). ``exact``: also check the exact
    schedule equals offline (its largest mel deviation, ~1e-6). Rows: ``offline``, then
    ``low-latency`` per look-ahead, then the reference; each but offline carries ``delta`` (row −
    offline) and ``MCD_vs_offline`` (its mel against the offline mel).
    """
    from avflow_cli.metrics.face_decoder import find_mouth_decoder, load_mouth_decoder
    from avflow_cli.metrics.lipsync import F1Counts, event_counts, lip_closures
    from avflow_cli.metrics.mcd import mcd_dtw
    from avflow_cli.models.streaming import receptive_field
    from avflow_cli.participant import Participant

    path = find_mouth_decoder(Path(shards), synth.model_dir)
    decoder = load_mouth_decoder(path) if path is not None else None
    clips = load_clips(shards, split, max_clips, max_frames)
    if not clips:
        from avflow_cli.errors import AvflowError

        raise AvflowError(f"{shards}: no {split} clips")
    cfg = synth.model.config
    default_la = receptive_field(cfg).right
    las = [default_la if la is None else int(la) for la in lookaheads]
    names = ["offline"] + [f"low-latency la {la}" for la in las] + ([f"offline seed {reference_seed}"]
                                                                    if reference_seed is not None else [])
    scores = {n: _Scores([], [], F1Counts(), F1Counts(), []) for n in names}
    exact_dev = 0.0
    for clip in clips:
        part = Participant(clip.p_tokens if cfg.participant_tokens else None,
                           clip.p_smirk if cfg.participant_visual_dim else None, None)
        offline = synth.synthesize_tokens(clip.tokens, participant=part, seed=seed, steps=steps)
        outs = {"offline": (offline.mel, offline.face, offline.wav)}
        for la, name in zip(las, names[1:]):
            chunks = list(synth.stream(tokens=clip.tokens, participant=part, seed=seed, steps=steps,
                                       schedule="low-latency", chunk_frames=chunk, lookahead=la))
            wav = np.concatenate([c.wav for c in chunks])
            peak = float(np.abs(wav).max()) if wav.size else 0.0
            outs[name] = (np.concatenate([c.mel for c in chunks]), np.concatenate([c.face for c in chunks]),
                          wav / peak * 0.99 if peak > 1.0 else wav)
        if reference_seed is not None:
            ref = synth.synthesize_tokens(clip.tokens, participant=part, seed=reference_seed, steps=steps)
            outs[names[-1]] = (ref.mel, ref.face, ref.wav)
        if exact:
            ex = list(synth.stream(tokens=clip.tokens, participant=part, seed=seed, steps=steps, schedule="exact",
                                   chunk_frames=chunk))
            exact_dev = max(exact_dev, float(np.abs(np.concatenate([c.mel for c in ex]) - offline.mel).max()))
        for name, (mel, face, w) in outs.items():
            sc = scores[name]
            sc.mcd.append(mcd_dtw(mel, clip.mel))
            if name != "offline":
                sc.vs_offline.append(mcd_dtw(mel, offline.mel))
            if decoder is not None:
                thr = decoder.lip_closed_threshold
                gen_l, true_l = lip_closures(decoder.lip_distance(face), thr), lip_closures(decoder.lip_distance(clip.face), thr)
                speech = speaking_mask(clip.tokens)[: min(len(gen_l), len(true_l))]  # (T,)
                sc.lips = sc.lips + event_counts(gen_l[: len(speech)][speech], true_l[: len(speech)][speech])
                sc.lips_all = sc.lips_all + event_counts(gen_l, true_l)
            if wer and clip.text:
                from avflow_cli.metrics.wer import transcribe_segments, wer as wer_fn

                hyp, _ = transcribe_segments(w, synth.vocoder.sample_rate)
                sc.wer.append(wer_fn(clip.text, hyp))
    rows = []
    for name in names:
        row = {"name": name, **scores[name].row(decoder is not None)}
        if name.startswith("low-latency"):
            row["lookahead"] = las[names.index(name) - 1]
            row["latency_frames"] = chunk + row["lookahead"]
        if name != "offline":
            row["delta"] = {k: (None if row[k] is None or rows[0][k] is None else row[k] - rows[0][k]) for k in METRICS}
        rows.append(row)
    return {"model": str(synth.model_dir), "shards": str(shards), "split": split, "clips": len(clips),
            "frames": int(sum(len(c.tokens) for c in clips)), "chunk": chunk, "default_lookahead": default_la,
            "steps": steps or cfg.steps, "seed": seed, "temperature": float(synth.temperature),
            "vocoder": getattr(synth.vocoder, "name", type(synth.vocoder).__name__), "rows": rows,
            "exact_max_abs_mel_deviation": exact_dev if exact else None}
