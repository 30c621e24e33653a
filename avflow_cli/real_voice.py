"""The real-voice model: package a `pipelines/real_voice.sh` run, and measure it on held-out prompts.

``python -m avflow_cli.real_voice package RUN DEST`` copies the trained parts of a run into the
layout of ``resources/pretrained_demo/`` (``avflow/``, ``t2t/``, ``headvae/``) plus the voice's own
fine-tuned student vocoder (``vocoder/``, recorded in the ``components`` of ``DEST/avflow``'s ``config.json``, so
``Synthesizer(DEST / "avflow")`` uses it), and writes the README: provenance, licence and
attribution of the recordings, the recipe, the CPU time and the sha256 of every file.

``python -m avflow_cli.real_voice evaluate DEST HELDOUT`` scores it (docs/quality.md, "real voice"):
word error rate (pocketsphinx, pause-segmented as ``avflow eval``) and MCD (DTW, our log-mel) on
the held-out recordings' texts, with the recordings themselves and their mels through the same
vocoder as the ceiling, and WER on new sentences the actor never spoke (``probe_sentences.txt``).
Every transcript is kept in ``quality.json``: what the model says, not only a number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.audio.asr import WHISPER_EXTRA, parse_backend
from avflow_cli.errors import AvflowError
from avflow_cli.metrics.probe import SAMPLE_SEED_STRIDE  # evaluate --samples; at most this many texts

REAL_VOICE_DIR = Path(__file__).parent / "resources" / "real_voice"  # the shipped folder
PARTS = {  # part → files copied from the run (train_state.pt, logs and samples stay behind)
    "avflow": ("config.json", "model.safetensors", "face_decoder.npz", "token_gain.json"),
    "t2t": ("config.json", "model.safetensors", "text_ids.json"),
    "headvae": ("config.json", "model.safetensors"),
    "vocoder": ("config.json", "model.safetensors"),
}
SOURCES = {"avflow": "models/avflow", "t2t": "models/t2t", "headvae": "models/headvae", "vocoder": "vocoder/student"}
GTA_VOCODER = "vocoder_gta/student"  # the vocoder fine-tuned again on the model's own mels, when the run made it
OPTIONAL_FILES = ("face_decoder.npz", "token_gain.json")  # copied when the run has them
INIT_NOTE = "init.txt"  # in avflow/: the weights its training started from (`--init`), or "random"
README = "README.md"
QUALITY = "quality.json"
MAX_PACKAGE_BYTES = 25 * 1024 * 1024
HELDOUT_MARGIN = 0.10  # goal: held-out WER within this of the vocoded recordings (issue 24 §1)
NEW_WER_GOAL = 0.30  # goal: WER of sentences the actor never spoke


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the README (which lists them), by relative path."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != README}


def read_checksums(folder: Path) -> dict[str, str]:
    """The ``sha256  path`` lines of the README's checksum block."""
    text = (folder / README).read_text(encoding="utf-8")
    block = text.split("```sha256\n", 1)[1].split("```", 1)[0]
    return {line.split()[1]: line.split()[0] for line in block.splitlines() if line.strip()}


