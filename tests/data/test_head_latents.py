"""`data.head_latents`: head latents into shards through the HeadEncoder seam (no model import needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from avflow_cli.constants import WEIGHTS_NAME
from avflow_cli.data.head_latents import HeadEncoder, encode_head_into_shards, vae_fingerprint
from avflow_cli.data.schema import ShardIndex
from avflow_cli.errors import AvflowError

PROJ = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)  # a fixed linear "VAE": pose (T, 7) → (T, 3)


def _encoder(tag: str = "lin-a", calls: list[int] | None = None) -> HeadEncoder:
    def encode(pose: np.ndarray) -> np.ndarray:
        if calls is not None:
            calls.append(len(pose))
        return pose @ PROJ

    return HeadEncoder(encode, 3, tag, f"/models/{tag}")


@pytest.fixture()
def shards(synthetic_shards: Path, tmp_path: Path) -> Path:
    out = tmp_path / "shards"
    shutil.copytree(synthetic_shards, out)
    return out


def test_encodes_every_clip_records_stats_and_skips_done_shards(shards: Path) -> None:
    calls: list[int] = []
    counts = encode_head_into_shards(shards, _encoder(calls=calls))
    index = ShardIndex.load(shards)
    n_shards = len({c.shard for c in index.clips})
    assert counts == {"encoded": n_shards, "skipped": 0} and len(calls) == len(index.clips)
    train_rows = []
    for clip in index.clips:
        with h5py.File(shards / clip.shard) as f:
            head, pose = f[clip.id]["head"][:], f[clip.id]["head_pose"][:]
            assert f.attrs["head_vae"] == "lin-a"
        np.testing.assert_allclose(head, pose @ PROJ, rtol=1e-6)  # exactly what the encoder returned
        if clip.split == "train":
            train_rows.append(head)
    rows = np.concatenate(train_rows).astype(np.float64)
    assert index.dims["head"] == 3 and index.config["head_vae"] == "/models/lin-a"
    assert index.extractors["head"] == "headvae:lin-a"
    np.testing.assert_allclose(index.stats["head"].mean, rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(index.stats["head"].std, rows.std(0) + 1e-5, rtol=1e-4)

    again = encode_head_into_shards(shards, _encoder(calls=calls))
    assert again == {"encoded": 0, "skipped": n_shards} and len(calls) == len(index.clips)  # nothing re-encoded
    assert encode_head_into_shards(shards, _encoder(), force=True)["encoded"] == n_shards
    assert encode_head_into_shards(shards, _encoder("lin-b"))["encoded"] == n_shards  # another VAE: re-encode


def test_encoder_of_wrong_width_fails_and_leaves_shards_untouched(shards: Path) -> None:
    bad = HeadEncoder(lambda pose: pose @ PROJ, 4, "bad", "/models/bad")  # claims 4-d, gives 3-d
    before = {p.name: p.read_bytes() for p in shards.iterdir() if p.is_file()}  # shards + index.json
    with pytest.raises(AvflowError, match=r"/models/bad: encoded .* shape \(\d+, 3\), expected \(\d+, 4\)"):
        encode_head_into_shards(shards, bad)
    assert {p.name: p.read_bytes() for p in shards.iterdir() if p.is_file()} == before  # no temporaries either


def test_of_vae_takes_a_loaded_model_and_fingerprints_its_weights(tmp_path: Path) -> None:
    class Cfg:
        latent_dim = 3

    class FakeVAE:
        config = Cfg()

        def encode_mean(self, pose: np.ndarray) -> np.ndarray:
            return pose[:, :3]

    (tmp_path / WEIGHTS_NAME).write_bytes(b"weights one")
    enc = HeadEncoder.of_vae(FakeVAE(), tmp_path)
    assert enc.latent_dim == 3 and enc.source == str(tmp_path.resolve())
    assert enc.tag == vae_fingerprint(tmp_path) and len(enc.tag) == 16
    (tmp_path / WEIGHTS_NAME).write_bytes(b"weights two")
    assert vae_fingerprint(tmp_path) != enc.tag  # other weights, other tag: shards get re-encoded
