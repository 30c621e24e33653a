"""Text → speech + face motion + head motion: the ``Synthesizer`` API behind ``avflow synth``.

Pipeline (docs/ARCHITECTURE.md §2, §4): text → text-to-tokens (29-d logits at FPS, per sentence) →
AV-Flow Euler sampling → [face F | head latent 8 | mel 80] → head-VAE decoder → head pose,
mel → vocoder → 22 050 Hz speech. Every stage is timed; the output folder holds
``speech.wav``, ``motion.npz``, ``meta.json`` and (optionally) ``preview.mp4``.

AV-Flow's attention is windowed (linear in T) and the vocoder is convolutional, so one pass
over a long text costs time linear in its length; text-to-tokens runs sentence by sentence so
its quadratic text encoder never sees more than one sentence.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.checks import check_steps, check_temperature, check_text, check_token_gain
from avflow_cli.device import resolve_device
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import check_output_dir, output_kind
from avflow_cli.output import META_NAME, MOTION_NAME, PREVIEW_NAME, SPEECH_NAME, OutputFolder
from avflow_cli.shipped import choose_model
from avflow_cli.text.sentences import MAX_SENTENCE_CHARS, split_sentences, text_problems  # noqa: F401  (public here too)

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.participant import Participant
    from avflow_cli.live.listen import ListenSession
    from avflow_cli.stream import StreamChunk

OUTPUT_KIND = K.SYNTH_OUTPUT_KIND
@dataclass
class SynthesisResult:
    """Everything one synthesis produced, at FPS unless stated."""

    text: str
    seed: int
    steps: int
    tokens: np.ndarray  # (T, 29)
    mel: np.ndarray  # (T, 80)
    face: np.ndarray  # (T, F)
    head_latent: np.ndarray  # (T, 8)
    head_pose: np.ndarray | None  # (T, 7) quaternion wxyz + translation, None without a head VAE
    wav: np.ndarray  # (N,) at sample_rate
    sample_rate: int
    components: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    speed: float = 1.0
    participant: dict[str, Any] | None = None  # which participant path ran (meta.json), None without one

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    def motion_arrays(self, **extra: np.ndarray | None) -> dict[str, np.ndarray]:
        """The arrays of ``motion.npz`` (docs/ARCHITECTURE.md §4), plus ``extra`` ones that are not None."""
        arrays = {"face": self.face, "head_latent": self.head_latent, "mel": self.mel, "tokens": self.tokens,
                  "fps": np.float64(K.FPS), "head_pose": self.head_pose, **extra}
        return {k: v for k, v in arrays.items() if v is not None}

    @property
    def real_time_factor(self) -> float:
        """Compute seconds per second of speech (text → wav + motion, preview excluded)."""
        work = sum(v for k, v in self.timings.items() if k in ("t2t", "avflow", "head_vae", "vocoder"))
        return work / max(self.seconds, 1e-9)


@dataclass
class GeneratedMotion:
    """AV-Flow's output for one timeline before vocoding (:meth:`Synthesizer.generate_motion`), at FPS.

    Not :class:`avflow_cli.render.motion.Motion`, which is saved motion read back for rendering.
    """

    tokens: np.ndarray  # (T, 29) the timeline generated from (padded when a participant is longer)
    mel: np.ndarray  # (T, 80)
    face: np.ndarray  # (T, F)
    head_latent: np.ndarray  # (T, 8)
    head_pose: np.ndarray | None  # (T, 7), None without a head VAE
    steps: int
    timings: dict[str, float] = field(default_factory=dict)  # "avflow", "head_vae" seconds


# progress(stage, done, total): stage is "text-to-tokens" (sentences), "avflow" (Euler steps) or "vocoder"
Progress = Callable[[str, int, int], None]


def check_finite_speech(wav: np.ndarray, mel: np.ndarray, what: str = "synthesis") -> None:
    """One line instead of a crash when generation gave non-finite speech (an untrained or diverged model)."""
    if np.isfinite(wav).all():
        return
    finite = mel[np.isfinite(mel)]
    span = f"{finite.min():.3g} … {finite.max():.3g}" if finite.size else "no finite values"
    raise AvflowError(f"{what}: the vocoder gave non-finite audio; the model's log-mel spans {span} "
                      "(a trained model's stays within about -12 … 3): is the model trained, or did training diverge?")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise AvflowError(f"{path}: cannot read model config ({err})") from err


def recorded_components(model_dir: Path) -> dict[str, Path]:
    """``config.json["components"]`` of a model directory, resolved against it."""
    return {k: model_dir / v for k, v in _read_json(model_dir / "config.json").get("components", {}).items()}


def resolve_component(model_dir: Path, key: str, explicit: str | Path | None,
                      recorded: dict[str, Path] | None = None) -> Path | None:
    """Find a sibling component (``head_vae``, ``t2t``) of an AV-Flow model directory.

    Order: the explicit path, the path recorded in ``config.json["components"]`` (``recorded``:
    the loaded model's ``.components``, already resolved; else read from the file), then a
    sibling folder named like the component.
    """
    if explicit is not None:
        path = Path(explicit)
        if not (path / "config.json").is_file():
            raise AvflowError(f"{path}: not a model directory (no config.json)")
        return path
    if recorded is None:
        recorded = recorded_components(model_dir)
    candidates = [Path(recorded[key])] if recorded.get(key) else []
    candidates += [model_dir.parent / name for name in {"head_vae": ("headvae", "head_vae"), "t2t": ("t2t",)}[key]]
    for path in candidates:
        if (path / "config.json").is_file():
            return path.resolve()
    return None


def recorded_vocoder(model_dir: Path, recorded: dict[str, Path] | None = None) -> Path | None:
    """A vocoder folder recorded in ``config.json["components"]["vocoder"]`` (e.g. by ``import release``)."""
    if recorded is None:
        recorded = recorded_components(model_dir)
    if not recorded.get("vocoder"):
        return None
    path = Path(recorded["vocoder"]).resolve()
    if not path.exists():
        raise AvflowError(f"{model_dir}/config.json names vocoder {str(recorded['vocoder'])!r}, but {path} does not exist")
    return path


def find_face_decoder(model_dir: Path) -> Path | None:
    """What draws the model's faces in previews: its codec avatar (``avatar/``, from ``avflow import
    release`` or carried from an imported dataset), else the demo avatar's exact decoder (when the
    model was trained on demo-avatar face codes), else None.

    ``avflow train avflow`` copies both from the shards into the model directory.
    """
    from avflow_cli.render.video import find_frame_source

    return find_frame_source(model_dir)


def check_lines_dir(out_dir: str | Path, *, force: bool = False, protect: Any = ()) -> Path:
    """Refuse (one line) a ``--file`` output folder: one that is or holds an input (even with
    ``force``), a file, or (without ``force``) a folder holding anything but synth outputs;
    a missing or empty folder, or one of earlier line outputs, is fine. Writes nothing."""
    out_dir = Path(out_dir)
    target = out_dir.resolve()
    for item in protect:
        if item is not None and (target == Path(item).resolve() or Path(item).resolve().is_relative_to(target)):
            raise AvflowError(f"{out_dir}: holds {item}, which this command reads; choose another output folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise AvflowError(f"{out_dir}: exists and is a file; with --file, -o names a folder of outputs, one per line")
    if out_dir.is_dir() and not force:
        from avflow_cli.fsutil import clean_stale_temporaries

        clean_stale_temporaries(out_dir)
        foreign = sorted(p.name for p in out_dir.iterdir() if output_kind(p) != OUTPUT_KIND)
        if foreign:
            raise AvflowError(f"{out_dir}: holds {foreign[0]!r}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, "
                              "not written by avflow synth; choose a new folder or pass --force to add the line "
                              "outputs beside them")
    return out_dir


class Synthesizer:
    """Text to speech, face codes and head pose with a trained AV-Flow model.

    >>> synth = Synthesizer()                                    # doctest: +SKIP  (the shipped model, or $AVFLOW_MODEL)
    >>> synth = Synthesizer("demo_out/models/avflow")          # doctest: +SKIP  (make demo's own)
    >>> result = synth.synthesize("Hello there.", seed=0)        # doctest: +SKIP
    >>> synth.save(result, "out/")                               # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        t2t: str | Path | None = None,
        head_vae: str | Path | None = None,
        vocoder: str = "auto",
        vocoder_checkpoint: str | Path | None = None,
        device: str = "auto",
        temperature: float | None = None,
        token_gain: float | None = None,
    ) -> None:
        """``model`` is a model directory or a shipped name (``pretrained``, ``real-voice``); None
        uses ``$AVFLOW_MODEL``, else the shipped default (avflow_cli/shipped.py: a model directory
        in the working tree is never picked up unnamed). ``temperature`` scales AV-Flow's starting
        noise and ``token_gain`` its tokens in every path (offline, streaming, listening); None
        keeps the model's own (config.json ``model.temperature``, ``model.token_gain``)."""
        self.choice = choose_model(model)  # which model, and why (--model, $AVFLOW_MODEL or the default)
        self.model_dir = self.choice.path

        from avflow_cli.audio.vocoder import load_vocoder
        from avflow_cli.models.registry import load_head_vae, load_model

        self.device = resolve_device(device)
        self.model = load_model(self.model_dir, device=str(self.device))
        self.temperature = self.model.config.temperature if temperature is None else check_temperature(temperature)
        if token_gain is not None:  # the model's config is what every sampling path reads (inference.build_cond)
            self.model.config = dataclasses.replace(self.model.config, token_gain=check_token_gain(token_gain))
        recorded = self.model.components  # config.json["components"], resolved by load_model
        # text-to-tokens is found now but loaded on first text (tokens-in users need none)
        self.t2t_dir = resolve_component(self.model_dir, "t2t", t2t, recorded)
        self._t2t: Any = None
        vae_dir = resolve_component(self.model_dir, "head_vae", head_vae, recorded)
        self.head_vae = load_head_vae(vae_dir, device=str(self.device)) if vae_dir is not None else None
        if vocoder_checkpoint is None and vocoder in ("auto", "bigvgan"):
            vocoder_checkpoint = recorded_vocoder(self.model_dir, recorded)
        self.vocoder = load_vocoder(vocoder, checkpoint=vocoder_checkpoint, device=str(self.device))
        self.face_decoder_path = find_face_decoder(self.model_dir)
        # what this synthesizer reads: an output folder may never replace (or hold) any of them
        self.reads: list[Path] = [p for p in (self.model_dir, self.t2t_dir, vae_dir, vocoder_checkpoint) if p is not None]
        self.components = {
            "avflow": str(self.model_dir.resolve()),
            "t2t": str(self.t2t_dir) if self.t2t_dir is not None else "none (tokens in)",
            "head_vae": str(vae_dir) if vae_dir is not None else "none (head latents not decoded)",
            "vocoder": self.vocoder.name,
            "device": str(self.device),
        }

    @property
    def token_gain(self) -> float:
        """What AV-Flow's tokens are multiplied by before sampling (``model.token_gain``, or the override)."""
        return float(self.model.config.token_gain)

    @property
    def t2t(self) -> Any:
        """The text-to-tokens model, loaded on first use (see :meth:`load_t2t`)."""
        return self.load_t2t()

    def load_t2t(self) -> Any:
        """Load text-to-tokens now (once) and check its token source against AV-Flow's; a text-in
        caller may call this up front so a missing or mismatched model is a one-line error early."""
        if self._t2t is None:
            if self.t2t_dir is None:
                raise AvflowError(f"{self.model_dir}: no text-to-tokens model found "
                                  "(give --t2t DIR, or train one with `avflow train t2t`)")
            from avflow_cli.data.token_source import check_pair
            from avflow_cli.models.text2tokens import load_t2t

            t2t = load_t2t(self.t2t_dir, device=str(self.device))
            check_pair(self.model.config.token_source, t2t.config.token_source, self.model_dir, self.t2t_dir)
            self._t2t = t2t
        return self._t2t

    # ------------------------------------------------------------------------------------------
    def text_to_tokens(self, text: str, *, seed: int = 0, speed: float = 1.0, progress: Progress | None = None) -> np.ndarray:
        """Token logits (T, 29) at FPS for ``text``, sentence by sentence."""
        if not (math.isfinite(speed) and speed > 0):
            raise AvflowError(f"--speed must be a finite positive number, got {speed}")
        sentences = split_sentences(check_text(text, limit=None))  # the length limit is the caller's (CLI, server)
        if not sentences:
            raise AvflowError("empty text: nothing to synthesize")
        parts = []
        for i, sentence in enumerate(sentences):
            parts.append(self.t2t.synthesize(sentence, length_scale=1.0 / speed, seed=seed + i))
            if progress is not None:
                progress("text-to-tokens", i + 1, len(sentences))
        return np.concatenate(parts, axis=0).astype(np.float32)  # (T, 29)

    def synthesize(self, text: str, *, seed: int = 0, steps: int | None = None, speed: float = 1.0,
                   progress: Progress | None = None, participant: Participant | None = None) -> SynthesisResult:
        """Run the whole pipeline on ``text``; nothing is written to disk.

        ``progress(stage, done, total)`` reports sentences of text-to-tokens, Euler steps of
        AV-Flow and the vocoder as they finish (see :data:`Progress`). ``participant`` (from
        :meth:`prepare_participant`) makes the avatar listen to a user while it speaks.
        """
        start = time.perf_counter()
        with torch.inference_mode():
            tokens = self.text_to_tokens(text, seed=seed, speed=speed, progress=progress)  # (T, 29)
        t2t_time = time.perf_counter() - start
        result = self.synthesize_tokens(tokens, seed=seed, steps=steps, progress=progress, participant=participant)
        result.text, result.speed = text, float(speed)
        result.timings = {"t2t": t2t_time, **result.timings}
        return result

    def generate_motion(self, tokens: np.ndarray, *, seed: int = 0, steps: int | None = None,
                        progress: Progress | None = None, participant: Participant | None = None) -> GeneratedMotion:
        """Tokens (T, 29) at FPS in, AV-Flow's mel, face and head motion out, no vocoder: the part of
        :meth:`synthesize_tokens` that motion-only measurements (participant/evaluate.py) need.
        A ``participant`` sets the timeline as in :meth:`synthesize_tokens`."""
        from avflow_cli.models.inference import generate

        timings: dict[str, float] = {}
        steps = self.model.config.steps if steps is None else check_steps(int(steps))  # None: the model's own count
        tokens, p_tokens, p_smirk = self.guidance_inputs(np.asarray(tokens, np.float32), participant)
        with torch.inference_mode():
            start = time.perf_counter()
            on_step = None if progress is None else (lambda done, total: progress("avflow", done, total))
            out = generate(self.model, tokens, p_tokens=p_tokens, p_smirk=p_smirk, steps=steps, seed=seed,
                           num_samples=1, temperature=self.temperature, progress=on_step)
            face, head, mel = out["face"][0], out["head"][0], out["mel"][0]  # (T, F), (T, 8), (T, 80)
            timings["avflow"] = time.perf_counter() - start

            head_pose = None
            if self.head_vae is not None:
                start = time.perf_counter()
                head_pose = np.asarray(self.head_vae.decode_pose(head), dtype=np.float32)  # (T, 7)
                timings["head_vae"] = time.perf_counter() - start
        return GeneratedMotion(tokens=tokens, mel=mel.astype(np.float32), face=face.astype(np.float32),
                      head_latent=head.astype(np.float32), head_pose=head_pose, steps=steps, timings=timings)

    def synthesize_tokens(self, tokens: np.ndarray, *, seed: int = 0, steps: int | None = None,
                          progress: Progress | None = None, participant: Participant | None = None) -> SynthesisResult:
        """Tokens (T, 29) at FPS in, speech and motion out: the tokens-in entry (``synthesize`` =
        :meth:`text_to_tokens` + this; this = :meth:`generate_motion` + the vocoder). With a
        ``participant`` the timeline is as long as the longer of the two: the avatar's tokens are
        padded with silence (it listens once it has spoken) and a shorter participant with a
        silent listener."""
        motion = self.generate_motion(tokens, seed=seed, steps=steps, progress=progress, participant=participant)
        timings = dict(motion.timings)
        with torch.inference_mode():
            start = time.perf_counter()
            if progress is not None:
                progress("vocoder", 0, 1)
            mel_t = torch.as_tensor(motion.mel, dtype=torch.float32, device=self.device)[None]  # (1, T, 80)
            wav = self.vocoder(mel_t)[0].float().cpu().numpy()  # (T·256,)
            timings["vocoder"] = time.perf_counter() - start
            if progress is not None:
                progress("vocoder", 1, 1)
        check_finite_speech(wav, motion.mel, f"{self.model_dir}")
        peak = float(np.abs(wav).max()) if wav.size else 0.0
        if peak > 1.0:  # vocoders can overshoot; normalise rather than clip
            wav = wav / peak * 0.99
        return SynthesisResult(
            text="",
            seed=seed,
            steps=motion.steps,
            tokens=motion.tokens,
            mel=motion.mel,
            face=motion.face,
            head_latent=motion.head_latent,
            head_pose=motion.head_pose,
            wav=wav.astype(np.float32),
            sample_rate=self.vocoder.sample_rate,
            components=dict(self.components),
            timings=timings,
            participant=None if participant is None else {**participant.record, "warnings": list(participant.warnings)},
        )

    # --- the participant (listening) ----------------------------------------------------------
    def prepare_participant(self, audio: Any = None, *, video: str | Path | None = None,
                            features: str | Path | None = None, channel: str | int | None = None,
                            token_extractor: str = "auto", face: str = "auto") -> Participant:
        """A user's recording (+ video or features) → guidance streams through the extractors this
        model was trained with (avflow_cli/participant). Warnings (e.g. a model trained without
        guidance ignores it) are in ``.warnings``; bad input is a one-line AvflowError."""
        from avflow_cli.participant import prepare_participant

        recorded = getattr(self.model.config, "participant_face_source", "")
        if recorded:  # what made the training shards' participant features (train/avflow.py records it)
            demo_trained = recorded == K.DEMO_FACE_SOURCE
        else:  # a model from before the record: guess from the demo avatar's decoder beside it
            demo_trained = self.face_decoder_path is not None and (self.model_dir / "face_decoder.npz").is_file()
        return prepare_participant(self.model.config, audio=audio, video=video, features=features, channel=channel,
                                   token_extractor=token_extractor, face=face, demo_trained=demo_trained)

    def guidance_inputs(self, tokens: np.ndarray, participant: Participant | None
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(tokens, p_tokens, p_smirk) on one timeline: see :meth:`synthesize_tokens`."""
        from avflow_cli.participant.timeline import align_guidance

        return align_guidance(self.model.config, tokens, participant)

    # --- streaming and the live loop (avflow_cli/stream.py, models/streaming.py) --------------
    def stream(self, text: str | None = None, *, tokens: np.ndarray | None = None,
               participant: Participant | None = None, seed: int = 0, steps: int | None = None,
               speed: float = 1.0, schedule: str = "exact", chunk_frames: int | None = None,
               lookahead: int | None = None) -> Iterator[StreamChunk]:
        """Yield (audio, motion) chunks as they become final; text or tokens in, as :meth:`synthesize`.

        ``schedule="exact"``: equal to :meth:`synthesize_tokens` (audio before peak
        normalisation) to float precision, frames final after ``steps·depth·window_right`` frames of
        look-ahead; ``"low-latency"``: chunks of ``chunk_frames`` with ``lookahead`` frames of future
        (default one network's receptive field), close to offline. Statistics of the last stream
        (time to first audio, real-time factor) are in ``self.last_stream``.
        """
        from avflow_cli.models.inference import build_cond
        from avflow_cli.stream import DEFAULT_CHUNK, AvatarStream, stream_cond

        t0 = time.perf_counter()
        if (text is None) == (tokens is None):
            raise AvflowError("stream needs text or tokens (exactly one)")
        steps = self.model.config.steps if steps is None else check_steps(int(steps))
        chunk = DEFAULT_CHUNK if chunk_frames is None else int(chunk_frames)
        if chunk < 1:
            raise AvflowError(f"--chunk-frames must be at least 1, got {chunk}")
        with torch.inference_mode():
            if text is not None:
                tokens = self.text_to_tokens(text, seed=seed, speed=speed)  # (T, 29)
            tokens, p_tokens, p_smirk = self.guidance_inputs(np.asarray(tokens, np.float32), participant)
            cond = build_cond(self.model, tokens, p_tokens, p_smirk)[0]  # (T, C)
        avatar = AvatarStream(self, schedule=schedule, steps=steps, seed=seed, total=len(cond), chunk=chunk,
                              lookahead=lookahead)
        avatar.t0 = t0  # time to first audio counts text-to-tokens too
        self.last_stream = avatar.stats
        yield from stream_cond(avatar, cond, chunk)

    def listen_session(self, *, sample_rate: int, **kwargs: Any) -> ListenSession:
        """A push-style live loop: ``session.push(audio, frames=None)`` → avatar chunks; ``close()``."""
        from avflow_cli.live.listen import ListenSession

        return ListenSession(self, sample_rate=sample_rate, **kwargs)

    def listen(self, chunks: Any, *, sample_rate: int, **kwargs: Any) -> Iterator[StreamChunk]:
        """Live loop over an iterable of participant audio chunks (or ``(audio, frames)`` pairs);
        yields avatar chunks as they become final (see avflow_cli/stream.py for the latency)."""
        session = self.listen_session(sample_rate=sample_rate, **kwargs)
        self.last_listen = session
        for item in chunks:
            audio, frames = item if isinstance(item, tuple) else (item, None)
            yield from session.push(audio, frames)
        yield from session.close()

    # ------------------------------------------------------------------------------------------
    def check_output(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Refuse (one line) an ``out_dir`` that :meth:`save` may not replace; writes nothing.

        A synth output folder from an earlier run, an empty or a missing folder is fine; any
        other existing entry needs ``force``; the model and its components are never replaced.
        """
        return check_output_dir(out_dir, kind=OUTPUT_KIND, force=force, protect=self.reads)

    def save(self, result: SynthesisResult, out_dir: str | Path, *, preview: bool = True, force: bool = False) -> Path:
        """Write speech.wav, motion.npz, meta.json (+ preview.mp4) into ``out_dir`` atomically.

        See :meth:`check_output` for what may be written, and :mod:`avflow_cli.output` for how
        (only these files are replaced; a user's other files stay).
        """
        from avflow_cli.preview import write_preview

        with OutputFolder(out_dir, kind=OUTPUT_KIND, force=force, protect=self.reads) as folder:
            folder.write_audio(SPEECH_NAME, result.wav, result.sample_rate)
            folder.write_npz(MOTION_NAME, **result.motion_arrays())
            preview_kind = "none"
            if preview:
                start = time.perf_counter()
                preview_kind = write_preview(folder.file(PREVIEW_NAME), result, self.face_decoder_path)
                result.timings["preview"] = time.perf_counter() - start
            meta = {
                "text": result.text,
                "seed": result.seed,
                "steps": result.steps,
                "temperature": self.temperature,
                "token_gain": self.token_gain,
                "speed": result.speed,
                "fps": K.FPS,
                "sample_rate": result.sample_rate,
                "frames": int(result.mel.shape[0]),
                "seconds": result.seconds,
                "real_time_factor": result.real_time_factor,
                "components": result.components,
                "preview": preview_kind,
                "timings_s": result.timings,
                "avflow_version": __version__,
            }
            if result.text and self._t2t is not None:  # the pace text-to-tokens spoke it at (calibrated)
                meta["duration_scale"] = float(self._t2t.config.duration_scale)
            if result.participant is not None:  # which participant path ran (tokens, face), and warnings
                meta["participant"] = result.participant
            folder.write_json(META_NAME, meta)
        return Path(out_dir)

    def is_done(self, out_dir: str | Path, text: str, *, seed: int = 0, steps: int | None = None, speed: float = 1.0) -> bool:
        """True when ``out_dir`` is a complete synth output of this model for the same text and settings."""
        out_dir = Path(out_dir)
        if output_kind(out_dir) != OUTPUT_KIND or not (out_dir / SPEECH_NAME).is_file():
            return False
        try:
            meta = json.loads((out_dir / META_NAME).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        steps = self.model.config.steps if steps is None else int(steps)
        # an output spoken before text-to-tokens was calibrated (no record: 1.0) is redone with the new pace
        pace = float(self.t2t.config.duration_scale)
        return (meta.get("text"), meta.get("seed"), meta.get("steps"), meta.get("temperature", 1.0), meta.get("speed", 1.0),
                meta.get("components", {}).get("avflow"), meta.get("duration_scale", 1.0), meta.get("token_gain", 1.0)) == (
                    text, seed, steps, self.temperature, float(speed), self.components["avflow"], pace, self.token_gain)

    def synthesize_lines(
        self, lines: list[str], out_dir: str | Path, *, seed: int = 0, steps: int | None = None, speed: float = 1.0,
        preview: bool = True, force: bool = False, source: str | Path | None = None,
        line_numbers: list[int] | None = None, progress: Progress | None = None,
    ) -> Iterator[tuple[str, Path, SynthesisResult | None]]:
        """Synthesize each line into ``out_dir/NNN-slug/``; yields ``(line, folder, result)`` as each finishes.

        Before the first line is spoken, every line's text is checked (:func:`text_problems`: an
        unpronounceable line is a one-line error naming ``source`` and its number from
        ``line_numbers``) and every folder is checked (:meth:`check_output`). A folder already
        complete with the same text and settings (:meth:`is_done`) is kept: its ``result`` is None.
        """
        out_dir = Path(out_dir)
        numbers = line_numbers or list(range(1, len(lines) + 1))
        where = f"{source}: " if source is not None else ""
        for problem, number in zip(text_problems(lines), numbers, strict=True):
            if problem is not None:
                raise AvflowError(f"{where}line {number}: {problem}")
        check_lines_dir(out_dir, force=force, protect=[*self.reads, source])
        targets = []
        for i, line in enumerate(lines, start=1):
            slug = re.sub(r"[^a-z0-9]+", "-", line.lower()).strip("-")[:40] or "line"
            target = out_dir / f"{i:03d}-{slug}"
            done = self.is_done(target, line, seed=seed, steps=steps, speed=speed)
            if not done:
                self.check_output(target, force=force)
            targets.append((line, target, done))
        for line, target, done in targets:
            if done:
                yield line, target, None
                continue
            result = self.synthesize(line, seed=seed, steps=steps, speed=speed, progress=progress)
            yield line, self.save(result, target, preview=preview, force=force), result
