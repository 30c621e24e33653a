"""`avflow import release` on a download tree in the authors' layout, with small random weights."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avflow_cli import release_import as R
from avflow_cli.cli.main import app
from avflow_cli.errors import InputFileError
from avflow_cli.fsutil import OUTPUT_MARKER

FIX = Path(__file__).resolve().parent / "fixtures"


def _tiny_bigvgan(folder: Path) -> None:
    """A BigVGAN release folder (config.json + {"generator": state}) with a tiny generator."""
    from avflow_cli.audio.bigvgan import build_bigvgan, generator_to_release_keys
    from avflow_cli.audio.hifigan import GeneratorConfig

    cfg = GeneratorConfig(
        upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4), upsample_initial_channel=32,
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),),
    )
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    state = generator_to_release_keys(build_bigvgan(cfg).state_dict())
    torch.save({"generator": state}, folder / "bigvgan_generator.pt")
    raw = dataclasses.asdict(cfg) | {"resblock": "1", "segment_size": 8192, "discriminators": ["mpd"]}
    (folder / "config.json").write_text(json.dumps(raw))
    torch.save({"mpd": {}}, folder / "bigvgan_discriminator_optimizer.pt")  # not needed, not copied


@pytest.fixture()
def download(tmp_path: Path) -> Path:
    """<download>/50h_dataset/{av_flow_ckpt_50h.pt, head_vae/, headpose/headpose_normstats/}, BigVGAN, T2T."""
    rel = FIX / "release"
    if not (rel / "av_flow_small.pt").is_file() or not (FIX / "t2t" / "state_dict.pth").is_file():
        pytest.skip("release fixtures of the models/t2t parts are not present")
    dl = tmp_path / "download"
    data = dl / "50h_dataset"
    (data / "head_vae").mkdir(parents=True)
    (data / "headpose" / "headpose_normstats").mkdir(parents=True)
    shutil.copy(rel / "av_flow_small.pt", data / "av_flow_ckpt_50h.pt")
    shutil.copy(rel / "head_vae_small.pt", data / "head_vae" / "iter-0500000.pt")
    for name in R.STATS_FILES:
        shutil.copy(rel / name, data / "headpose" / "headpose_normstats" / name)
    # the face decoder (+ its statistics and mesh), small, in the release's formats
    shutil.copytree(FIX / "codec_avatar" / "release" / "decoder", data / "decoder")
    shutil.copy(FIX / "codec_avatar" / "release" / "face_topo_small_neck.obj", data)
    # an Audio2Photoreal subject carries its own (4-d) head VAE: must not be picked
    (dl / "audio2photoreal" / "PXB184" / "head_vae").mkdir(parents=True)
    (dl / "audio2photoreal" / "PXB184" / "head_vae" / "iter-0500000.pt").write_bytes(b"other")
    _tiny_bigvgan(dl / R.VOCODER_NAME)
    shutil.copy(FIX / "t2t" / "state_dict.pth", dl / R.T2T_NAME)
    return dl


def test_import_release_end_to_end(download: Path, tmp_path: Path) -> None:
    from avflow_cli.models.registry import load_model

    models = tmp_path / "models"
    result = R.import_release(download, models)
    assert not result["skipped"] and result["notes"] == []
    assert set(result["parts"]) == {"avflow", "head_vae", "t2t", "vocoder", "avatar"}
    assert result["verified"]["vocoder"].startswith("bigvgan")
    assert result["parts"]["avatar"] == models / "avflow" / "avatar" and "12-d codes" in result["verified"]["avatar"]
    cfg = json.loads((models / "avflow" / "config.json").read_text())
    assert cfg["preset"] == "release"
    assert cfg["components"] == {"head_vae": "../headvae", "t2t": "../t2t", "vocoder": "../vocoder"}
    # the release's two files, plus the marker that lets a re-import replace the folder
    assert sorted(p.name for p in (models / "vocoder").iterdir()) == [OUTPUT_MARKER, "bigvgan_generator.pt", "config.json"]
    # the imported model computes exactly what the authors' module computed on the same inputs
    io = np.load(FIX / "release" / "av_flow_small_io.npz")
    model = load_model(models / "avflow")
    with torch.no_grad():
        v = model(torch.from_numpy(io["x"]), torch.from_numpy(io["t"]), torch.from_numpy(io["tokens"]))
    np.testing.assert_allclose(v.numpy(), io["v"], atol=1e-4)
    vae = json.loads((models / "headvae" / "config.json").read_text())
    stats = np.load(download / "50h_dataset" / "headpose" / "headpose_normstats" / "head_translation_mean.npy")
    np.testing.assert_allclose(vae["model"]["pose_mean"][4:], stats.reshape(-1), rtol=1e-6)
    again = R.import_release(download, models)
    assert again["skipped"]


def test_missing_and_broken_release_files(download: Path, tmp_path: Path) -> None:
    (download / R.T2T_NAME).unlink()
    shutil.rmtree(download / R.VOCODER_NAME)
    result = R.import_release(download, tmp_path / "m1", verify=False)
    assert set(result["parts"]) == {"avflow", "head_vae", "avatar"}
    assert any("text_to_tokens.pth" in n for n in result["notes"]) and any("vocoder" in n for n in result["notes"])
    ckpt = download / "50h_dataset" / "av_flow_ckpt_50h.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    with pytest.raises(InputFileError, match="av_flow_ckpt_50h.pt"):
        R.import_release(download, tmp_path / "m2")
    assert not (tmp_path / "m2").exists()  # nothing written before every part converted
    (download / "50h_dataset" / "headpose" / "headpose_normstats" / "head_qvec_std.npy").unlink()
    with pytest.raises(InputFileError, match="head_qvec_std.npy: file not found"):
        R.import_release(download, tmp_path / "m3")
    with pytest.raises(InputFileError, match="no av_flow_ckpt_50h.pt"):
        R.import_release(tmp_path / "m1", tmp_path / "m4")


def test_cli_import_release(download: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["import", "release", str(download), "-o", str(tmp_path / "models"), "--no-verify"])
    assert res.exit_code == 0, res.output
    assert "avflow" in res.output and (tmp_path / "models" / "release_import.json").is_file()
    res = CliRunner().invoke(app, ["import", "release", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_object_array_statistics_are_refused_without_unpickling(download: Path, tmp_path: Path) -> None:
    """A pickled object array in place of a statistics .npy: one line, nothing unpickled, nothing written."""
    stats = download / "50h_dataset" / "headpose" / "headpose_normstats" / "head_qvec_mean.npy"
    np.save(stats, np.array([{"payload": 1}] * 4, dtype=object), allow_pickle=True)
    res = CliRunner().invoke(app, ["import", "release", str(download), "-o", str(tmp_path / "models"), "--no-verify"])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "holds Python objects" in lines[0], res.output
    assert not (tmp_path / "models" / "head_vae").exists()
