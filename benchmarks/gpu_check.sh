#!/usr/bin/env bash
# Everything the CUDA path needs checked, in one run on one GPU (≤ 8 minutes: the item limits add up
# to 460 s), printed as tables.
#
#   bash benchmarks/gpu_check.sh [PYTHON]        (run from the repository root; PYTHON default .venv/bin/python)
#
# Items (each under its own time limit; a failing item prints its error and the rest still run):
#   1. environment: GPU, driver, torch/CUDA versions
#   2. the CUDA-marked tests (pytest -m gpu)
#   3. training steps/s, MFU (of the GPU's bf16 peak) and peak memory of `base`, 16 × 1722 frames,
#      bf16 autocast, eager and torch.compile (benchmarks/train_speed.py)
#   4. sampling 20 s of `base` output with 8 Euler steps: eager fp32/bf16 and compiled with CUDA
#      graphs (benchmarks/sample_speed.py --sampling; goal ≤ 20 ms on an H100), plus its floor table
#   5. text → speech + motion latency, one sentence, random `base` AV-Flow + tiny text-to-tokens,
#      HiFi-GAN vs the student vocoder (benchmarks/synth_speed.py --device cuda)
#   6. a 1-GPU torchrun smoke run: `avflow train avflow` on synthetic shards, bf16, 30 steps, then
#      a --resume to 40 steps
# A summary line per item (ok / FAILED / TIMEOUT with seconds) closes the output.
# DRY_RUN=1 runs the same items on the CPU with the tiny preset (checks the script, not the GPU).
set -u
PY=${1:-.venv/bin/python}
DRY_RUN=${DRY_RUN:-}
DEV=cuda
BIG=base
BATCH=16
if [ -n "${DRY_RUN:-}" ]; then
    DEV=cpu
    BIG=tiny
    BATCH=2
    echo "DRY RUN on the CPU with the tiny preset: these numbers say nothing about a GPU"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
WORK=$(mktemp -d -t avflow-gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SUMMARY=()

item() {  # item NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name (limit ${limit}s) ==="
    local t0=$SECONDS
    # bash -c: shell functions (exported below) run under `timeout` like commands
    timeout --signal=TERM --kill-after=10 "$limit" bash -c '"$@"' _ "$@"
    local rc=$?
    local dt=$((SECONDS - t0))
    if [ $rc -eq 0 ]; then
        SUMMARY+=("ok       ${dt}s  $name")
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "!!! $name: TIMEOUT after ${limit}s"
        SUMMARY+=("TIMEOUT  ${dt}s  $name")
    else
        echo "!!! $name: FAILED (exit $rc)"
        SUMMARY+=("FAILED   ${dt}s  $name (exit $rc)")
    fi
}

environment() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    "$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'NONE'}")
import os
if os.environ.get("DRY_RUN"):
    raise SystemExit(0)
assert torch.cuda.is_available(), "no CUDA device visible to torch"
x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
import time
for _ in range(3):
    x @ x
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(20):
    x @ x
torch.cuda.synchronize()
print(f"bf16 GEMM 8192³: {20 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12:.0f} TFLOP/s")
EOF
}

shards() {
    "$PY" -c "from avflow_cli.data.synthetic import make_synthetic_shards; make_synthetic_shards('$WORK/shards')"
}

torchrun_smoke() {
    shards || return 1
    local sets=(--set train.bf16=true --set train.log_every=10 --set train.val_every=0 --set train.sample_every=0
                --set train.ckpt_every=10)
    "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m avflow_cli.cli.main train avflow \
        --data "$WORK/shards" --out "$WORK/run" --preset tiny --steps 30 --device "$DEV" "${sets[@]}" || return 1
    "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m avflow_cli.cli.main train avflow \
        --data "$WORK/shards" --out "$WORK/run" --steps 40 --resume --device "$DEV" || return 1
    "$PY" - "$WORK/run" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/log.jsonl") if l.strip()]
steps = [r["step"] for r in rows if "train/loss" in r]
print("logged steps", steps, "losses", [round(r["train/loss"], 4) for r in rows if "train/loss" in r])
assert steps[-1] == 40, steps
EOF
}

export PY WORK DEV DRY_RUN
export -f environment shards torchrun_smoke

item "1 environment" 30 environment
item "2 CUDA-marked tests" 60 "$PY" -m pytest -m gpu -q -x -p no:cacheprovider tests
item "3 training $BIG bf16, eager + compile" 150 "$PY" benchmarks/train_speed.py --device "$DEV" --presets "$BIG" \
    --base-batch "$BATCH" --precisions bf16 --compile both --steps 5
item "4 sampling $BIG 20 s, 8 steps (eager, CUDA graphs) + floor" 100 "$PY" benchmarks/sample_speed.py --device "$DEV" \
    --presets "$BIG" --lengths 20 --repeats 5 --sampling --steps 8 --bf16 yes
item "5 text → speech + motion latency" 60 "$PY" benchmarks/synth_speed.py --device "$DEV" --random-preset "$BIG" \
    --vocoders hifigan,student --sentences 1 4 --repeats 3
item "6 torchrun 1-GPU smoke (train 30 steps, resume to 40)" 60 torchrun_smoke

echo
echo "=== summary ==="
printf '%s\n' "${SUMMARY[@]}"
