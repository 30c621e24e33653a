#!/usr/bin/env bash
# Train the built-in real-voice model (avflow_cli/resources/real_voice/) on real recordings: the
# Asterisk core prompts, one professional voice actor ("Allison", CC-BY-SA-3.0), with their texts.
#
#   pipelines/real_voice.sh [OUT]          (default OUT: real_voice_out)
#
# Data: $AVFLOW_REAL_DATA/asterisk (`make real-data`; default real_data/ at the repository root).
# 1. `avflow prep import asterisk`: G.722 (16 kHz) prompts resampled to 22 050 Hz, force-aligned
#    with pocketsphinx; doubtful prompts skipped with the reason (OUT/voice/import.json); the
#    prompts in pipelines/real_voice_heldout.txt go to OUT/voice/heldout/ and are never trained on.
# 2. `avflow demo corpus --actor-speech`: the demo generator with the real recordings as the
#    actor's speech: the avatar's face and head follow their forced-aligned phones (the
#    participant stays flite, so the model listens like the demo model).
# 3. prep (alignment tokens), a tiny head-pose VAE, text-to-tokens on the recordings with their
#    alignment tokens (optionally plus T2T_FLITE_MINUTES of flite demo sentences: more words to
#    spell), its durations calibrated to her pace on her prompts, `small` AV-Flow with --config dyadic (constant lr to AV_STEPS1, then a
#    cosine tail to AV_STEPS), the package's student vocoder fine-tuned on the real recordings
#    (targets = the recordings themselves), then fine-tuned again with ground-truth-aligned pairs
#    (this AV-Flow's own mels of each training recording's alignment tokens → the recording, as
#    HiFi-GAN's authors fine-tune on their TTS model's mels), then the folder for the package
#    (OUT/package).
# Re-running skips finished stages and resumes interrupted ones; raise AV_STEPS1/AV_STEPS/T2T_STEPS
# to continue training to a larger budget. Prints the CPU time of each stage and in total.
# Environment: AVFLOW (avflow), PYTHON, DEVICE (cpu), MINUTES (corpus minutes, 40), T2T_FLITE_MINUTES
# (flite demo sentences text-to-tokens also learns from; 0, the shipped recipe: her prompts only; 30 trades
# held-out prompts for new sentences, docs/quality.md), T2T_STEPS
# (6000), AV_STEPS1 (4000), AV_STEPS (9000), VOC_STEPS (500), GTA_STEPS (2000; 0: no GTA stage), TOKEN_GAINS
# (1,1.5,2,2.5: AV-Flow token gains measured on the dev sentences, the best stored; 1: none),
# THREADS (OMP threads, 2), INIT (a model whose weights start AV-Flow, `--init`: e.g. pretrained, the demo model;
# default none: random weights; with INIT=pretrained the recipe of docs/quality.md used AV_STEPS1=0 AV_STEPS=4000), HEAD_VAE (a head-pose VAE folder to reuse instead of training one: the head motion comes from the demo
# generator, so the demo model's avflow_cli/resources/pretrained_demo/headvae fits), ASR (the
# recognisers of the evaluation; default pocketsphinx, plus whisper when faster-whisper is installed), SAMPLES
# (how many times the evaluation speaks every text, 3).
# The defaults are the shipped folder's budgets (its README has the exact history: it was trained
# in several continuations, so its learning-rate schedule had more than one cosine tail).
set -euo pipefail

OUT=${1:-real_voice_out}
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${AVFLOW:-}" ]; then
    if command -v avflow >/dev/null; then AVFLOW=avflow; else AVFLOW="$HERE/../.venv/bin/avflow"; fi
