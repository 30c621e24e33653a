"""``avflow eval``: generate for every test clip, score with the paper's metrics, write the results.

Two entry points share one scoring path:

* :func:`evaluate_model` generates each test clip from its ground-truth tokens (the paper's
  Table 2 protocol; or from text through text-to-tokens with ``from_text``) into
  ``OUT/generated/`` in the GEN layout (:mod:`avflow_cli.metrics.generated`), then scores it.
* :func:`evaluate_dir` scores any GEN folder against the shards (``--from-dir``), so baselines
  from other systems are scored by exactly the same code.

Work is resumable per clip: generated clips are folders written atomically, and each clip's
scores and sufficient statistics are cached in ``OUT/clips/ID.json`` + ``ID.npz`` under a key
of the settings, so a re-run (or a run interrupted half way) only does what is missing.
Test-set numbers are then aggregated from the cached statistics: F1 from summed confusion
counts, FD and diversity from summed moments, WER from summed edit counts, BC and MCD as means
over clips. Outputs: ``metrics.json``, ``metrics.md``, ``plots/ID.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.console import err_console, progress
from avflow_cli.data.verify import check_shards_readable
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path
from avflow_cli.jsonfile import read_json
from avflow_cli.npzfile import READ_ERRORS
from avflow_cli.metrics.beat import BEAT_SIGMA_S, bc_e, bc_h
from avflow_cli.metrics.diversity import MomentStats, quat_to_rotvec_deg
from avflow_cli.metrics.face_decoder import MouthDecoder, find_mouth_decoder, load_mouth_decoder
from avflow_cli.metrics.frechet import GaussianStats, frechet_distance_stats
from avflow_cli.metrics.generated import ClipPrediction, is_complete, list_clip_dirs, load_prediction, save_prediction
from avflow_cli.metrics.lipsync import F1Counts, event_counts, lip_closures, smiles
from avflow_cli.metrics.mcd import DEFAULT_MCD_ORDER, mcd_dtw, wav_log_mel
from avflow_cli.metrics.report import METRICS_MD_NAME, METRICS_NAME, metrics_markdown
from avflow_cli.metrics.speed import scale_to_segment
from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

EVAL_FORMAT = "avflow-eval"
EVAL_VERSION = 1
SCORER_VERSION = 2  # bump when a per-clip score changes meaning: cached clip scores are then recomputed
CLIPS_DIR = "clips"
GENERATED_DIR = "generated"
PLOTS_DIR = "plots"
SPEED_NAME = "speed.json"
TRUTH_CACHE_ENV = "AVFLOW_EVAL_CACHE"  # ground-truth transcripts shared by every run on the same data
TRUTH_CACHE_DEFAULT = Path("~/.cache/avflow/eval")


@dataclass
class EvalSettings:
    """Everything that changes a per-clip score (part of the cache key) plus run options."""

    face_decoder: str | None = None  # None: face_decoder.npz beside the shards or the model
    lip_threshold: float | None = None  # None: the decoder's own threshold
    smile_threshold: float | None = None
    beat_sigma_s: float = BEAT_SIGMA_S
    mcd_order: int = DEFAULT_MCD_ORDER
    wer: bool = True
    asr_backend: str = "auto"
    vocoder: str = "auto"
    vocoder_checkpoint: str | None = None
    texts: str | None = None  # JSON {clip_id: text}: WER references / --from-text inputs
    device: str = "auto"
    plots: int = 3  # clips to plot

    def __post_init__(self) -> None:
        """Refuse settings no score can use (one line each), before anything runs."""
        if self.wer:  # an unknown recogniser or a missing Whisper folder stops before any clip is scored
            from avflow_cli.audio.asr import parse_backend, whisper_folder

            name, folder = parse_backend(self.asr_backend)
            if name == "whisper":
                whisper_folder(folder)
        for name, value in (("--lip-threshold", self.lip_threshold), ("--smile-threshold", self.smile_threshold)):
            if value is not None and not math.isfinite(value):
                raise AvflowError(f"{name} must be a finite number, got {value}")
        if not (math.isfinite(self.beat_sigma_s) and self.beat_sigma_s > 0):
            raise AvflowError(f"--beat-sigma-s must be a positive number of seconds, got {self.beat_sigma_s}")
        if not 1 <= self.mcd_order < K.N_MELS:
            raise AvflowError(f"--mcd-order must be between 1 and {K.N_MELS - 1} (c1..cN of {K.N_MELS} mel bands), "
                              f"got {self.mcd_order}")
        if self.plots < 0:
            raise AvflowError(f"--plots must be 0 or more, got {self.plots}")

    def cache_key(self, decoder: MouthDecoder | None) -> str:
        keyed = {k: v for k, v in asdict(self).items() if k not in ("device", "plots")}
        keyed["scorer_version"] = SCORER_VERSION
        keyed["decoder"] = None if decoder is None else [decoder.name, decoder.path,
                                                         decoder.lip_closed_threshold, decoder.smile_threshold]
        return hashlib.sha1(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Inputs: ground truth, reference texts, decoders
# ---------------------------------------------------------------------------------------------
def load_truth(shards: Path, record: Any) -> dict[str, Any]:
    """Ground-truth streams of one clip (face, head_pose, mel, valid) and its text attribute, if any."""
    import h5py

    from avflow_cli.data.shards import read_group

    path = shards / record.shard
    try:
        with h5py.File(path, "r") as f:
            group = f[record.id]
            out: dict[str, Any] = read_group(group, ["face", "head_pose", "mel", "valid", "tokens", "p_tokens", "p_smirk"])
            text = group.attrs.get("text")
    except (OSError, KeyError) as err:
        raise AvflowError(f"{path}: cannot read clip {record.id} ({err})") from err
    out["text"] = str(text) if text is not None and str(text).strip() else transcript_text(record, shards=shards)
    return out


def session_dir(source: str, shards: Path) -> Path | None:
    """The session folder a clip record names. ``prep`` records the path it was given, so a
    relative one (``d2/corpus/session_028``) is relative to wherever prep ran: try it as written,
    then against the shard folder and each folder above it."""
    if not source:
        return None
    path = Path(source)
    if path.is_absolute() or path.is_dir():
        return path if path.is_dir() else None
    for base in (shards.resolve(), *shards.resolve().parents):
        if (base / path).is_dir():
            return base / path
    return None


def transcript_text(record: Any, speaker: str = "actor", shards: Path | None = None) -> str | None:
    """The words ``speaker`` says inside a clip, from its session's ``transcript.json``.

    A turn belongs to the clip when at least half of it lies inside the clip's time window
    (``start_frame`` / FPS, + frames / FPS); turns are joined in time order. None when the
    session folder (``record.source``, found with :func:`session_dir` when ``shards`` is given)
    has no transcript.
    """
    source = getattr(record, "source", "")
    where = session_dir(source, shards) if shards is not None else (Path(source) if source else None)
    path = where / "transcript.json" if where is not None else None
    if path is None or not path.is_file():
        return None
    try:
        turns = json.loads(path.read_text()).get("turns", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    lo = record.start_frame / K.FPS
    hi = lo + record.frames / K.FPS
    words = []
    for turn in sorted(turns, key=lambda t: float(t.get("start", 0.0))):
        start, end = float(turn.get("start", 0.0)), float(turn.get("end", 0.0))
        inside = max(0.0, min(end, hi) - max(start, lo))
        if turn.get("speaker") == speaker and end > start and inside >= 0.5 * (end - start):
            words.append(str(turn.get("text", "")).strip())
    text = " ".join(w for w in words if w)
    return text or None


def load_texts(path: str | Path | None) -> dict[str, str]:
    """``{clip_id: text}`` from a JSON file (or an empty dict)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "texts file not found")
    obj = read_json(path)
    if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
        raise InputFileError(path, 'expected a JSON object {"clip_id": "text", ...}')
    return obj


