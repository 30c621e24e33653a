#!/usr/bin/env bash
# The fusion ablation (AV-Flow Table 1): train the four ways of joining the audio and visual
# DiT stacks on the same shards with the same budget, evaluate each, print one table.
#
#   pipelines/ablation.sh SHARDS OUT [extra `avflow train avflow` options, e.g. --set train.batch_size=4]
#   pipelines/ablation.sh            (no arguments: the demo's DEMO_DIR/prep/shards → DEMO_DIR/ablation)
#
# Variants (config key model.fusion): highway (the paper's), separate (no fusion), shared (one
# stack on the concatenated streams), cascade (audio DiT, then visual DiT on the generated mel).
# Every variant gets the same preset, steps, seed and data: OUT/VARIANT/ is its run directory,
# OUT/VARIANT/eval/SPLIT/ its evaluation, OUT/ablation.md the comparison (also printed).
# Re-running skips finished work: training resumes from its last checkpoint, generation and
# scoring skip finished clips.
# Environment (defaults): AVFLOW (avflow), PRESET (tiny), STEPS (300), VARIANTS ("highway
# separate shared cascade"), SPLIT (test), DEVICE (auto), SEED (0), HEAD_VAE (the one the shards
# record), EVAL_OPTS (extra `avflow eval` options, e.g. "--no-wer --plots 0"), DEMO_DIR (demo_out).
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2; }
DEMO_DIR=${DEMO_DIR:-demo_out}
if [ $# -eq 0 ]; then  # the built-in demo: `make demo` leaves its shards and head VAE here
    [ -f "$DEMO_DIR/prep/shards/index.json" ] || { echo "no demo shards in $DEMO_DIR/prep/shards: run \`make demo\` first, or give SHARDS OUT" >&2; usage; }
    set -- "$DEMO_DIR/prep/shards" "$DEMO_DIR/ablation"
    [ -z "${HEAD_VAE:-}" ] && [ -f "$DEMO_DIR/models/headvae/config.json" ] && HEAD_VAE="$DEMO_DIR/models/headvae"
fi
[ $# -lt 2 ] && usage
SHARDS=$1
OUT=$2
shift 2
if [ -z "${AVFLOW:-}" ]; then  # the venv's avflow when it is not on PATH (as under `make`)
    if command -v avflow >/dev/null 2>&1; then AVFLOW=avflow; else AVFLOW="$(dirname "$0")/../.venv/bin/avflow"; fi
fi
PRESET=${PRESET:-tiny}
STEPS=${STEPS:-300}
VARIANTS=${VARIANTS:-highway separate shared cascade}
SPLIT=${SPLIT:-test}
DEVICE=${DEVICE:-auto}
SEED=${SEED:-0}
HEAD_VAE=${HEAD_VAE:-}
EVAL_OPTS=${EVAL_OPTS:-}

mkdir -p "$OUT"
runs=()
for variant in $VARIANTS; do
    run="$OUT/$variant"
    resume=()
    [ -f "$run/train_state.pt" ] && resume=(--resume)
    echo "== $variant: train ($PRESET preset, $STEPS steps) =="
    start=$(date +%s)
    $AVFLOW train avflow --data "$SHARDS" --out "$run" --preset "$PRESET" --steps "$STEPS" \
        --set model.fusion="$variant" --set train.seed="$SEED" --device "$DEVICE" \
        ${HEAD_VAE:+--head-vae "$HEAD_VAE"} "${resume[@]}" "$@"
    echo "$variant: training took $(( $(date +%s) - start )) s (wall clock, this invocation)"
    echo "== $variant: evaluate ($SPLIT) =="
    # shellcheck disable=SC2086  # EVAL_OPTS is a list of options
    $AVFLOW eval --model "$run" --data "$SHARDS" --split "$SPLIT" --seed "$SEED" --device "$DEVICE" \
        --name "$variant" $EVAL_OPTS
    runs+=("$run")
done

echo "== comparison: preset $PRESET, $STEPS steps per variant, seed $SEED, split $SPLIT =="
$AVFLOW eval compare "${runs[@]}" --split "$SPLIT" --out "$OUT/ablation.md"