fi
PYTHON=${PYTHON:-$(dirname "$AVFLOW")/python}
[ -x "$PYTHON" ] || PYTHON=python
DEVICE=${DEVICE:-cpu}
MINUTES=${MINUTES:-40}
T2T_STEPS=${T2T_STEPS:-6000}
T2T_FLITE_MINUTES=${T2T_FLITE_MINUTES:-0}  # minutes of flite demo sentences text-to-tokens also learns to spell from (docs/quality.md)
AV_STEPS1=${AV_STEPS1:-4000}
AV_STEPS=${AV_STEPS:-9000}
VOC_STEPS=${VOC_STEPS:-500}
GTA_STEPS=${GTA_STEPS:-2000}
TOKEN_GAINS=${TOKEN_GAINS:-1,1.5,2,2.5}  # AV-Flow token gains to measure on the dev sentences; the best is stored
GTA_VOCODER_DIR=vocoder_gta/student  # avflow_cli/real_voice.py GTA_VOCODER: what the package carries when present
SAMPLES=${SAMPLES:-3}  # the evaluation speaks every text this many times (one sample's WER moves ±0.05 with the seed)
INIT=${INIT-}  # AV-Flow's starting weights: random (the shipped recipe), or a model, e.g. INIT=pretrained (docs/quality.md)
export OMP_NUM_THREADS=${THREADS:-2}
DATA=${AVFLOW_REAL_DATA:-$HERE/../real_data}/asterisk
M=$OUT/models
mkdir -p "$OUT"

cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat; }  # this shell + its finished children
stage() {  # stage NAME COMMAND…: run, then log the wall and CPU time it took (OUT/cpu_time.tsv)
    local t0 s0=$SECONDS
    t0=$(cpu_ticks)
    "${@:2}"
    awk -v name="$1" -v wall=$((SECONDS - s0)) -v t0="$t0" -v t1="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%s\t%d s wall\t%.0f s CPU\n", name, wall, (t1 - t0) / hz}' | tee -a "$OUT/cpu_time.tsv"
}

[ -f "$OUT/voice/import.json" ] || stage import $AVFLOW prep import asterisk "$DATA" "$OUT/voice" \
    --hold-out "$HERE/real_voice_heldout.txt"
[ -f "$OUT/corpus/corpus.json" ] || stage corpus $AVFLOW demo corpus --out "$OUT/corpus" --minutes "$MINUTES" \
    --seed 0 --actor-speech "$OUT/voice"
[ -f "$OUT/prep/shards/index.json" ] || stage prep $AVFLOW prep all "$OUT/corpus" "$OUT/prep" --tokens-source alignment
if [ -n "${HEAD_VAE:-}" ] && [ ! -f "$M/headvae/model.safetensors" ]; then  # reuse one (same head generator)
    mkdir -p "$M" && cp -r "$HEAD_VAE" "$M/headvae"
    stage encode-head $AVFLOW prep encode-head "$OUT/prep/shards" --head-vae "$M/headvae"
fi
[ -f "$M/headvae/model.safetensors" ] || {
    stage headvae $AVFLOW train headvae --data "$OUT/prep/shards" --out "$M/headvae" --preset tiny --steps 300 --device "$DEVICE"
    stage encode-head $AVFLOW prep encode-head "$OUT/prep/shards" --head-vae "$M/headvae"
}
stage tokens $AVFLOW prep tokens "$OUT/voice" --source alignment  # skips finished files

