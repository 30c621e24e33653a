"""The release's face decoder: avflow's loader against the authors' module (fixtures made with it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.render import avatar as A
from avflow_cli.render.camera import head_relative
from avflow_cli.render.decoder import CodecFaceDecoder, convert_release_decoder, infer_spec, load_release_decoder
from avflow_cli.render.obj import read_obj

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "codec_avatar"
TOL = 1e-5


@pytest.fixture()
def release_copy(tmp_path: Path) -> Path:
    """A writable copy of the release-layout decoder files."""
    dst = tmp_path / "50h_dataset"
    shutil.copytree(FIX / "release", dst)
    return dst


def _decoder(path: Path) -> CodecFaceDecoder:
    spec, state = load_release_decoder(path)
    model = CodecFaceDecoder(spec)
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_geometry_and_texture_match_the_authors_decoder() -> None:
    io = np.load(FIX / "release_decoder_io.npz")
    model = _decoder(FIX / "release" / "decoder" / "dec_params.pt")
    assert model.spec.code_dim == 12 and model.spec.num_vertices == 30 and model.spec.tex_size == 32
    assert model.spec.warp_channels == (256, 2, 2)
    with torch.no_grad():
        out = model(torch.from_numpy(io["z"]), torch.from_numpy(io["view"]))
    np.testing.assert_allclose(out["geom"].numpy(), io["geom"], atol=TOL, rtol=0)
    np.testing.assert_allclose(out["tex"].numpy(), io["tex"], atol=TOL * np.abs(io["tex"]).max(), rtol=0)
    assert np.abs(io["tex"]).max() > 50  # the texture is not trivially flat


def test_view_direction_and_camera_match_the_release_renderer() -> None:
    io = np.load(FIX / "release_decoder_io.npz")
    rel = head_relative(torch.from_numpy(io["headpose"]))
    np.testing.assert_allclose(rel["view"].numpy(), io["view"], atol=1e-6)
    np.testing.assert_allclose(rel["campos"].numpy(), io["campos"], atol=1e-3)
    np.testing.assert_allclose(rel["camrot"].numpy(), io["camrot"], atol=1e-6)


def test_avatar_decode_returns_the_renderers_millimetre_geometry() -> None:
    io = np.load(FIX / "release_decoder_io.npz")
    files = A.find_release_avatar_files(FIX / "release")
    assert files is not None
    avatar = A.import_release_avatar(files)
    dec = avatar.decode(torch.from_numpy(io["z"]), torch.from_numpy(io["headpose"]))
    np.testing.assert_allclose(dec["verts"].numpy(), io["geom_mm"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(dec["tex"].numpy(), io["tex"], atol=TOL * np.abs(io["tex"]).max(), rtol=0)


def test_audio2photoreal_body_checkpoint_face_decoder() -> None:
    """FaceDecoderFrontal inside a body checkpoint: no warp, the fixed frontal view."""
    io = np.load(FIX / "a2p_decoder_io.npz")
    model = _decoder(FIX / "a2p_body_dec_small.ckpt")
    assert model.spec.warp_channels == () and model.spec.fixed_view is not None
    np.testing.assert_allclose(model.spec.fixed_view, (0.1, -0.2, 0.97), atol=1e-7)
    with torch.no_grad():
        out = model(torch.from_numpy(io["z"]))
    np.testing.assert_allclose(out["geom"].numpy(), io["geom"], atol=TOL, rtol=0)
    np.testing.assert_allclose(out["tex"].numpy(), io["tex"], atol=TOL * np.abs(io["tex"]).max(), rtol=0)


def test_legacy_weight_norm_key_names_load_the_same() -> None:
    """The release's loader also maps `weight`/`g` onto `weight_v`/`weight_g` (TensorMappingHook)."""
    state = torch.load(FIX / "release" / "decoder" / "dec_params.pt", weights_only=True)
    legacy = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            legacy[key[: -len("_v")]] = value
        elif key.endswith(".weight_g"):
            legacy[key[: -len(".weight_g")] + ".g"] = value.flatten()
        else:
            legacy[key] = value
    _, ours = convert_release_decoder(state)
    _, old = convert_release_decoder(legacy)
    assert ours.keys() == old.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], old[key], rtol=0, atol=0)