def package(run: Path, dest: Path, recipe: str = "") -> Path:
    """Copy the run's parts into ``dest`` (replaced when it is an earlier package, else refused),
    record the vocoder, write the README.

    ``recipe``: the command (with its environment) that made the run, quoted in the README. The
    vocoder is the GTA one (``GTA_VOCODER``) when the run has it, else the recordings-only one."""
    if dest.exists() and not ((dest / README).is_file() and (dest / "import.json").is_file()):
        raise AvflowError(f"{dest}: exists and is not a real-voice model folder; choose a new destination "
                          "(only a package's own folder is replaced)")
    sources = dict(SOURCES)
    if (run / GTA_VOCODER / "model.safetensors").is_file():
        sources["vocoder"] = GTA_VOCODER
    missing = [str(run / sources[p] / f) for p, files in PARTS.items() for f in files
               if not (run / sources[p] / f).is_file() and f not in OPTIONAL_FILES]
    if missing:
        raise AvflowError(f"{run}: not a finished real-voice run ({missing[0]} missing)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part, files in PARTS.items():
        (tmp / part).mkdir(parents=True)
        for name in files:
            src = run / sources[part] / name
            if src.is_file():
                shutil.copyfile(src, tmp / part / name)
    half_matrices(tmp / "avflow" / "model.safetensors")
    config_path = tmp / "avflow" / "config.json"
    config = json.loads(config_path.read_text())
    config["components"] = {"head_vae": "../headvae", "t2t": "../t2t", "vocoder": "../vocoder"}
    init = (config.pop("train", None) or {}).get("init", "")  # the run's paths and optimiser settings: the README has the recipe
    (tmp / "avflow" / INIT_NOTE).write_text(_init_name(init) + "\n")  # which weights AV-Flow started from
    config_path.write_text(json.dumps(config, indent=1) + "\n")
    imported = json.loads((run / "voice" / "import.json").read_text())
    imported["source"] = "$AVFLOW_REAL_DATA/asterisk"  # not this machine's path
    (tmp / "import.json").write_text(json.dumps(imported, indent=1) + "\n")
    (tmp / "vocoder" / "source.txt").write_text(sources["vocoder"] + "\n")  # which fine-tune the README describes
    (tmp / "recipe.txt").write_text((recipe or "pipelines/real_voice.sh OUT") + "\n")
    if (run / "cpu_time.tsv").is_file():
        shutil.copyfile(run / "cpu_time.tsv", tmp / "cpu_time.tsv")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    write_readme(dest)
    return dest


def _init_name(init: str) -> str:
    """How the README names AV-Flow's starting weights: a shipped model's name, a folder's name, or random."""
    if not init:
        return "random"
    from avflow_cli.shipped import shipped_name_of

    return shipped_name_of(init) or Path(init).name


def half_matrices(path: Path) -> None:
    """Store the weight matrices (ndim ≥ 2) of a safetensors file in float16, the rest as it is.

    The loaders copy into float32 parameters (``load_state_dict`` casts), so only storage changes:
    it halves AV-Flow's 19.5 MB so the folder stays within MAX_PACKAGE_BYTES. Biases, norms and
    buffers (1-D) keep float32."""
    import torch

    from avflow_cli.weights import load_safetensors, save_safetensors

    state = load_safetensors(path)
    save_safetensors(path, {k: v.half() if v.dtype == torch.float32 and v.ndim >= 2 else v for k, v in state.items()})


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _steps(folder: Path, part: str) -> str:
    try:
        cfg = json.loads((folder / part / "config.json").read_text())
    except (OSError, ValueError):
        return "?"
    return str(cfg.get("steps") or cfg.get("train_steps") or "see cpu_time.tsv")


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``), for the README's timing."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_readme(folder: Path) -> None:
    """README.md: what this is, where the voice comes from (licence), how it was made, checksums."""
    imp = json.loads((folder / "import.json").read_text())
    quality = json.loads((folder / QUALITY).read_text()) if (folder / QUALITY).is_file() else None
    cpu = (folder / "cpu_time.tsv").read_text().strip().splitlines() if (folder / "cpu_time.tsv").is_file() else []
    total_cpu = sum(float(f[2].split()[0]) for f in (line.split("\t") for line in cpu) if f[2].split()[0].isdigit())
    band = imp.get("mel_band") or {}
    lines = [
        "# The real-voice model",
        "",
        "An avatar that speaks with a real human voice: text-to-tokens, AV-Flow (`small`, `--config dyadic`)",
        "and the student vocoder trained end to end on real recordings, the Asterisk core prompts read by",
        "one professional voice actor. The face and head have no recordings for this voice: they are the",
        "demo avatar's, driven by the **forced alignment of the real speech** (pocketsphinx phone timing),",
        "so the lips follow the real voice. Load it with `Synthesizer(\"avflow_cli/resources/real_voice/avflow\")`",
        "(`avflow synth --model avflow_cli/resources/real_voice/avflow`).",
        "",
        "## Licence and attribution",
        "",
        f"The voice and everything derived from it here (all weights in this folder) come from: {imp['attribution']}.",
        f"Licence: **{imp['license']}** (https://creativecommons.org/licenses/by-sa/3.0/): share-alike, keep",
        "this attribution with any copy or derivative of this folder.",
        "",
        "## Data",
        "",
        f"`avflow prep import asterisk` (voice `{imp['voice']}`): {imp['train']} prompts for training "
        f"({imp['train_seconds'] / 60:.1f} min with their silences), {len(imp['heldout'])} held out "
        "(`pipelines/real_voice_heldout.txt`, never trained on), "
        f"{len(imp['skipped'])} skipped with their reasons in `import.json` (descriptions such as \"[beep]\", "
        "words outside the pronouncing dictionary, text the audio does not say).",
        f"Source rates: {', '.join(f'{n} prompts at {r} Hz' for r, n in imp['source_rates'].items())}, resampled "
        f"to {K.SAMPLE_RATE} Hz. Bandwidth: G.722 carries up to {band.get('top_hz', 7000):g} Hz; the mel spans "
        f"0–{K.MEL_FMAX:g} Hz, so its top {band.get('bins_above', '?')} of {K.N_MELS} bins hold only the "
        "resampler's stop-band. They are kept and trained on as they are (low in every target): AV-Flow learns "
        "them as quiet and the vocoder, fine-tuned on these recordings, leaves that band empty.",
        "",
        "## Recipe",
        "",
        "`pipelines/real_voice.sh OUT` (the exact commands; re-running resumes, larger `AV_STEPS1`/`AV_STEPS`/",
        "`T2T_STEPS`/`VOC_STEPS` continue training). This folder was made with (`recipe.txt`):",
        "",
        "```",
        *(folder / "recipe.txt").read_text().strip().splitlines(),
        "```",
        "",
        "Parts:",
        "",
        "| part | what |",
        "|---|---|",
        "| `avflow/` | `small` AV-Flow, `--config dyadic`, alignment tokens, temperature 0.4, " + _token_gain_line(folder)
        + _init_line(folder)
        + "; weight matrices stored as float16 (loaded as float32) to fit 25 MB |",
        "| `t2t/` | `tiny` text-to-tokens on the recordings' alignment tokens" + _t2t_pace_line(folder) + " |",
        "| `headvae/` | `tiny` head-pose VAE (the demo model's when `HEAD_VAE` names it: the same head generator) |",
        "| `vocoder/` | " + _vocoder_line(folder) + " |",
        "",
        f"Time per stage (`cpu_time.tsv`, in the order run; CPU: {cpu_name()}, {os.cpu_count()} cores shared "
        "with other jobs, so wall times swing 2–3× and more; no GPU; CPU seconds are what the stage "
        "itself used):",
        "",
        "| stage | wall | CPU |",
        "|---|---|---|",
        *[f"| {c.split(chr(9))[0]} | {c.split(chr(9))[1]} | {c.split(chr(9))[2]} |" for c in cpu],
        f"| total | | {total_cpu:.0f} s ({total_cpu / 3600:.2f} h) |",
        "",
    ]
    if quality:
        recognisers = quality.get("asr_all") or [quality["asr"].split()[0]]
        names = " / ".join(recognisers)
        lines += ["## Quality (`python -m avflow_cli.real_voice evaluate`, docs/quality.md)", "",
                  f"| path | held-out WER ({names}) | held-out MCD (dB) | new sentences WER ({names}) |",
                  "|---|---|---|---|"]
        for row in quality["table"]:
            held = row.get("heldout_wer_by_asr") or {recognisers[0]: row.get("heldout_wer")}
            new = row.get("new_wer_by_asr") or {recognisers[0]: row.get("new_wer")}
            lines.append(f"| {row['path']} | {' / '.join(_fmt(held.get(r)) for r in recognisers)} | "
                         f"{_fmt(row.get('heldout_mcd'))} | "
                         f"{' / '.join(_fmt(new.get(r)) for r in recognisers) if row.get('new_wer') is not None else '–'} |")
        whisper = [r for r in recognisers if r.startswith("whisper")]
        lines += ["", f"ASR: {quality['asr']}" + (f"; second: {', '.join(recognisers[1:])}" if len(recognisers) > 1 else "")
                  + (f" (`whisper:NAME`: the CTranslate2 Whisper folder NAME; {WHISPER_EXTRA})" if whisper else "")
                  + ". Transcripts of every sentence: `quality.json`"
                  + (f"; the model spoke every text {quality['samples']} times (seeds i, i + {SAMPLE_SEED_STRIDE}, …) "
                     "and its WERs and MCD pool them" if quality.get("samples", 1) > 1 else "; one sample of each text")
                  + ".", ""]
        if quality.get("heldout_prompts", len(imp["heldout"])) != len(imp["heldout"]):
            lines += [f"The held-out rows score {quality['heldout_prompts']} prompts: the held-out folder of a later "
                      "`avflow prep import asterisk` of the same list (`pipelines/real_voice_heldout.txt`), whose "
                      f"aligner takes more of them than the {len(imp['heldout'])} of this model's import; none was "
                      "trained on.", ""]
        rows = {row["path"]: row for row in quality["table"]}
        ceiling_row = rows.get("recordings → mel → vocoder (ceiling)")
        text = next((row for path, row in rows.items() if path.startswith("text")), None)
        if ceiling_row is not None and text is not None:
            verdicts = [_goal_verdicts(r, ceiling_row, text) for r in recognisers]
            lines += [f"Goals (issue 24), by each recogniser: held-out WER within {HELDOUT_MARGIN} of the vocoded "
                      f"recordings, new sentences WER ≤ {NEW_WER_GOAL}. " + "; ".join(verdicts) + "."
                      + ("" if all(v.count("**met**") == 2 for v in verdicts)
                         else " What was tried and what is left: docs/quality.md, \"Real voice\"."), ""]
    lines += [f"Size: {_size(folder) / 1e6:.1f} MB.", "", "## sha256 of every file", "", "```sha256"]
    lines += [f"{digest}  {name}" for name, digest in checksums(folder).items()]
    lines += ["```", ""]
    (folder / README).write_text("\n".join(lines), encoding="utf-8")


