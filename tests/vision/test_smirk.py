"""SMIRK encoder: architecture and key layout of the release, checkpoint errors, feature layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avflow_cli.errors import InputFileError
from avflow_cli.vision import smirk as S


@pytest.fixture(scope="module")
def encoder() -> S.SmirkEncoder:
    torch.manual_seed(0)
    model = S.SmirkEncoder().eval()
    # random BN statistics so that a key mix-up would change outputs
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def release_ckpt(encoder: S.SmirkEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights saved exactly like SMIRK's base_trainer.save_model (encoder + generator keys)."""
    state = S.release_state_dict(encoder)
    state["smirk_generator.encoder1.enc1conv1.weight"] = torch.zeros(32, 6, 3, 3)
    path = tmp_path_factory.mktemp("smirk") / "SMIRK_em1.pt"
    torch.save(state, path)
    return path


def test_backbones_match_timm_parameter_counts() -> None:
    # timm lists tf_mobilenetv3_{large,small}_minimal_100 at 3.92 M / 2.04 M parameters including
    # conv_head (C→1280 / 1024) and the 1000-way classifier, which features_only drops.
    large = sum(p.numel() for p in S.MobileNetV3Minimal("large_minimal").parameters())
    small = sum(p.numel() for p in S.MobileNetV3Minimal("small_minimal").parameters())
    assert large + (960 * 1280 + 1280) + (1280 * 1000 + 1000) == 3_924_288
    assert small + (576 * 1024 + 1024) + (1024 * 1000 + 1000) == 2_044_736


def test_release_key_names(encoder: S.SmirkEncoder) -> None:
    keys = S.release_state_dict(encoder)
    for key, shape in {
        "smirk_encoder.pose_encoder.encoder.conv_stem.weight": (16, 3, 3, 3),
        "smirk_encoder.pose_encoder.encoder.blocks.5.0.conv.weight": (576, 96, 1, 1),
        "smirk_encoder.pose_encoder.pose_cam_layers.0.weight": (6, 576),
        "smirk_encoder.shape_encoder.shape_layers.0.weight": (300, 960),
        "smirk_encoder.expression_encoder.encoder.blocks.0.0.conv_dw.weight": (16, 1, 3, 3),
        "smirk_encoder.expression_encoder.encoder.blocks.1.0.conv_pw.weight": (64, 16, 1, 1),
        "smirk_encoder.expression_encoder.encoder.blocks.3.1.conv_pw.weight": (200, 80, 1, 1),
        "smirk_encoder.expression_encoder.encoder.blocks.3.2.bn1.running_var": (184,),
        "smirk_encoder.expression_encoder.encoder.blocks.6.0.bn1.num_batches_tracked": (),
        "smirk_encoder.expression_encoder.expression_layers.0.weight": (55, 960),
    }.items():
        assert tuple(keys[key].shape) == shape, key
    assert encoder.pose_encoder.encoder.blocks[0][0].has_skip is False  # stride 2
    assert encoder.shape_encoder.encoder.blocks[0][0].has_skip is True  # 16 → 16, stride 1


def test_same_padding_is_tensorflow_style() -> None:
    torch.manual_seed(1)
    conv = S.SameConv2d(3, 4, 3, stride=2, bias=False)
    x = torch.randn(1, 3, 224, 224)
    # TF SAME for 224, k3, s2: total pad 1 → 0 before, 1 after
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    out = conv(x)
    assert out.shape == (1, 4, 112, 112)
    torch.testing.assert_close(out, ref)
    assert conv(torch.randn(1, 3, 7, 7)).shape[-1] == math.ceil(7 / 2)


def test_backbone_matches_timm_numerically() -> None:
    import timm  # a dev dependency (pyproject [dev]): the cross-check always runs
    for name, ours in (("tf_mobilenetv3_small_minimal_100", "small_minimal"), ("tf_mobilenetv3_large_minimal_100", "large_minimal")):
        ref = timm.create_model(name, pretrained=False, features_only=True).eval()
        model = S.MobileNetV3Minimal(ours).eval()
        model.load_state_dict(ref.state_dict(), strict=True)
        x = torch.rand(1, 3, 224, 224)
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref(x)[-1])


def test_load_release_checkpoint_round_trip(encoder: S.SmirkEncoder, release_ckpt: Path) -> None:
    loaded = S.load_smirk_encoder(release_ckpt)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        a, b = encoder(x), loaded(x)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert not loaded.training


def test_wrong_architecture_is_explicit(encoder: S.SmirkEncoder, tmp_path: Path) -> None:
    state = S.release_state_dict(encoder)
    del state["smirk_encoder.pose_encoder.encoder.blocks.2.1.conv_dw.weight"]
    state["smirk_encoder.pose_encoder.encoder.conv_stem.weight"] = torch.zeros(32, 3, 3, 3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(InputFileError, match=r"1 missing .*blocks\.2\.1\.conv_dw.*wrong shape"):
        S.load_smirk_encoder(path)


def test_not_smirk_truncated_and_missing(release_ckpt: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(release_ckpt.read_bytes()[: 200_000])
    with pytest.raises(InputFileError, match="truncated"):
        S.load_smirk_encoder(cut)
    other = tmp_path / "other.pt"
    torch.save({"model.weight": torch.zeros(3)}, other)
    with pytest.raises(InputFileError, match="no SMIRK encoder weights"):
        S.load_smirk_encoder(other)
    with pytest.raises(InputFileError, match="not found"):
        S.load_smirk_encoder(tmp_path / "absent.pt")


def test_feature_layouts_follow_smirk_heads() -> None:
    p = torch.linspace(-1.0, 1.0, 55).repeat(3, 1)  # raw expression-layer output
    head = S.ExpressionEncoder()
    with torch.no_grad():
        head.expression_layers[0].weight.zero_()
        head.expression_layers[0].bias.copy_(p[0])
        out = head(torch.rand(3, 3, 224, 224))
    assert out["eyelid_params"].min() >= 0 and out["eyelid_params"].max() <= 1
    assert out["jaw_params"][0, 0] == max(p[0, 52].item(), 0.0)
    assert out["jaw_params"][:, 1:].abs().max() <= S.JAW_SIDE_LIMIT + 1e-7
    outputs = {**out, "pose_params": torch.full((3, 3), 0.3)}
    paper = S.smirk_features(outputs, "paper")
    release = S.smirk_features(outputs, "release")
    assert paper.shape == (3, 56) and release.shape == (3, 58)
    torch.testing.assert_close(paper[:, :50], p[:, :50])
    torch.testing.assert_close(paper[:, 50:53], out["jaw_params"])
    torch.testing.assert_close(paper[:, 53:], outputs["pose_params"])
    torch.testing.assert_close(release[:, :53], paper[:, :53])
    torch.testing.assert_close(release[:, 53:55], out["eyelid_params"])
    torch.testing.assert_close(release[:, 55:], outputs["pose_params"])


def test_axis_angle_to_rotmat() -> None:
    rot = S.axis_angle_to_rotmat(np.array([[0.0, 0.0, np.pi / 2], [0.0, 0.0, 0.0], [0.3, -0.2, 0.1]]))
    np.testing.assert_allclose(rot[0] @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rot[1], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rot[2] @ rot[2].T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(rot[2]), 1.0)