def test_full_size_release_layout_is_recognised() -> None:
    """The release's Decoder() key/shape layout (meta tensors: no memory): 256-d, 7306 vertices."""
    m = "meta"
    state = {"bias": torch.empty(3, 1024, 1024, device=m)}

    def wn(prefix: str, v: tuple[int, ...], g: tuple[int, ...], bias: tuple[int, ...]) -> None:
        state[f"{prefix}.weight_v"] = torch.empty(v, device=m)
        state[f"{prefix}.weight_g"] = torch.empty(g, device=m)
        state[f"{prefix}.bias"] = torch.empty(bias, device=m)

    wn("encmod.0", (256, 256), (256, 1), (256,))
    wn("geommod.0", (3 * 7306, 256), (3 * 7306, 1), (3 * 7306,))
    wn("viewmod.0", (8, 3), (8, 1), (8,))
    wn("texmod2.0", (4096, 264), (4096, 1), (4096,))
    wn("warpmod2.0", (4096, 264), (4096, 1), (4096,))
    tex = (256, 256, 128, 128, 64, 64, 32, 8, 3)
    for i, (cin, cout) in enumerate(zip(tex[:-1], tex[1:])):
        side = 8 * 2**i
        wn(f"texmod.{2 * i}", (cin, cout, 4, 4), (1, cout, 1, 1), (cout, side, side))
    warp = (256, 256, 128, 128, 64, 64, 2)
    for i, (cin, cout) in enumerate(zip(warp[:-1], warp[1:])):
        wn(f"warpmod.{2 * i}", (cin, cout, 4, 4), (1, cout, 1, 1), (cout,))
    assert len(state) == 58
    spec = infer_spec(state)
    assert (spec.code_dim, spec.hidden_dim, spec.view_dim, spec.num_vertices) == (256, 256, 8, 7306)
    assert spec.tex_size == 1024 and spec.warp_size == 256
    with torch.device("meta"):
        model = CodecFaceDecoder(spec)
    assert sum(v.numel() for v in state.values()) == 23_981_203  # the authors' Decoder() count
    magnitudes = sum(v.numel() for k, v in state.items() if k.endswith("weight_g"))
    assert sum(p.numel() for p in model.parameters()) == 23_981_203 - magnitudes  # weight norm fused


def test_obj_reader_matches_the_authors_load_obj() -> None:
    io = np.load(FIX / "release_decoder_io.npz")
    topo = read_obj(FIX / "release" / "face_topo_small_neck.obj")
    np.testing.assert_array_equal(topo.v, io["obj_v"][:, :3])
    np.testing.assert_array_equal(topo.vt, io["obj_vt"][:, :2])
    np.testing.assert_array_equal(topo.vi, io["obj_vi"])
    np.testing.assert_array_equal(topo.vti, io["obj_vti"])


def test_obj_reader_fans_polygons_and_refuses_faces_without_uvs(tmp_path: Path) -> None:
    quad = tmp_path / "quad.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nf 1/1 2/2 3/3 4/4\n")
    topo = read_obj(quad)
    assert topo.vi.tolist() == [[0, 1, 2], [0, 2, 3]] and topo.vti.tolist() == [[0, 1, 2], [0, 2, 3]]
    bare = tmp_path / "bare.obj"
    bare.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n")
    with pytest.raises(InputFileError, match="no texture index"):
        read_obj(bare)
    with pytest.raises(InputFileError, match="not found"):
        read_obj(tmp_path / "missing.obj")


def test_avatar_folder_round_trip_renders_identically(tmp_path: Path) -> None:
    files = A.find_release_avatar_files(FIX / "release")
    assert files is not None
    avatar = A.import_release_avatar(files)
    avatar.save(tmp_path / "avatar")
    again = A.CodecAvatar.load(tmp_path / "avatar")
    io = np.load(FIX / "release_decoder_io.npz")
    z, pose = torch.from_numpy(io["z"]), torch.from_numpy(io["headpose"])
    pose[:, 2, 3] = 400.0  # close enough for the 30-vertex patch to cover many pixels
    a = avatar.render(z, pose)
    b = again.render(z, pose)
    assert a.shape == (3, 1024, 1024, 3) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert (a.float().sum(dim=-1) > 0).sum() > 1000  # the patch is drawn
    assert A.find_avatar(tmp_path) == tmp_path / "avatar"