def _goal_verdicts(recogniser: str, ceiling_row: dict, text_row: dict) -> str:
    """"pocketsphinx: held-out **met** (0.39 ≤ 0.41), new sentences **not met** (0.50 > 0.30)"."""
    def by(row: dict, key: str) -> float | None:  # a quality.json from before two recognisers has one value
        by_asr = row.get(f"{key}_by_asr")
        return by_asr.get(recogniser) if by_asr else row.get(key)

    bound = by(ceiling_row, "heldout_wer") + HELDOUT_MARGIN
    held, new = by(text_row, "heldout_wer"), by(text_row, "new_wer")

    def verdict(value: float | None, limit: float) -> str:
        if value is None:
            return "not measured"
        digits = 2 if abs(value - limit) >= 0.005 else 3  # a close call shows the digit that decides it
        if value <= limit:
            return f"**met** ({value:.{digits}f} ≤ {limit:.{digits}f})"
        return f"**not met** ({value:.{digits}f} > {limit:.{digits}f})"

    return f"{recogniser}: held-out {verdict(held, bound)}, new sentences {verdict(new, NEW_WER_GOAL)}"


def _init_line(folder: Path) -> str:
    """Where AV-Flow's training started (``INIT_NOTE`` in the AV-Flow part, written by :func:`package`)."""
    note = folder / "avflow" / INIT_NOTE
    name = note.read_text().strip() if note.is_file() else "random"
    if name == "random":
        return "trained from random weights"
    if name == "pretrained":
        return ("fine-tuned from the shipped demo model (`--init pretrained`: 30 min of flite speech on the same "
                "avatar, so it starts knowing how the tokens sound)")
    return f"fine-tuned from `{name}` (`--init`)"


