"""Token source: recorded by prep, by both trainers and by import; a mismatched pair is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.token_source import (
    bind_token_source,
    check_pair,
    compatible,
    read_ljspeech_source,
    record_ljspeech_source,
)
from avflow_cli.errors import AvflowError
from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig, avflow_preset
from avflow_cli.models.normalize import Normalizer, model_streams
from avflow_cli.models.registry import save_model_dir
from avflow_cli.models.text2tokens.config import preset as t2t_preset
from avflow_cli.models.text2tokens.io import save_t2t
from avflow_cli.models.text2tokens.model import TextToTokens

W2V = "wav2vec2 (wav2vec2_asr_base_960h)"
ALIGN = "alignment (alignment)"


def test_kinds_are_compared_and_unknown_is_compatible() -> None:
    assert compatible(W2V, "wav2vec2 (another checkpoint)") and not compatible(W2V, ALIGN)
    assert compatible("", ALIGN) and compatible("precomputed (precomputed)", W2V)
    assert not compatible(f"{ALIGN} + {W2V}", ALIGN)
    with pytest.raises(AvflowError, match="token mismatch.*wav2vec2.*alignment"):
        check_pair(W2V, ALIGN, "a", "b")
    assert avflow_preset("release")[0].token_source == W2V == t2t_preset("release").token_source


def test_ljspeech_folder_records_its_source_and_refuses_mixing(tmp_path: Path) -> None:
    assert read_ljspeech_source(tmp_path) == ""
    record_ljspeech_source(tmp_path, "alignment", None)
    assert read_ljspeech_source(tmp_path) == ALIGN
    with pytest.raises(AvflowError, match="holds alignment"):
        record_ljspeech_source(tmp_path, "wav2vec2", "wav2vec2_asr_base_960h")


def test_avflow_config_takes_the_shards_source(synthetic_shards: Path) -> None:
    index = ShardIndex.load(synthetic_shards)
    index.extractors["tokens"] = ALIGN
    cfg = avflow_preset("release")[0]  # a preset's value never beats the data of a fresh run
    bind_token_source(cfg, index, synthetic_shards, resumed=False)
    assert cfg.token_source == ALIGN
    cfg.token_source = W2V
    with pytest.raises(AvflowError, match="trained on wav2vec2"):
        bind_token_source(cfg, index, synthetic_shards, resumed=True)


def test_t2t_training_records_the_folder_source(tmp_path: Path) -> None:
    from avflow_cli.data.synthetic_ljspeech import make_synthetic_ljspeech
    from avflow_cli.models.text2tokens.io import load_t2t
    from avflow_cli.train.t2t import train_t2t

    data = make_synthetic_ljspeech(tmp_path / "lj", n=8)
    record_ljspeech_source(data, "alignment", None)
    train_t2t(data, tmp_path / "t2t", preset="tiny", overrides={"train.steps": "1", "train.batch_size": "2",
              "train.val_every": "0", "train.sample_every": "1000", "train.ckpt_every": "1"},
              device="cpu", show_progress=False)
    assert load_t2t(tmp_path / "t2t").config.token_source == ALIGN


def _pair(root: Path, avflow_source: str, t2t_source: str) -> Path:
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, steps=2, token_source=avflow_source)
    dims = {"face": 4, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    save_model_dir(root / "avflow", "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset="tiny")
    t2t = TextToTokens(t2t_preset("tiny", token_source=t2t_source))
    save_t2t(root / "t2t", t2t)
    return root / "avflow"


def test_synthesizer_refuses_a_mismatched_pair(tmp_path: Path) -> None:
    from avflow_cli.synth import Synthesizer

    model = _pair(tmp_path / "bad", W2V, ALIGN)
    synth = Synthesizer(model, vocoder="griffinlim", device="cpu")  # tokens-in users never load text-to-tokens
    with pytest.raises(AvflowError, match="token mismatch"):
        synth.load_t2t()  # checked when text-to-tokens is loaded: the first text, or up front by `synth`
    with pytest.raises(AvflowError, match="token mismatch"):
        synth.synthesize("hi")
    result = CliRunner().invoke(app, ["synth", "hi", "-o", str(tmp_path / "out"), "--model", str(model),
                                      "--vocoder", "griffinlim", "--device", "cpu", "--no-preview"])
    assert result.exit_code == 2 and "token mismatch" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    Synthesizer(_pair(tmp_path / "good", ALIGN, ALIGN), vocoder="griffinlim", device="cpu").load_t2t()  # a matched pair loads
    old = _pair(tmp_path / "old", "", ALIGN)  # a config from before the record: loads, cannot tell
    obj = json.loads((old / "config.json").read_text())
    del obj["model"]["token_source"]
    (old / "config.json").write_text(json.dumps(obj))
    assert Synthesizer(old, vocoder="griffinlim", device="cpu").model.config.token_source == ""


def test_demo_uses_one_token_source_for_both_models(tmp_path: Path) -> None:
    from avflow_cli.cli.demo import demo_stages
    from avflow_cli.demo import DemoPaths, DemoSettings

    stages = {s.name: s.args for s in demo_stages(DemoPaths(tmp_path), DemoSettings())}
    prep, t2t = stages["prep"], stages["t2t-tokens"]
    assert prep[prep.index("--tokens-source") + 1] == t2t[t2t.index("--source") + 1] == "alignment"


def test_demo_trains_with_guidance_and_ends_with_a_conversation(tmp_path: Path) -> None:
    import subprocess
    import sys

    from avflow_cli.cli.demo import demo_stages
    from avflow_cli.demo import DemoPaths, DemoSettings
    from avflow_cli.models.config import load_override_file

    paths = DemoPaths(tmp_path)
    stages = demo_stages(paths, DemoSettings())
    av = next(s.args for s in stages if s.name == "avflow")
    config = load_override_file(av[av.index("--config") + 1])  # a packaged config, resolved by name
    assert config["model.participant_tokens"] is True and config["model.participant_visual_dim"] > 0
    assert f"model.temperature={DemoSettings().avflow_temperature}" in av  # sampled as the shipped demo model
    last = next(s for s in stages if s.name == "conversation")  # then the comparison with the shipped model
    assert stages.index(last) == len(stages) - 2 and stages[-1].name == "compare"
    assert last.call is not None and last.output == paths.conversation / "speech.wav"
    # the library's demo module drives no CLI (issue 14: no import of cli/ from a library module)
    code = "import sys, avflow_cli.demo; print(any(m.startswith('avflow_cli.cli') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_training_records_the_participant_face_source(tmp_path: Path) -> None:
    from avflow_cli.data.synthetic import make_synthetic_shards
    from avflow_cli.train.avflow import avflow_configs

    shards = tmp_path / "shards"
    make_synthetic_shards(shards, num_clips=3, frames=40, participant=True)
    index = json.loads((shards / "index.json").read_text())
    assert "p_smirk" in index["dims"]
    index.setdefault("extractors", {})["p_smirk"] = "demo avatar (session participant_smirk.npy)"
    (shards / "index.json").write_text(json.dumps(index))
    cfg, *_ = avflow_configs(shards, tmp_path / "run", "tiny", "dyadic", None, False)
    assert cfg.participant_face_source == "demo avatar (session participant_smirk.npy)"
    plain, *_ = avflow_configs(shards, tmp_path / "run2", "tiny", None, None, False)
    assert plain.participant_face_source == ""  # no visual guidance: nothing to record