done_at() { cat "$1" 2>/dev/null || echo 0; }  # steps a finished phase was run to
# Text-to-tokens learns to spell from her prompts (plus, with T2T_FLITE_MINUTES, that much of the flite
# demo corpus: alignment tokens come from phones, so they are the same for any voice and the flite
# sentences teach words she never said; its pace is then calibrated on her prompts alone).
T2T_DATA="$OUT/voice"
if [ "$T2T_FLITE_MINUTES" != 0 ]; then
    [ -f "$OUT/flite/corpus.json" ] || stage flite-corpus $AVFLOW demo corpus --out "$OUT/flite" \
        --minutes "$T2T_FLITE_MINUTES" --seed 0
    [ -f "$OUT/flite/ljspeech/tokens/source.json" ] || stage flite-tokens $AVFLOW prep tokens "$OUT/flite/ljspeech" --source alignment
    T2T_DATA="$OUT/t2t_data"
    if [ ! -f "$T2T_DATA/metadata.csv" ]; then  # both folders, by symbolic links (ids must not collide)
        dup=$(cut -d'|' -f1 "$OUT/voice/metadata.csv" "$OUT/flite/ljspeech/metadata.csv" | sort | uniq -d | head -1)
        [ -z "$dup" ] || { echo "error: utterance id $dup is in both $OUT/voice and $OUT/flite/ljspeech" >&2; exit 1; }
        cmp -s "$OUT/voice/tokens/source.json" "$OUT/flite/ljspeech/tokens/source.json" \
            || { echo "error: $OUT/voice and $OUT/flite/ljspeech hold different token kinds" >&2; exit 1; }
        mkdir -p "$T2T_DATA.part/tokens"
        cp "$OUT/voice/tokens/source.json" "$T2T_DATA.part/tokens/"
        for dir in "$OUT/voice" "$OUT/flite/ljspeech"; do
            abs=$(cd "$dir" && pwd)
            for f in "$abs"/tokens/*.npy; do ln -sf "$f" "$T2T_DATA.part/tokens/"; done
        done
        cat "$OUT/voice/metadata.csv" "$OUT/flite/ljspeech/metadata.csv" > "$T2T_DATA.part/metadata.csv"
        rm -rf "$T2T_DATA" && mv "$T2T_DATA.part" "$T2T_DATA"
    fi
fi
T2T=(train t2t --data "$T2T_DATA" --out "$M/t2t" --preset tiny --device "$DEVICE")
if [ "$(done_at "$M/t2t/steps.done")" -lt "$T2T_STEPS" ]; then
    RESUME=(); [ -f "$M/t2t/train_state.pt" ] && RESUME=(--resume)
    stage t2t $AVFLOW "${T2T[@]}" --steps "$T2T_STEPS" "${RESUME[@]}"
    [ "$T2T_DATA" = "$OUT/voice" ] || stage t2t-pace $AVFLOW train calibrate-t2t "$M/t2t" --data "$OUT/voice"
    echo "$T2T_STEPS" > "$M/t2t/steps.done"
fi

AV=(train avflow --data "$OUT/prep/shards" --out "$M/avflow" --preset small --config dyadic
    --device "$DEVICE" --head-vae "$M/headvae")
# continue the run in M/avflow, or start it (from INIT's weights when INIT is set)
start_or_resume() {  # sets START (an array, so an INIT path may hold spaces)
    START=(); if [ -f "$M/avflow/train_state.pt" ]; then START=(--resume); elif [ -n "$INIT" ]; then START=(--init "$INIT"); fi
}
# constant lr (also when continuing after a tail), unless a tail already ran past AV_STEPS1
if [ "$(done_at "$M/avflow/phase1.done")" -lt "$AV_STEPS1" ] && [ "$(done_at "$M/avflow/phase2.done")" -lt "$AV_STEPS1" ]; then
    start_or_resume
    stage avflow-constant $AVFLOW "${AV[@]}" --steps "$AV_STEPS1" "${START[@]}" --set train.lr_schedule=constant
    echo "$AV_STEPS1" > "$M/avflow/phase1.done"
fi
if [ "$(done_at "$M/avflow/phase2.done")" -lt "$AV_STEPS" ]; then  # cosine tail
    start_or_resume
    # token gain 1 until it is measured again below: the GTA pairs are made from the model as trained
    stage avflow-cosine $AVFLOW "${AV[@]}" --steps "$AV_STEPS" "${START[@]}" --set train.lr_schedule=cosine \
        --set train.lr_final=0.05 --set model.temperature=0.4 --set model.token_gain=1
    echo "$AV_STEPS" > "$M/avflow/phase2.done"
fi

# The vocoder: the package's distilled student, fine-tuned on the real recordings (their mels in,
# the recordings out), so it learns this voice and its band (G.722: nothing above 7 kHz).
resume_flag() { [ -f "$1/checkpoint.pt" ] && echo --resume || true; }
if [ "$(done_at "$OUT/vocoder/steps.done")" -lt "$VOC_STEPS" ]; then
    stage vocoder $AVFLOW train vocoder --out "$OUT/vocoder" --init "$HERE/../avflow_cli/resources/vocoder_student" \
        --data "$OUT/voice/wavs" --targets speech --steps "$VOC_STEPS" --lr 3e-4 --no-evaluate \
        $(resume_flag "$OUT/vocoder")
    echo "$VOC_STEPS" > "$OUT/vocoder/steps.done"
fi

# GTA: the fine-tuned vocoder again, on the recordings plus this AV-Flow's mels of their tokens
# (two temperatures each). Made again from scratch when AV-Flow has trained further since.
if [ "$GTA_STEPS" -gt 0 ]; then
    GTA_FROM="avflow steps $(done_at "$M/avflow/phase2.done")"
    [ "$(cat "$OUT/vocoder_gta.from" 2>/dev/null)" = "$GTA_FROM" ] || rm -rf "$OUT/vocoder_gta"
    echo "$GTA_FROM" > "$OUT/vocoder_gta.from"
    if [ "$(done_at "$OUT/vocoder_gta.done")" -lt "$GTA_STEPS" ] || [ ! -d "$OUT/vocoder_gta" ]; then
        stage vocoder-gta $AVFLOW train vocoder --out "$OUT/vocoder_gta" --init "$OUT/vocoder/student" \
            --data "$OUT/voice/wavs" --targets speech --gta-model "$M/avflow" --gta-tokens "$OUT/voice/tokens" \
            --steps "$GTA_STEPS" --lr 3e-4 --no-evaluate $(resume_flag "$OUT/vocoder_gta")
        echo "$GTA_STEPS" > "$OUT/vocoder_gta.done"
    fi
fi

# every WER by two recognisers when the whisper extra is installed (ASR="pocketsphinx whisper:DIR" to choose)
if [ -z "${ASR:-}" ]; then
    ASR=pocketsphinx
    if "$PYTHON" -c "import faster_whisper" 2>/dev/null; then ASR="pocketsphinx whisper"
    else echo "note: WER by pocketsphinx only (pip install 'avflow[whisper]' adds Whisper as the second recogniser)"; fi
fi
ASR_FLAGS=(); for a in $ASR; do ASR_FLAGS+=(--asr "$a"); done

# AV-Flow's token gain (model.token_gain), chosen by WER on the dev probe sentences through the vocoder
# the package will carry (docs/quality.md "Token gain"); measured again when AV-Flow, the vocoder or
# the candidates change. TOKEN_GAINS=1 keeps the model as trained.
VOC_DIR="$OUT/vocoder/student"; [ -f "$OUT/$GTA_VOCODER_DIR/model.safetensors" ] && VOC_DIR="$OUT/$GTA_VOCODER_DIR"
GAIN_FROM="avflow steps $(done_at "$M/avflow/phase2.done"); vocoder $VOC_DIR $(cat "$OUT/vocoder_gta.done" 2>/dev/null || true); gains $TOKEN_GAINS; asr $ASR"
if [ "$(cat "$M/avflow/token_gain.from" 2>/dev/null)" != "$GAIN_FROM" ]; then
    stage token-gain $AVFLOW train token-gain "$M/avflow" --gains "$TOKEN_GAINS" --samples "$SAMPLES" \
        --vocoder student --vocoder-checkpoint "$VOC_DIR" "${ASR_FLAGS[@]}"
    echo "$GAIN_FROM" > "$M/avflow/token_gain.from"
fi

RECIPE="MINUTES=$MINUTES T2T_STEPS=$T2T_STEPS T2T_FLITE_MINUTES=$T2T_FLITE_MINUTES AV_STEPS1=$AV_STEPS1 AV_STEPS=$AV_STEPS VOC_STEPS=$VOC_STEPS GTA_STEPS=$GTA_STEPS TOKEN_GAINS=$TOKEN_GAINS INIT=$INIT"
RECIPE="$RECIPE${HEAD_VAE:+ HEAD_VAE=$HEAD_VAE} pipelines/real_voice.sh OUT"
stage package "$PYTHON" -m avflow_cli.real_voice package "$OUT" "$OUT/package" --recipe "$RECIPE"
stage evaluate "$PYTHON" -m avflow_cli.real_voice evaluate "$OUT/package" "$OUT/voice/heldout" \
    --out "$OUT/quality.json" --wavs "$OUT/eval_wavs_$(date +%Y%m%d%H%M%S)" --samples "$SAMPLES" "${ASR_FLAGS[@]}"
awk -F'\t' '{gsub(/ s CPU/, "", $3); s += $3} END {printf "total CPU time: %.0f s (%.1f h)\n", s, s / 3600}' "$OUT/cpu_time.tsv"