def _token_gain_line(folder: Path) -> str:
    """AV-Flow's token gain when it is not 1 (``model.token_gain``) and what chose it (token_gain.json)."""
    gain = json.loads((folder / "avflow" / "config.json").read_text()).get("model", {}).get("token_gain", 1.0)
    if gain == 1.0:
        return ""
    line = f"token gain {gain:g} (`model.token_gain`: its tokens are read {gain:g}× as strongly at sampling"
    record_path = folder / "avflow" / "token_gain.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        measured = ", ".join(f"{r['gain']:g} → {r['mean_wer']:.3f}" for r in record["scores"])
        line += (f"; chosen by `avflow train token-gain` on the {record['sentences']} sentences, {record['samples']} "
                 f"samples each, mean WER of the recognisers: {measured}")
    return line + "; docs/quality.md \"Token gain\"), "


def _t2t_pace_line(folder: Path) -> str:
    """The text-to-tokens duration calibration, when it has one (``model.duration_scale``)."""
    scale = json.loads((folder / "t2t" / "config.json").read_text()).get("model", {}).get("duration_scale", 1.0)
    if scale == 1.0:
        return ""
    return (f"; its durations calibrated to her pace on its training prompts (`model.duration_scale` = {scale:g}, "
            "`avflow train calibrate-t2t`: uncalibrated it spoke faster than she does, docs/quality.md)")