# --- bad input: one line, nothing written ------------------------------------------------------
def test_obj_with_another_vertex_count_is_refused(release_copy: Path) -> None:
    obj = release_copy / "face_topo_small_neck.obj"
    lines = obj.read_text().splitlines()
    kept = [ln for ln in lines if not ln.startswith("v ")][:0] + [ln for ln in lines if ln.startswith("v ")][:-2]
    kept += [ln for ln in lines if ln.startswith("vt")] + [ln for ln in lines if ln.startswith("f ")][:10]
    obj.write_text("\n".join(kept) + "\n")
    files = A.find_release_avatar_files(release_copy)
    assert files is not None
    with pytest.raises(InputFileError, match="28 vertices but the decoder dec_params.pt outputs 30") as err:
        A.import_release_avatar(files)
    assert "\n" not in str(err.value)


def test_vertex_mean_of_another_size_and_bad_variance_are_refused(release_copy: Path) -> None:
    files = A.find_release_avatar_files(release_copy)
    assert files is not None
    np.zeros((31, 3), np.float32).tofile(files.vert_mean)
    with pytest.raises(InputFileError, match="31 vertices but the decoder outputs 30"):
        A.import_release_avatar(files)
    np.zeros(31 * 3 + 1, np.float32).tofile(files.vert_mean)
    with pytest.raises(InputFileError, match="not a whole number of xyz vertices"):
        A.import_release_avatar(files)
    shutil.copy(FIX / "release" / "decoder" / "vert_mean.bin", files.vert_mean)
    files.vert_var.write_text("-1\n")
    with pytest.raises(InputFileError, match="one positive variance"):
        A.import_release_avatar(files)


def test_missing_companion_files_are_named(release_copy: Path) -> None:
    (release_copy / "decoder" / "vert_var.txt").unlink()
    with pytest.raises(InputFileError, match="vert_var.txt: file not found"):
        A.find_release_avatar_files(release_copy)
    shutil.copy(FIX / "release" / "decoder" / "vert_var.txt", release_copy / "decoder")
    (release_copy / "face_topo_small_neck.obj").unlink()
    with pytest.raises(InputFileError, match="no face_topo_small_neck.obj"):
        A.find_release_avatar_files(release_copy)


def test_foreign_or_damaged_weights_are_one_line_errors(tmp_path: Path) -> None:
    state = torch.load(FIX / "release" / "decoder" / "dec_params.pt", weights_only=True)
    extra = dict(state, **{"texmod.0.extra": torch.zeros(1)})
    with pytest.raises(InputFileError, match="does not have"):
        convert_release_decoder(extra)
    broken = {k: v for k, v in state.items() if not k.startswith("texmod.2.")}
    with pytest.raises(InputFileError, match="numbered"):
        convert_release_decoder(broken)
    wrong = dict(state, **{"texmod.0.bias": torch.zeros(2, 9, 9)})
    with pytest.raises(InputFileError, match="wrong shape"):
        convert_release_decoder(wrong)
    junk = tmp_path / "dec_params.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError, match="not a readable PyTorch weight file"):
        load_release_decoder(junk)
    torch.save({"encmod.0.weight": torch.zeros(2, 2)}, junk)
    with pytest.raises(InputFileError, match="not a codec-avatar face decoder"):
        load_release_decoder(junk)


def test_codes_of_the_wrong_width_are_refused() -> None:
    files = A.find_release_avatar_files(FIX / "release")
    assert files is not None
    avatar = A.import_release_avatar(files)
    with pytest.raises(AvflowError, match="16-d but the avatar's decoder takes 12-d"):
        avatar.decode(torch.zeros(2, 16), torch.eye(4)[:3].expand(2, 3, 4))