def resolve_decoder(settings: EvalSettings, *dirs: Path | None) -> MouthDecoder | None:
    """The face decoder for lip/smile F1 (explicit file, else face_decoder.npz found in ``dirs``)."""
    path = Path(settings.face_decoder) if settings.face_decoder else find_mouth_decoder(*dirs)
    if path is None:
        return None
    dec = load_mouth_decoder(path).with_thresholds(settings.lip_threshold, settings.smile_threshold)
    if dec.lip_closed_threshold is None or dec.smile_threshold is None:
        raise AvflowError(
            f"{path}: this face decoder carries no thresholds; give --lip-threshold and --smile-threshold"
        )
    return dec


# ---------------------------------------------------------------------------------------------
# Scoring one clip
# ---------------------------------------------------------------------------------------------
class ClipScorer:
    """Scores one clip's prediction against its ground truth; loads the vocoder/ASR on first use."""

    def __init__(self, settings: EvalSettings, decoder: MouthDecoder | None, texts: dict[str, str],
                 vocoder: Any = None) -> None:
        self.settings = settings
        self.decoder = decoder
        self.texts = texts
        self._vocoder = vocoder

    @property
    def vocoder(self) -> Any:
        if self._vocoder is None:
            from avflow_cli.audio.vocoder import load_vocoder

            from avflow_cli.device import resolve_device

            self._vocoder = load_vocoder(self.settings.vocoder, checkpoint=self.settings.vocoder_checkpoint,
                                         device=str(resolve_device(self.settings.device)))
        return self._vocoder

    def vocode(self, mel: np.ndarray) -> tuple[np.ndarray, int]:
        """Waveform of a log-mel (T, 80) through the evaluation vocoder."""
        import torch

        voc = self.vocoder
        wav = voc(torch.as_tensor(mel, dtype=torch.float32)[None])[0].float().cpu().numpy()  # (T·256,)
        return wav, int(voc.sample_rate)

    def score(self, clip_id: str, pred: ClipPrediction, truth: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(scalars for ID.json, sufficient statistics for ID.npz) of one clip."""
        s = self.settings
        t_face, t_mel, t_pose = truth["face"], truth["mel"], truth["head_pose"]  # (T, F), (T, 80), (T, 7)
        valid = truth.get("valid")
        valid = np.ones(len(t_face), bool) if valid is None else np.asarray(valid, bool)
        if pred.face.shape[1] != t_face.shape[1]:
            raise AvflowError(f"clip {clip_id}: generated face codes have {pred.face.shape[1]} dims, truth {t_face.shape[1]}")
        mcd_source = "wav" if pred.wav is not None else "mel"
        g_mel = wav_log_mel(pred.wav, pred.sample_rate) if pred.wav is not None else pred.mel  # (T', 80)
        n = min(len(pred.face), len(t_face))  # frames compared one to one
        rec: dict[str, Any] = {
            "clip": clip_id,
            "frames_generated": int(len(pred.face)),
            "frames_truth": int(len(t_face)),
            "mcd_source": mcd_source,
        }
        stats: dict[str, np.ndarray] = {}

        # lip / smile F1 on frames valid in the truth
        if self.decoder is not None:
            g_d, t_d = self.decoder.distances(pred.face[:n]), self.decoder.distances(t_face[:n])  # (n, 2)
            m = valid[:n]
            lip_thr, smile_thr = self.decoder.lip_closed_threshold, self.decoder.smile_threshold
            rec["lips"] = event_counts(lip_closures(g_d[m, 0], lip_thr), lip_closures(t_d[m, 0], lip_thr)).to_dict()
            rec["smiles"] = event_counts(smiles(g_d[m, 1], smile_thr), smiles(t_d[m, 1], smile_thr)).to_dict()

        # Gaussian and moment statistics (FD_e, Div_e, Div_h)
        for tag, face in (("gen", pred.face), ("true", t_face[valid])):
            g = GaussianStats.of(face)
            stats.update({f"face_{tag}_n": np.array(g.n), f"face_{tag}_s1": g.s1, f"face_{tag}_s2": g.s2})
        poses = {"true": t_pose[valid]}
        if pred.head_pose is not None:
            poses["gen"] = pred.head_pose
        for tag, pose in poses.items():
            for part, values in (("rot", quat_to_rotvec_deg(pose[:, :4])), ("trans", pose[:, 4:7])):
                mom = MomentStats.of(values)
                stats.update({f"{part}_{tag}_n": np.array(mom.n), f"{part}_{tag}_s1": mom.s1, f"{part}_{tag}_s2": mom.s2})

        # beat alignment: speech onsets vs face / head motion, generated and ground truth
        ng = min(len(g_mel), len(pred.face))
        rec["bc_e"] = bc_e(g_mel[:ng], pred.face[:ng], sigma_s=s.beat_sigma_s)
        rec["bc_h"] = bc_h(g_mel[:ng], pred.head_pose[:ng], sigma_s=s.beat_sigma_s) if pred.head_pose is not None else None
        rec["bc_e_gt"] = bc_e(t_mel, t_face, sigma_s=s.beat_sigma_s)
        rec["bc_h_gt"] = bc_h(t_mel, t_pose, sigma_s=s.beat_sigma_s)

        # speech: MCD against the ground-truth mel, WER of generated and ground-truth speech
        rec["mcd"] = mcd_dtw(np.asarray(g_mel, np.float64), np.asarray(t_mel, np.float64), s.mcd_order)
        if s.wer:
            rec.update(self._wer(clip_id, pred, truth))

        timings = pred.meta.get("timings_s") or {}
        seconds = pred.meta.get("seconds") or (len(pred.wav) / pred.sample_rate if pred.wav is not None else ng / K.FPS)
        rec["speed"] = scale_to_segment(timings, float(seconds)) if timings else None
        return rec, stats

    def _truth_transcript(self, mel: np.ndarray) -> str:
        """ASR of the vocoded ground-truth mel, cached by content (runs on the same data share it)."""
        import os

        mel = np.ascontiguousarray(mel, dtype=np.float32)
        key = hashlib.sha1(mel.tobytes() + f"{self.settings.vocoder}|{self.settings.vocoder_checkpoint}|"
                           f"{self.settings.asr_backend}".encode()).hexdigest()
        cache = Path(os.environ.get(TRUTH_CACHE_ENV) or TRUTH_CACHE_DEFAULT).expanduser() / f"{key}.json"
        if cache.is_file():
            try:
                return str(json.loads(cache.read_text())["hypothesis_gt"])
            except (OSError, json.JSONDecodeError, KeyError):
                pass
        wav, sr = self.vocode(mel)
        hyp_gt, backend = transcribe_segments(wav, sr, backend=self.settings.asr_backend)
        try:
            with atomic_path(cache) as tmp:
                tmp.write_text(json.dumps({"hypothesis_gt": hyp_gt, "backend": backend, "vocoder": self.vocoder.name}))
        except (OSError, AvflowError):
            pass  # an unwritable cache only costs time
        return hyp_gt

    def _wer(self, clip_id: str, pred: ClipPrediction, truth: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        gen_wav, gen_sr = (pred.wav, pred.sample_rate) if pred.wav is not None else self.vocode(pred.mel)
        hyp, backend = transcribe_segments(gen_wav, gen_sr, backend=s.asr_backend)
        hyp_gt = self._truth_transcript(truth["mel"])
        reference = self.texts.get(clip_id) or truth.get("text") or pred.text
        source = "text"
        if not reference:  # no text known: the ASR of the (vocoded) ground truth is the reference
            reference, source = hyp_gt, "asr of ground truth"
        out: dict[str, Any] = {"asr_backend": backend, "reference": reference, "reference_source": source,
                               "hypothesis": hyp, "hypothesis_gt": hyp_gt}
        try:
            e = word_errors(reference, hyp)
            out["wer"] = {"errors": e.errors, "words": e.words}
            if source == "text":
                e_gt = word_errors(reference, hyp_gt)
                out["wer_gt"] = {"errors": e_gt.errors, "words": e_gt.words}
        except AvflowError:  # empty reference (silent clip): no words to score
            out["wer"] = None
        return out


# ---------------------------------------------------------------------------------------------
# Cache and aggregation
# ---------------------------------------------------------------------------------------------
def _cache_paths(out_dir: Path, clip_id: str) -> tuple[Path, Path]:
    return out_dir / CLIPS_DIR / f"{clip_id}.json", out_dir / CLIPS_DIR / f"{clip_id}.npz"


def _fingerprint(clip_dir: Path) -> str:
    """Identity of a generated clip's files: a regenerated clip never reuses the old clip's scores."""
    parts = []
    for name in sorted(p.name for p in clip_dir.iterdir() if p.is_file()):
        st = (clip_dir / name).stat()
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def _same_generation(clip_dir: Path, wanted: dict[str, Any]) -> bool:
    """True when a finished clip was generated with ``wanted``'s settings (seed, steps, source, model)."""
    try:
        meta = json.loads((clip_dir / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    got = {"seed": meta.get("seed"), "steps": meta.get("steps"), "from_text": meta.get("from_text"),
           "avflow": meta.get("components", {}).get("avflow")}
    return got == wanted


def _load_cached(out_dir: Path, clip_id: str, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    jpath, npath = _cache_paths(out_dir, clip_id)
    if not (jpath.is_file() and npath.is_file()):
        return None
    try:
        rec = json.loads(jpath.read_text())
        with np.load(npath) as z:
            stats = {k: z[k] for k in z.files}
    except (*READ_ERRORS, json.JSONDecodeError):
        return None  # a damaged cache entry is recomputed
    return (rec, stats) if rec.get("key") == key else None


def _save_cached(out_dir: Path, clip_id: str, rec: dict[str, Any], stats: dict[str, np.ndarray]) -> None:
    jpath, npath = _cache_paths(out_dir, clip_id)
    with atomic_path(npath) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **stats)
    with atomic_path(jpath) as tmp:  # the JSON last: its presence marks the entry complete
        tmp.write_text(json.dumps(rec, indent=1))


def _gaussian(stats: list[dict[str, np.ndarray]], name: str) -> GaussianStats | None:
    parts = [GaussianStats(int(s[f"{name}_n"]), s[f"{name}_s1"], s[f"{name}_s2"]) for s in stats if f"{name}_n" in s]
    return sum(parts[1:], parts[0]) if parts else None


def _moments(stats: list[dict[str, np.ndarray]], name: str) -> MomentStats | None:
    parts = [MomentStats(int(s[f"{name}_n"]), s[f"{name}_s1"], s[f"{name}_s2"]) for s in stats if f"{name}_n" in s]
    return sum(parts[1:], parts[0]) if parts else None


def _diag_diversity(g: GaussianStats | None) -> float | None:
    if g is None or g.n == 0:
        return None
    mean = g.s1 / g.n
    return float(np.mean(np.sqrt(np.clip(np.diag(g.s2) / g.n - mean**2, 0.0, None))))


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    return float(np.mean(vals)) if vals else None


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def aggregate(records: list[dict[str, Any]], stats: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Test-set metrics, ground-truth reference values and extras from per-clip caches."""
    metrics: dict[str, Any] = {}
    gt: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, name in (("lips", "F1_lips"), ("smiles", "F1_smiles")):
        counts = [F1Counts(**r[key]) for r in records if r.get(key)]
        metrics[name] = _nan_to_none(sum(counts[1:], counts[0]).f1) if counts else None
    g_gen, g_true = _gaussian(stats, "face_gen"), _gaussian(stats, "face_true")
    metrics["FD_e"] = frechet_distance_stats(g_true, g_gen) if g_gen and g_true and g_gen.n > 1 and g_true.n > 1 else None
    metrics["Div_e"], gt["Div_e"] = _diag_diversity(g_gen), _diag_diversity(g_true)
    for tag, target in (("gen", metrics), ("true", gt)):
        rot, trans = _moments(stats, f"rot_{tag}"), _moments(stats, f"trans_{tag}")
        target["Div_h"] = rot.diversity if rot is not None else None
        extra["Div_h_trans" + ("" if tag == "gen" else "_gt")] = trans.diversity if trans is not None else None
    metrics["BC_e"], metrics["BC_h"] = _mean([r.get("bc_e") for r in records]), _mean([r.get("bc_h") for r in records])
    gt["BC_e"], gt["BC_h"] = _mean([r.get("bc_e_gt") for r in records]), _mean([r.get("bc_h_gt") for r in records])
    metrics["MCD"] = _mean([r.get("mcd") for r in records])
    for key, target in (("wer", metrics), ("wer_gt", gt)):
        errs = [WordErrors(**r[key]) for r in records if r.get(key)]
        target["WER"] = _nan_to_none(sum(errs[1:], errs[0]).wer) if errs else None
    backends = sorted({r["asr_backend"] for r in records if r.get("asr_backend")})
    sources = sorted({r["reference_source"] for r in records if r.get("reference_source")})
    extra["asr_backend"] = ", ".join(backends) if backends else None
    extra["wer_reference"] = ", ".join(sources) if sources else None
    extra["frames_generated"] = int(sum(r["frames_generated"] for r in records))
    speeds = [r["speed"] for r in records if r.get("speed")]
    speed = {k: float(np.median([sp[k] for sp in speeds if k in sp])) for k in sorted({k for sp in speeds for k in sp})}
    return {"metrics": metrics, "ground_truth": gt, "extra": extra, "speed": speed}


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def check_eval_out(out_dir: Path) -> None:
    """Refuse an ``--out`` that is a file or a folder holding anything but an earlier evaluation's files
    (eval adds to its folder and replaces metrics.json, metrics.md and plots/ there)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AvflowError(f"{out_dir}: exists and is a file; --out names a folder")
    if not out_dir.is_dir():
        return
    ours = {CLIPS_DIR, GENERATED_DIR, PLOTS_DIR, SPEED_NAME, METRICS_NAME, METRICS_MD_NAME}
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in ours and not p.name.startswith("."))
    if foreign:
        raise AvflowError(f"{out_dir}: holds files an evaluation did not write ({', '.join(foreign[:3])}); "
                          "choose another --out")


def _split_records(shards: Path, split: str) -> list[Any]:
    from avflow_cli.data.schema import SPLITS, ShardIndex

    if split not in SPLITS:
        raise AvflowError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    records = ShardIndex.load(shards).split(split)
    if not records:
        raise AvflowError(f"{shards}: the manifest has no clips in split {split!r}")
    return records


def evaluate_dir(
    gen_dir: str | Path,
    shards: str | Path,
    *,
    split: str = "test",
    out_dir: str | Path | None = None,
    settings: EvalSettings | None = None,
    name: str | None = None,
    source: str = "dir",
    vocoder: Any = None,
    speed: dict[str, float] | None = None,
    model_dir: str | Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Score the GEN folder ``gen_dir`` against split ``split`` of ``shards``; write and return results."""
    settings = settings or EvalSettings()
    gen_dir, shards = Path(gen_dir), Path(shards)
    out_dir = Path(out_dir) if out_dir is not None else gen_dir / "eval"
    check_eval_out(out_dir)
    records = _split_records(shards, split)
    available = list_clip_dirs(gen_dir)
    todo = [r for r in records if r.id in available]
    if not todo:
        raise AvflowError(
            f"{gen_dir}: no generated clip folder matches a {split} clip of {shards} "
            f"(expected folders named like {records[0].id!r} holding motion.npz)"
        )
    check_shards_readable(shards, clips=todo)  # inputs first: nothing is written before they are known good
    decoder = resolve_decoder(settings, shards, Path(model_dir) if model_dir else None)
    renderer = _preview_renderer(model_dir, shards) if settings.plots else None
    scorer = ClipScorer(settings, decoder, load_texts(settings.texts), vocoder)
    key = settings.cache_key(decoder)
    all_recs, all_stats = [], []
    with progress(transient=not show_progress) as bar:
        task = bar.add_task(f"scoring {split}", total=len(todo), status="")
        for i, record in enumerate(todo):
            clip_key = f"{key}-{_fingerprint(available[record.id])}"  # settings and the clip's own files
            cached = _load_cached(out_dir, record.id, clip_key)
            truth = None
            if cached is None:
                truth = load_truth(shards, record)
                pred = load_prediction(available[record.id])
                rec, stats = scorer.score(record.id, pred, truth)
                rec["key"] = clip_key
                _save_cached(out_dir, record.id, rec, stats)
            else:
                rec, stats = cached
            if i < settings.plots:
                _plot(out_dir, record, shards, available[record.id], decoder, truth)
                _plot_video(out_dir, record, shards, available[record.id], renderer, truth, settings.device)
            all_recs.append(rec)
            all_stats.append(stats)
            bar.update(task, advance=1, status=record.id)
    result = aggregate(all_recs, all_stats)
    result["speed_source"] = "per-clip timings from meta.json, scaled to 20 s (median over clips)"
    if speed:
        result["speed"] = speed
        result["speed_source"] = f"measured on one 20 s input ({speed.get('device', 'device unknown')}, after a warm-up call)"
    result.update(
        {
            "format": EVAL_FORMAT,
            "version": EVAL_VERSION,
            "name": name or gen_dir.name,
            "source": source,
            "generated": str(gen_dir.resolve()),
            "truth": str(shards.resolve()),
            "split": split,
            "clips": len(todo),
            "missing_clips": len(records) - len(todo),
            "settings": {
                "face_decoder": None if decoder is None else f"{decoder.name} ({decoder.path})",
                "lip_closed_threshold": None if decoder is None else decoder.lip_closed_threshold,
                "smile_threshold": None if decoder is None else decoder.smile_threshold,
                "beat_sigma_s": settings.beat_sigma_s,
                "mcd_order": settings.mcd_order,
                "mcd_source": ", ".join(sorted({r["mcd_source"] for r in all_recs})),
                "asr_backend": result["extra"].get("asr_backend"),
                "wer_reference": result["extra"].get("wer_reference"),
                "vocoder_for_asr": getattr(scorer._vocoder, "name", None),
            },
            "avflow_version": __version__,
        }
    )
    write_results(out_dir, result)
    return result


def write_results(out_dir: Path, result: dict[str, Any]) -> None:
    """metrics.json and metrics.md, atomically."""
    with atomic_path(out_dir / METRICS_NAME) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / METRICS_MD_NAME) as tmp:
        tmp.write_text(metrics_markdown(result))


def _plot(out_dir: Path, record: Any, shards: Path, clip_dir: Path, decoder: MouthDecoder | None,
          truth: dict[str, Any] | None) -> None:
    from avflow_cli.metrics.plots import plot_clip

    path = out_dir / PLOTS_DIR / f"{record.id}.png"
    if path.is_file():
        return
    truth = truth or load_truth(shards, record)
    pred = load_prediction(clip_dir)
    g_mel = wav_log_mel(pred.wav, pred.sample_rate) if pred.wav is not None else pred.mel
    lips = {}
    if decoder is not None:
        lips = {
            "gen_lip": decoder.lip_distance(pred.face),
            "true_lip": decoder.lip_distance(truth["face"]),
            "lip_threshold": decoder.lip_closed_threshold,
        }
    plot_clip(path, record.id, gen_face=pred.face, gen_mel=g_mel, true_face=truth["face"], true_mel=truth["mel"], **lips)


def _preview_renderer(model_dir: str | Path | None, shards: Path) -> Path | None:
    """The avatar that draws plotted clips: the model's (codec avatar or demo decoder), else the shards'."""
    import shutil

    from avflow_cli.render.video import find_frame_source

    if shutil.which("ffmpeg") is None:
        return None
    found = find_frame_source(model_dir) if model_dir else None
    return found or find_frame_source(shards)


def _plot_video(out_dir: Path, record: Any, shards: Path, clip_dir: Path, renderer: Path | None,
                truth: dict[str, Any] | None, device: str) -> None:
    """``plots/ID.mp4``: generated | ground truth rendered by the avatar, with the generated speech."""
    from avflow_cli.preview import comparison_preview

    path = out_dir / PLOTS_DIR / f"{record.id}.mp4"
    if renderer is None or path.is_file():
        return
    truth = truth or load_truth(shards, record)
    pred = load_prediction(clip_dir)
    comparison_preview(path, pred.face, pred.head_pose, truth["face"], truth.get("head_pose"), renderer,
                       audio=pred.wav, audio_sr=pred.sample_rate, device=device)


def clip_participant(model: Any, truth: dict[str, Any]) -> Any:
    """The clip's true participant as guidance, in the streams the model was trained with (None when none)."""
    from avflow_cli.participant import Participant

    cfg = model.config
    p_tokens = truth.get("p_tokens") if getattr(cfg, "participant_tokens", False) else None
    p_smirk = truth.get("p_smirk") if getattr(cfg, "participant_visual_dim", 0) > 0 else None
    if p_tokens is None and p_smirk is None:
        return None
    return Participant(p_tokens=p_tokens, p_smirk=p_smirk, audio=None, record={"source": "ground truth of the clip"})


def generate_clips(
    model_dir: str | Path,
    shards: str | Path,
    gen_dir: str | Path,
    *,
    split: str = "test",
    steps: int | None = None,
    seed: int = 0,
    from_text: bool = False,
    t2t: str | Path | None = None,
    head_vae: str | Path | None = None,
    settings: EvalSettings | None = None,
    measure: bool = True,
    show_progress: bool = True,
) -> tuple[Any, dict[str, float] | None]:
    """Generate every ``split`` clip into ``gen_dir`` (GEN layout), skipping finished clips.

    Each clip is one :class:`~avflow_cli.synth.Synthesizer` call, as ``avflow synth`` makes it:
    ``synthesize_tokens`` on the clip's true tokens with its true participant as guidance, or
    ``synthesize`` on its text with ``from_text``. Returns (the vocoder, so scoring reuses it;
    stage timings for 20 s, or None).
    """
    from avflow_cli.metrics.speed import measure_speed
    from avflow_cli.synth import Synthesizer

    settings = settings or EvalSettings()
    model_dir, shards, gen_dir = Path(model_dir), Path(shards), Path(gen_dir)
    records = _split_records(shards, split)
    check_shards_readable(shards, clips=records)  # before minutes of generation, and before any folder exists
    if steps is not None and steps < 1:
        raise AvflowError(f"--steps must be at least 1, got {steps}")
    synth = Synthesizer(model_dir, t2t=t2t, head_vae=head_vae, vocoder=settings.vocoder,
                        vocoder_checkpoint=settings.vocoder_checkpoint, device=settings.device)
    model = synth.model
    if synth.head_vae is None:
        err_console.print(f"[yellow]warning:[/] {model_dir}: no head VAE found; BC_h and Div_h need head poses and are skipped")
    texts = load_texts(settings.texts)
    if from_text:
        if synth.t2t_dir is None:
            raise AvflowError(f"{model_dir}: --from-text needs a text-to-tokens model (give --t2t DIR)")
        synth.load_t2t()  # a mismatched token source fails before any clip
    components = {"avflow": synth.components["avflow"], "head_vae": synth.components["head_vae"] if synth.head_vae else None,
                  "vocoder": synth.vocoder.name, "device": str(synth.device),
                  "t2t": str(synth.t2t_dir) if from_text else None}
    first_truth = None  # gen_dir appears with its first clip (save_prediction), never empty
    wanted = {"seed": seed, "steps": steps or model.config.steps, "from_text": from_text, "avflow": components["avflow"]}
    with progress(transient=not show_progress) as bar:
        task = bar.add_task(f"generating {split}", total=len(records), status="")
        for record in records:
            target = gen_dir / record.id
            if is_complete(target) and _same_generation(target, wanted):  # other settings: generated again
                bar.update(task, advance=1, status=f"{record.id} (done before)")
                continue
            truth = load_truth(shards, record)
            first_truth = first_truth or truth
            text = texts.get(record.id) or truth.get("text")
            try:
                if from_text:
                    if not text:
                        raise AvflowError(f"clip {record.id}: --from-text needs its text (shard attribute 'text' or --texts FILE)")
                    # no guidance: the participant's timing would not match the generated speech
                    result = synth.synthesize(text, seed=seed, steps=steps)
                else:
                    result = synth.synthesize_tokens(truth["tokens"], seed=seed, steps=steps,
                                                     participant=clip_participant(model, truth))
            except AvflowError as err:
                raise AvflowError(f"clip {record.id}: {err}") from err
            meta = {"clip": record.id, "text": text, "seed": seed, "steps": result.steps,
                    "from_text": from_text, "seconds": result.seconds, "timings_s": result.timings,
                    "components": components, "avflow_version": __version__}
            save_prediction(target, ClipPrediction(face=result.face, head_pose=result.head_pose, mel=result.mel,
                                                   wav=result.wav, sample_rate=result.sample_rate,
                                                   head_latent=result.head_latent, tokens=result.tokens, meta=meta),
                            force=is_complete(target))  # an earlier clip of other settings (also pre-marker ones)
            bar.update(task, advance=1, status=record.id)
    speed = None
    if measure:
        speed_path = gen_dir.parent / SPEED_NAME
        if speed_path.is_file():
            speed = json.loads(speed_path.read_text())
        else:
            truth = first_truth or load_truth(shards, records[0])
            text = (texts.get(records[0].id) or truth.get("text")) if from_text else None
            speed = measure_speed(synth, truth["tokens"], text=text, steps=steps)
            speed["device"] = str(synth.device)
            with atomic_path(speed_path) as tmp:
                tmp.write_text(json.dumps(speed, indent=1))
    return synth.vocoder, speed


def evaluate_model(
    model_dir: str | Path,
    shards: str | Path,
    *,
    split: str = "test",
    out_dir: str | Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    from_text: bool = False,
    t2t: str | Path | None = None,
    head_vae: str | Path | None = None,
    settings: EvalSettings | None = None,
    name: str | None = None,
    measure_speed: bool = True,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Generate for every test clip with the model in ``model_dir``, then score (see module doc)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise AvflowError(f"{model_dir}: not a model directory (no config.json)")
    out_dir = Path(out_dir) if out_dir is not None else model_dir / "eval" / (f"{split}-text" if from_text else split)
    check_eval_out(out_dir)
    gen_dir = out_dir / GENERATED_DIR
    vocoder, speed = generate_clips(model_dir, shards, gen_dir, split=split, steps=steps, seed=seed,
                                    from_text=from_text, t2t=t2t, head_vae=head_vae, settings=settings,
                                    measure=measure_speed, show_progress=show_progress)
    return evaluate_dir(gen_dir, shards, split=split, out_dir=out_dir, settings=settings,
                        name=name or model_dir.name, source="text" if from_text else "ground-truth tokens",
                        vocoder=vocoder, speed=speed, model_dir=model_dir, show_progress=show_progress)