def _vocoder_line(folder: Path) -> str:
    """What the shipped vocoder was fine-tuned on (``vocoder/source.txt``, written by :func:`package`)."""
    source = folder / "vocoder" / "source.txt"
    line = "the package's student vocoder fine-tuned on the recordings (`--targets speech`)"
    if source.is_file() and source.read_text().strip() == GTA_VOCODER:
        line += (", then on the recordings plus this AV-Flow's own mels of their alignment tokens (ground-truth "
                 "aligned: `--gta-model ... --gta-tokens VOICE/tokens`), so it turns the model's mels into her voice")
    return line


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}"


def _heldout(folder: Path) -> list[tuple[str, str, np.ndarray, dict]]:
    """(id, spoken text, recording at SAMPLE_RATE, alignment) of the held-out prompts."""
    from avflow_cli.data.t2t_dataset import read_metadata as read_ljspeech_metadata
    from avflow_cli.audio.io import read_audio

    out = []
    for item_id, text in read_ljspeech_metadata(folder):
        audio, sr = read_audio(folder / "wavs" / f"{item_id}.wav")
        if sr != K.SAMPLE_RATE:
            raise AvflowError(f"{folder}: {item_id}.wav is not at {K.SAMPLE_RATE} Hz")
        ali = json.loads((folder / "alignments" / f"{item_id}.json").read_text())
        out.append((item_id, text, audio.mean(axis=0), ali))
    return out


