"""The AV-Flow authors' released files → avflow model directories (``avflow import release``).

Model work, not data preparation (the release's *dataset* is ``data/importers/avflow50h.py``): an
orchestration above the packages it draws on — the checkpoint converters of ``models/``
(``convert_release``, ``text2tokens``), the BigVGAN loader of ``audio/`` and the face decoder of
``render/`` — like ``synth.py`` (docs/INTERFACES.md, "Package layering").

Where the release keeps its files (facebookresearch/av_flow README and ``recipes/
flow_matching_audiovisual.py:DEFAULT_CONFIG``, with ``{data}`` = the 50 h dataset folder)::

    <download>/
        50h_dataset/                                  {data}
            av_flow_ckpt_50h.pt                       "included in the downloaded dataset"
            head_vae/iter-0500000.pt                  trainer.head_vae_ckpt_path
            decoder/{dec_params.pt, vert_mean.bin, vert_var.txt}, face_topo_small_neck.obj
                                                      the face decoder (learn/trainer.py) → MODELS/avflow/avatar
            headpose/headpose_normstats/head_{qvec,translation}_{mean,std}.npy   (learn/trainer.py)
            bigvgan_base_22khz_80band_finetuned/      optional fine-tuned vocoder (README)
        bigvgan_base_22khz_80band/                    trainer.vocoder_ckpt_path = {data}/../…
            config.json, bigvgan_generator.pt         (BigVGAN.from_pretrained folder)
        text_to_tokens.pth                            {asset_dir}/../text_to_tokens.pth

Files are found by name anywhere under the given folder (the exact nesting varies between
downloads); the head VAE and its statistics are taken from the dataset folder that holds
``headpose/headpose_normstats`` (Audio2Photoreal subjects ship their own ``head_vae`` too).
Everything is converted and checked in memory first (strict key/shape checks of the model
helpers' converters); only then is each output directory written atomically:
``MODELS/avflow`` (release preset, its normalisation constants, ``components`` pointing at the
siblings), ``MODELS/headvae``, ``MODELS/t2t`` (when ``text_to_tokens.pth`` is present) and
``MODELS/vocoder`` (the BigVGAN folder's ``config.json`` + ``bigvgan_generator.pt``). Finally
every directory is loaded back through the same loaders ``synth`` uses.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avflow_cli.errors import InputFileError
from avflow_cli.fsutil import atomic_dir, atomic_path

AVFLOW_CKPT_NAMES = ("av_flow_ckpt_50h.pt", "av_flow_ckpt_50h.pth")
HEAD_VAE_NAME = "iter-0500000.pt"
STATS_DIR = Path("headpose") / "headpose_normstats"
STATS_FILES = ("head_qvec_mean.npy", "head_qvec_std.npy", "head_translation_mean.npy", "head_translation_std.npy")
VOCODER_NAME = "bigvgan_base_22khz_80band"
VOCODER_FINETUNED_NAME = "bigvgan_base_22khz_80band_finetuned"
VOCODER_FILES = ("config.json", "bigvgan_generator.pt")
T2T_NAME = "text_to_tokens.pth"
OUTPUT_DIRS = {"avflow": "avflow", "head_vae": "headvae", "t2t": "t2t", "vocoder": "vocoder"}
PROVENANCE = "release_import.json"


@dataclass
class ReleaseFiles:
    """The located release files; optional parts are None when the download lacks them."""

    avflow_ckpt: Path
    head_vae_ckpt: Path
    stats_dir: Path
    vocoder_dir: Path | None
    t2t_ckpt: Path | None
    notes: list[str] = field(default_factory=list)
    avatar: Any = None  # avflow_cli.render.avatar.ReleaseAvatarFiles: the face decoder, when shipped


def _unique(found: list[Path], what: str, src: Path) -> Path | None:
    found = sorted(set(found))
    if len(found) > 1:
        listing = ", ".join(str(p.relative_to(src)) for p in found[:4])
        raise InputFileError(src, f"{len(found)} candidates for {what} ({listing}); point at one download folder")
    return found[0] if found else None


def find_release_files(src: str | Path, *, finetuned_vocoder: bool = False) -> ReleaseFiles:
    """Locate every released file under ``src`` (see the module docstring)."""
    src = Path(src)
    if not src.is_dir():
        raise InputFileError(src, "not a directory")
    ckpt = _unique([p for n in AVFLOW_CKPT_NAMES for p in src.rglob(n) if p.is_file()], AVFLOW_CKPT_NAMES[0], src)
    if ckpt is None:
        raise InputFileError(src, f"no {AVFLOW_CKPT_NAMES[0]} under it (the release ships it in the 50 h dataset download)")
    stats_dirs = [p for p in src.rglob(STATS_DIR.name) if p.is_dir() and p.parent.name == STATS_DIR.parent.name]
    stats = _unique(stats_dirs, str(STATS_DIR), src)
    if stats is None:
        raise InputFileError(src, f"no {STATS_DIR}/ folder under it (the head-pose normalisation statistics)")
    for name in STATS_FILES:
        if not (stats / name).is_file():
            raise InputFileError(stats / name, "file not found (one of the four head-pose statistics files)")
    data_root = stats.parent.parent
    head_vae = data_root / "head_vae" / HEAD_VAE_NAME
    if not head_vae.is_file():
        others = sorted((data_root / "head_vae").glob("iter-*.pt"))
        if not others:
            raise InputFileError(head_vae, "file not found (the head-pose VAE of the 50 h dataset)")
        head_vae = others[-1]
    notes: list[str] = []
    if head_vae.name != HEAD_VAE_NAME:
        notes.append(f"head VAE: using {head_vae.name} (no {HEAD_VAE_NAME})")
    voc_name = VOCODER_FINETUNED_NAME if finetuned_vocoder else VOCODER_NAME
    vocoders = [p for p in src.rglob(voc_name) if p.is_dir() and all((p / f).is_file() for f in VOCODER_FILES)]
    vocoder = _unique(vocoders, voc_name, src)
    if vocoder is None:
        notes.append(f"vocoder: no {voc_name}/ with {' + '.join(VOCODER_FILES)}; synth will use its fallback vocoder")
    t2t = _unique([p for p in src.rglob(T2T_NAME) if p.is_file()], T2T_NAME, src)
    if t2t is None:
        notes.append(f"text-to-tokens: no {T2T_NAME}; synth from text needs --t2t DIR (or `avflow train t2t`)")
    from avflow_cli.render.avatar import find_release_avatar_files

    avatar = find_release_avatar_files(data_root)  # {data}/decoder/* + face_topo_small_neck.obj
    if avatar is None:
        notes.append("face decoder: no decoder/dec_params.pt (+ vert_mean.bin, vert_var.txt, face_topo_small_neck.obj); previews show plots")
    return ReleaseFiles(ckpt, head_vae, stats, vocoder, t2t, notes, avatar)


def _outputs_done(models: Path, files: ReleaseFiles) -> bool:
    need = [models / OUTPUT_DIRS["avflow"] / "config.json", models / OUTPUT_DIRS["head_vae"] / "config.json", models / PROVENANCE]
    if files.t2t_ckpt is not None:
        need.append(models / OUTPUT_DIRS["t2t"] / "config.json")
    if files.vocoder_dir is not None:
        need += [models / OUTPUT_DIRS["vocoder"] / f for f in VOCODER_FILES]
    if files.avatar is not None:
        need.append(models / OUTPUT_DIRS["avflow"] / "avatar" / "config.json")
    return all(p.is_file() for p in need)


def verify_model_dirs(models: str | Path, parts: dict[str, Path]) -> dict[str, str]:
    """Load every written directory with the loaders ``synth`` uses; returns part → description."""
    from avflow_cli.models.registry import load_model

    out: dict[str, str] = {}
    model = load_model(parts["avflow"], kind="avflow")
    out["avflow"] = f"{sum(p.numel() for p in model.parameters()):,} parameters, preset {model.preset}"
    del model
    vae = load_model(parts["head_vae"], kind="headvae")
    out["head_vae"] = f"{sum(p.numel() for p in vae.parameters()):,} parameters"
    if "t2t" in parts:
        from avflow_cli.models.text2tokens import load_t2t

        t2t = load_t2t(parts["t2t"])
        out["t2t"] = f"{sum(p.numel() for p in t2t.parameters()):,} parameters"
    if "vocoder" in parts:
        from avflow_cli.audio.vocoder import load_vocoder

        out["vocoder"] = load_vocoder("bigvgan", checkpoint=parts["vocoder"]).name
    if "avatar" in parts:
        from avflow_cli.render.avatar import CodecAvatar

        out["avatar"] = CodecAvatar.load(parts["avatar"]).describe()
    return out


def import_release(
    src: str | Path,
    models: str | Path,
    *,
    finetuned_vocoder: bool = False,
    force: bool = False,
    verify: bool = True,
) -> dict[str, Any]:
    """Convert the release under ``src`` into model directories under ``models``.

    Returns {"parts": {part: Path}, "notes": [...], "skipped": bool, "verified": {part: str}}.
    """
    from avflow_cli.audio.bigvgan import load_bigvgan
    from avflow_cli.models.convert_release import convert_avflow_checkpoint, convert_headvae_checkpoint
    from avflow_cli.models.normalize import Normalizer
    from avflow_cli.models.registry import save_model_dir

    models = Path(models)
    files = find_release_files(src, finetuned_vocoder=finetuned_vocoder)
    parts = {"avflow": models / OUTPUT_DIRS["avflow"], "head_vae": models / OUTPUT_DIRS["head_vae"]}
    if files.t2t_ckpt is not None:
        parts["t2t"] = models / OUTPUT_DIRS["t2t"]
    if files.vocoder_dir is not None:
        parts["vocoder"] = models / OUTPUT_DIRS["vocoder"]
    if files.avatar is not None:
        parts["avatar"] = parts["avflow"] / "avatar"  # inside the model directory: synth previews find it there
    if _outputs_done(models, files) and not force:
        return {"parts": parts, "notes": files.notes, "skipped": True, "verified": {}}

    # 1. convert and check everything in memory: a bad file leaves no output behind
    cfg, state = convert_avflow_checkpoint(files.avflow_ckpt)
    vcfg, vstate = convert_headvae_checkpoint(files.head_vae_ckpt, files.stats_dir)
    if vcfg.input_dim != 7:
        raise InputFileError(files.head_vae_ckpt, f"head VAE takes {vcfg.input_dim}-d poses; the 50 h release's takes 7 (quaternion + translation)")
    t2t_model = None
    if files.t2t_ckpt is not None:
        from avflow_cli.models.text2tokens import TextToTokens, convert_t2t_checkpoint

        tcfg, tstate = convert_t2t_checkpoint(files.t2t_ckpt)
        t2t_model = TextToTokens(tcfg)
        t2t_model.load_state_dict(tstate, strict=True)
    if files.vocoder_dir is not None:
        load_bigvgan(files.vocoder_dir)  # strict load: refuses a broken or foreign folder
    avatar = None
    if files.avatar is not None:
        from avflow_cli.render.avatar import import_release_avatar

        avatar = import_release_avatar(files.avatar)  # strict: code width, vertex counts, statistics
        if avatar.code_dim != cfg.face_dim:
            raise InputFileError(files.avatar.weights, f"the face decoder takes {avatar.code_dim}-d codes but the AV-Flow checkpoint generates {cfg.face_dim}-d face codes")

    # 2. write each directory atomically
    components = {"head_vae": f"../{OUTPUT_DIRS['head_vae']}"}
    if "t2t" in parts:
        components["t2t"] = f"../{OUTPUT_DIRS['t2t']}"
    if "vocoder" in parts:
        components["vocoder"] = f"../{OUTPUT_DIRS['vocoder']}"
    with atomic_dir(parts["head_vae"], kind="model", force=force) as tmp:
        save_model_dir(tmp, "headvae", vcfg, vstate, None, preset="release")
    if t2t_model is not None:
        from avflow_cli.models.text2tokens import save_t2t

        with atomic_dir(parts["t2t"], kind="model", force=force) as tmp:
            save_t2t(tmp, t2t_model)
    if files.vocoder_dir is not None:
        with atomic_dir(parts["vocoder"], kind="model", force=force) as tmp:
            for name in VOCODER_FILES:
                shutil.copyfile(files.vocoder_dir / name, tmp / name)
    norm = Normalizer.for_config(cfg).to_json()
    with atomic_dir(parts["avflow"], kind="model", force=force) as tmp:
        save_model_dir(tmp, "avflow", cfg, state, norm, preset="release", components=components)
        if avatar is not None:
            avatar.save(tmp / "avatar")
    provenance = {
        "source": str(Path(src).resolve()),
        "files": {
            "avflow": str(files.avflow_ckpt),
            "head_vae": str(files.head_vae_ckpt),
            "head_stats": str(files.stats_dir),
            "vocoder": str(files.vocoder_dir) if files.vocoder_dir else None,
            "t2t": str(files.t2t_ckpt) if files.t2t_ckpt else None,
            "avatar": str(files.avatar.weights.parent) if files.avatar else None,
        },
        "outputs": {k: str(v) for k, v in parts.items()},
        "notes": files.notes,
    }
    with atomic_path(models / PROVENANCE) as tmp:  # written last: marks the import finished
        tmp.write_text(json.dumps(provenance, indent=1))

    verified = verify_model_dirs(models, parts) if verify else {}
    return {"parts": parts, "notes": files.notes, "skipped": False, "verified": verified}

