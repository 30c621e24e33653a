#!/usr/bin/env bash
# Reproduce the pretrained demo model shipped in avflow_cli/resources/pretrained_demo/ (the one
# every command uses unless another model is named with --model or $AVFLOW_MODEL; `--model pretrained`
# names it). The shipped files are exactly what one run of this script made (their README: commit,
# stage times, loss curve); after a new run, copy the parts and record the new sha256 lines in the
# READMEs (tests/test_shipped_checksums.py).
#
#   pipelines/pretrained_demo.sh [OUT]          (default OUT: demo_pretrained)
#
# The exact commands that trained the shipped model: a 30-minute demo corpus (seed 0), shards
# with alignment tokens (letters + phone sounds), a tiny head-pose VAE (300 steps), tiny
# text-to-tokens (3000 steps; durations calibrated at its end), and `small` AV-Flow with --config dyadic: 4000 steps at constant
# lr, then resumed to 9000 with a cosine tail, recording sampling temperature 0.4 (docs/quality.md).
# Then the student vocoder: distilled from HiFi-GAN (5000 steps; skipped when STUDENT_INIT names a
# distilled student, e.g. the package's), fine-tuned 1000 steps on speech targets plus
# ground-truth-aligned mels of this AV-Flow model (240 Harvard sentences). On the shared 2-core
# CPU (2026-12-07): 1 h 39 min in all — text-to-tokens 15 min and AV-Flow 75 min (1 thread, ≈ 2
# steps/s) with the 35-minute distillation beside them, then 6 min of fine-tuning; on a GPU, minutes
# (DEVICE=cuda). Then it probes the result (ten held-out everyday sentences) and prints WER and lip F1.
# The distillation needs nothing from the model stages, so it runs beside them in the background
# (1 thread; the model stages get the other cores) and the fine-tuning waits for both; its log is
# OUT/vocoder_distill.log. Stage start and end times go to OUT/stages.tsv.
# Re-running skips finished stages. Environment: AVFLOW (avflow), DEVICE (cpu), PYTHON (python),
# STUDENT_INIT (a distilled student folder to fine-tune instead of distilling one),
# DISTILL_THREADS (1).
set -euo pipefail

OUT=${1:-demo_pretrained}
if [ -z "${AVFLOW:-}" ]; then  # the venv's avflow when it is not on PATH (as under `make`)
    if command -v avflow >/dev/null; then AVFLOW=avflow; else AVFLOW="$(dirname "$0")/../.venv/bin/avflow"; fi
fi
PYTHON=${PYTHON:-$(dirname "$AVFLOW")/python}
[ -x "$PYTHON" ] || PYTHON=python
DEVICE=${DEVICE:-cpu}
M=$OUT/models
mkdir -p "$OUT"
stamp() { printf '%s\t%s\n' "$(date -u +%FT%TZ)" "$1" >> "$OUT/stages.tsv"; }
stamp "start $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown-commit)"

resume_flag() { [ -f "$1/checkpoint.pt" ] && echo --resume || true; }  # an interrupted vocoder run continues
INIT=${STUDENT_INIT:-$OUT/vocoder_distill/student}
DISTILL_PID=
if [ ! -f "$INIT/model.safetensors" ]; then
    DISTILL_THREADS=${DISTILL_THREADS:-1}
    CORES=$(nproc 2>/dev/null || echo 2)
    ( stamp "distill begin"
      OMP_NUM_THREADS=$DISTILL_THREADS $AVFLOW train vocoder --out "$OUT/vocoder_distill" --steps 5000 \
          --sentences-per-voice 50 --no-evaluate $(resume_flag "$OUT/vocoder_distill")
      stamp "distill end" ) > "$OUT/vocoder_distill.log" 2>&1 &
    DISTILL_PID=$!
    trap 'if [ -n "$DISTILL_PID" ]; then pkill -P "$DISTILL_PID" 2>/dev/null; kill "$DISTILL_PID" 2>/dev/null; fi; true' EXIT
    # the model stages take the cores the distillation leaves
    export OMP_NUM_THREADS=$(( CORES > DISTILL_THREADS ? CORES - DISTILL_THREADS : 1 ))
fi

[ -f "$OUT/corpus/corpus.json" ] || $AVFLOW demo corpus --out "$OUT/corpus" --minutes 30 --seed 0
[ -f "$OUT/prep/shards/index.json" ] || $AVFLOW prep all "$OUT/corpus" "$OUT/prep" --tokens-source alignment
# a stage is finished when its marker exists (weights are saved along the way, so they do not say it)
resume_run() { [ -f "$1/train_state.pt" ] && echo --resume || true; }  # an interrupted training run continues
[ -f "$M/headvae.done" ] || {
    $AVFLOW train headvae --data "$OUT/prep/shards" --out "$M/headvae" --preset tiny --steps 300 --device "$DEVICE" \
        $(resume_run "$M/headvae")
    $AVFLOW prep encode-head "$OUT/prep/shards" --head-vae "$M/headvae"
    touch "$M/headvae.done"
}
[ -d "$OUT/corpus/ljspeech/tokens" ] || $AVFLOW prep tokens "$OUT/corpus/ljspeech" --source alignment
[ -f "$M/t2t.done" ] || {
    $AVFLOW train t2t --data "$OUT/corpus/ljspeech" --out "$M/t2t" --preset tiny --steps 3000 --device "$DEVICE" \
        $(resume_run "$M/t2t")
    touch "$M/t2t.done"
}
AV=(train avflow --data "$OUT/prep/shards" --out "$M/avflow" --preset small --config dyadic
    --device "$DEVICE" --head-vae "$M/headvae")
if [ ! -f "$M/avflow/phase1.done" ]; then  # constant lr to 4000 steps, once
    RESUME=(); [ -f "$M/avflow/train_state.pt" ] && RESUME=(--resume)
    $AVFLOW "${AV[@]}" --steps 4000 "${RESUME[@]}"
    touch "$M/avflow/phase1.done"
fi
$AVFLOW "${AV[@]}" --steps 9000 --resume --set train.lr_schedule=cosine --set train.lr_final=0.05 \
    --set model.temperature=0.4

stamp "model stages end"
if [ -n "$DISTILL_PID" ]; then
    wait "$DISTILL_PID" || { echo "distillation failed: see $OUT/vocoder_distill.log" >&2; exit 1; }
    DISTILL_PID=
    unset OMP_NUM_THREADS
fi
[ -f "$OUT/vocoder/student/model.safetensors" ] || \
    $AVFLOW train vocoder --out "$OUT/vocoder" --init "$INIT" --targets speech --sentences-per-voice 60 \
        --gta-model "$M/avflow" --gta-sentences 240 --steps 1000 --lr 3e-4 $(resume_flag "$OUT/vocoder")
stamp "vocoder fine-tuning end"
"$PYTHON" -m avflow_cli.metrics.probe "$M/avflow" --t2t "$M/t2t" --head-vae "$M/headvae" \
    --vocoder student --vocoder-checkpoint "$OUT/vocoder/student"
stamp "end"