def evaluate(model_dir: Path, heldout: Path, *, new_sentences: Sequence[str] | None = None,
             wav_dir: Path | None = None, asr: Sequence[str] = ("auto",), samples: int = 1) -> dict:
    """WER and MCD of the model and its ceilings on held-out prompts; WER on new sentences.

    ``samples``: how many times the model speaks each prompt and sentence (seeds ``i + k ·
    SAMPLE_SEED_STRIDE``); its WERs and MCD pool all of them. One sample's WER moves by about ±0.05
    with the seed on ten sentences (docs/quality.md), so comparisons want several.

    ``asr``: the recognisers (``avflow eval --asr-backend`` names); every waveform is transcribed
    by each, the first gives ``wer``/``heard``, all of them ``wer_by_asr``/``heard_by_asr`` (issue
    24 reports every headline WER with two). ``wav_dir``: also write every scored waveform there
    (PATH_KEY/NNN.wav + texts.json), for listening."""
    if not asr:
        raise AvflowError("evaluate needs at least one recogniser")
    if samples < 1:
        raise AvflowError(f"--samples must be at least 1, got {samples}")
    for spec in asr:
        parse_backend(spec)  # an unknown name fails before minutes of synthesis
    import torch

    from avflow_cli.audio.alignment_tokens import tokens_from_transcript
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.data.resample import resample_to_fps
    from avflow_cli.metrics.mcd import mcd_dtw
    from avflow_cli.metrics.probe import probe_sentences
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(model_dir / "avflow", device="cpu")
    items = _heldout(heldout)
    new = list(new_sentences or probe_sentences())
    if max(len(items), len(new)) > SAMPLE_SEED_STRIDE:  # before minutes of synthesis
        raise AvflowError(f"at most {SAMPLE_SEED_STRIDE} held-out prompts and new sentences (seeds of a sample are "
                          f"{SAMPLE_SEED_STRIDE} apart)")

    def score(name: str, wavs: list[np.ndarray], refs: list[str], ref_mels: list[np.ndarray] | None,
              seeds: list[int] | None = None) -> dict:
        rows, mcds = [], []
        if wav_dir is not None:
            from avflow_cli.audio.io import write_audio

            sub = wav_dir / f"{len(list(wav_dir.glob('*'))) if wav_dir.is_dir() else 0:02d}"
            sub.mkdir(parents=True)
            for i, wav in enumerate(wavs):
                write_audio(sub / f"{i:03d}.wav", np.asarray(wav, np.float32), K.SAMPLE_RATE)
            (sub / "texts.json").write_text(json.dumps({"path": name, "texts": list(refs)}, indent=1))
        totals = {spec: WordErrors() for spec in asr}
        names: dict[str, str] = {}
        for i, (wav, ref) in enumerate(zip(wavs, refs)):
            heard = {}
            for spec in asr:
                hyp, names[spec] = transcribe_segments(wav, K.SAMPLE_RATE, spec)
                totals[spec] = totals[spec] + word_errors(ref, hyp)
                heard[names[spec]] = hyp
            row = {"text": ref, "heard": heard[names[asr[0]]], "heard_by_asr": heard}
            if seeds is not None:
                row["seed"] = seeds[i]
            if ref_mels is not None:
                gen = log_mel(torch.as_tensor(wav)).numpy()  # (T, 80)
                row["mcd"] = round(mcd_dtw(gen, ref_mels[i]), 3)
                mcds.append(row["mcd"])
            rows.append(row)
        return {"path": name, "wer": round(totals[asr[0]].wer, 4), "mcd": round(float(np.mean(mcds)), 3) if mcds else None,
                "backend": names[asr[0]], "wer_by_asr": {names[k]: round(v.wer, 4) for k, v in totals.items()},
                "sentences": rows}

    refs = [text for _, text, _, _ in items]
    rec_mels = [log_mel(torch.as_tensor(a)).numpy() for _, _, a, _ in items]  # (T, 80) each
    vocode = lambda mel: synth.vocoder(torch.as_tensor(mel)[None])[0].cpu().numpy()  # noqa: E731
    from avflow_cli.audio.vocoder import load_vocoder

    shipped = load_vocoder("student", device="cpu")  # the package's student before this voice's fine-tuning
    results = [
        score("recordings", [a for _, _, a, _ in items], refs, rec_mels),
        score("recordings → mel → vocoder (ceiling)", [vocode(m) for m in rec_mels], refs, rec_mels),
        score("recordings → mel → package student, not fine-tuned",
              [shipped(torch.as_tensor(m)[None])[0].cpu().numpy() for m in rec_mels], refs, rec_mels),
    ]
    true_tokens = []
    for _, _, audio, ali in items:
        duration = len(audio) / K.SAMPLE_RATE
        tok50 = tokens_from_transcript([{"text": ali["text"], "phones": ali["phones"]}], duration, None)
        true_tokens.append(resample_to_fps(tok50, K.TOKEN_RATE, int(np.floor(duration * K.FPS))).astype(np.float32))
    held = _sample_seeds(len(items), samples)  # (text index, seed), sample-major
    fresh = _sample_seeds(len(new), samples)
    true_wavs = [synth.synthesize_tokens(true_tokens[i], seed=seed).wav for i, seed in held]
    text_wavs = [synth.synthesize(refs[i], seed=seed).wav for i, seed in held]
    held_refs, held_mels, held_seeds = [refs[i] for i, _ in held], [rec_mels[i] for i, _ in held], [s for _, s in held]
    results.append(score("true tokens → AV-Flow → vocoder", true_wavs, held_refs, held_mels, held_seeds))
    results.append(score("text → t2t → AV-Flow → vocoder", text_wavs, held_refs, held_mels, held_seeds))
    new_result = score("text → t2t → AV-Flow → vocoder", [synth.synthesize(new[i], seed=seed).wav for i, seed in fresh],
                       [new[i] for i, _ in fresh], None, [s for _, s in fresh])
    table = [
        {"path": r["path"], "heldout_wer": r["wer"], "heldout_mcd": r["mcd"],
         "new_wer": new_result["wer"] if r["path"].startswith("text") else None,
         "heldout_wer_by_asr": r["wer_by_asr"],
         "new_wer_by_asr": new_result["wer_by_asr"] if r["path"].startswith("text") else None}
        for r in results
    ]
    return {"asr": f"{results[0]['backend']} (pause-segmented, as avflow eval)",
            "asr_all": list(results[0]["wer_by_asr"]), "heldout_prompts": len(items),
            "new_sentences": len(new), "samples": samples, "temperature": synth.temperature,
            "token_gain": synth.token_gain, "table": table, "heldout": results, "new": new_result,
            "components": synth.components}


