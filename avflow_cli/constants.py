"""Rates and dimensions every part of avflow agrees on (docs/ARCHITECTURE.md §1).

This module is the single source of truth: import from here, never repeat the numbers.
Letters used in shape comments across the package: B batch, T frames at ``FPS``,
F face-code dim, C condition dim, N audio samples.
"""

from __future__ import annotations

# --- audio / mel (BigVGAN 22 kHz, 80-band recipe) ---------------------------------------------
SAMPLE_RATE = 22050  # vocoder and mel sample rate (Hz)
N_FFT = 1024
HOP_LENGTH = 256
WIN_LENGTH = 1024
N_MELS = 80
MEL_FMIN = 0.0
MEL_FMAX = 8000.0
MEL_LOG_FLOOR = 1e-5  # log(clamp(mel, MEL_LOG_FLOOR))
MEL_PAD = (N_FFT - HOP_LENGTH) // 2  # reflect padding on each side, no centering

# --- the model's frame rate: every stream is resampled to this ------------------------------------
FPS = SAMPLE_RATE / HOP_LENGTH  # 86.1328125 Hz (the paper's "86 fps")
# The release hard-codes a rounded value; kept only to reproduce its frame counts exactly.
RELEASE_FPS = 86.13281230

# --- capture audio (dyadic recordings) -------------------------------------------------------
CAPTURE_SAMPLE_RATE = 48000
ACTOR_CHANNEL = 0
PARTICIPANT_CHANNEL = 1

# --- input tokens: Wav2Vec2 ASR base-960h character logits -------------------------------------
TOKEN_SAMPLE_RATE = 16000
TOKEN_HOP = 320  # wav2vec2 conv stack stride
TOKEN_RATE = TOKEN_SAMPLE_RATE / TOKEN_HOP  # 50 Hz
# torchaudio's WAV2VEC2_ASR_BASE_960H label order; index 0 is the CTC blank, "|" the word boundary.
TOKEN_LABELS: tuple[str, ...] = (
    "-", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F",
    "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z",
)
TOKEN_DIM = len(TOKEN_LABELS)  # 29
TOKEN_BLANK = 0
TOKEN_WORD_BOUNDARY = 1

# --- face, head, participant ------------------------------------------------------------------
FACE_RATE = 30.0  # Audio2Photoreal / demo capture rate of face codes and head pose
CODEC_FACE_CODE_DIM = 256  # Audio2Photoreal / release codec-avatar expression codes (the model reads F from the data)
HEAD_POSE_DIM = 7  # unit quaternion (w, x, y, z) + translation (x, y, z)
HEAD_LATENT_DIM = 8  # head-pose VAE latent
SMIRK_DIM = 56  # expression 50 + jaw 3 + head rotation 3 (paper)
SMIRK_EXPRESSION_DIM = 50
SMIRK_JAW_DIM = 3
SMIRK_ROTATION_DIM = 3
RELEASE_SMIRK_DIM = 58  # the release's two SMIRK files concatenated (docs/release_format.md §7)

# --- segments -----------------------------------------------------------------------------------
SEGMENT_SECONDS = 20.0  # paper
SEGMENT_FRAMES = int(SEGMENT_SECONDS * FPS)  # 1722
RELEASE_SEGMENT_FRAMES = 345  # 4 s, the release's training segment
RELEASE_MAX_FRAMES = 1725  # the release truncates synthesis to 5 segments

# --- x layout: [face F | head latent 8 | mel 80] ; cond layout: [tokens | p_tokens | p_smirk] --
STREAM_ORDER_X: tuple[str, ...] = ("face", "head", "mel")
STREAM_ORDER_COND: tuple[str, ...] = ("tokens", "p_tokens", "p_smirk")

# --- files and folders ------------------------------------------------------------------------------
DEMO_MODEL_DIR = "demo_out/models/avflow"  # the demo model `make demo` builds (relative to the working dir)
WEIGHTS_NAME = "model.safetensors"  # the weights file of every model directory (and avatar folder)
PRETRAINED_MODEL = "pretrained"  # --model value naming the demo model shipped inside the package
SYNTH_OUTPUT_KIND = "synth"  # the marker kind of synth output folders (fsutil.check_output_dir)
# index.json extractors["p_smirk"] of demo-corpus sessions (demo-avatar features), recorded in AV-Flow configs
DEMO_FACE_SOURCE = "demo avatar (session participant_smirk.npy)"