def _sample_seeds(count: int, samples: int) -> list[tuple[int, int]]:
    """(text index, seed) of every sample: seed i + k · SAMPLE_SEED_STRIDE for sample k of text i."""
    return [(i, i + k * SAMPLE_SEED_STRIDE) for k in range(samples) for i in range(count)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avflow_cli.real_voice", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("package", help="copy a finished run into a model folder and write its README")
    p.add_argument("run", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--recipe", default="", help="the command and settings that made the run (README)")
    sub.add_parser("readme", help="rewrite a model folder's README (after editing nothing else)").add_argument(
        "model", type=Path)
    e = sub.add_parser("evaluate", help="WER/MCD on held-out prompts and new sentences; quality.json + README")
    e.add_argument("model", type=Path)
    e.add_argument("heldout", type=Path)
    e.add_argument("--out", type=Path, default=None, help="also write the result here")
    e.add_argument("--wavs", type=Path, default=None, help="write every scored waveform under this new folder")
    e.add_argument("--samples", type=int, default=1, help="how many times the model speaks each text (seeds i, "
                   f"i + {SAMPLE_SEED_STRIDE}, …); WER and MCD pool them (default 1)")
    e.add_argument("--asr", action="append", default=None, help="a recogniser (avflow eval --asr-backend names: "
                   "pocketsphinx, wav2vec2, whisper, whisper:DIR); repeat for more; the first is the headline "
                   "(default: auto)")
    args = parser.parse_args(argv)
    try:
        _run_command(args)
    except AvflowError as err:  # a user mistake: one line, no traceback
        raise SystemExit(f"error: {err}") from None


def _run_command(args: argparse.Namespace) -> None:
    if args.cmd == "package":
        dest = package(args.run, args.dest, args.recipe)
        print(f"{dest}: {_size(dest) / 1e6:.1f} MB")
        if _size(dest) > MAX_PACKAGE_BYTES:
            raise SystemExit(f"{dest}: larger than {MAX_PACKAGE_BYTES / 2**20:.0f} MB")
        return
    if args.cmd == "readme":
        write_readme(args.model)
        return
    result = evaluate(args.model, args.heldout, wav_dir=args.wavs, asr=tuple(args.asr or ("auto",)), samples=args.samples)
    text = json.dumps(result, indent=1) + "\n"
    (args.model / QUALITY).write_text(text)
    if args.out:
        args.out.write_text(text)
    write_readme(args.model)
    for row in result["table"]:
        print(f"{row['path']:45s} held-out WER {_fmt(row['heldout_wer'])}  MCD {_fmt(row['heldout_mcd'])}  "
              f"new WER {_fmt(row['new_wer'])}")


if __name__ == "__main__":
    main()
