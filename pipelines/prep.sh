#!/usr/bin/env bash
# Prepare a session tree into HDF5 shards on one machine, stage by stage.
#
#   pipelines/prep.sh SRC OUT [extra `avflow prep shards` options, e.g. --max-clip-seconds 30]
#
# SRC is a session folder or a tree of them (docs/INTERFACES.md §1); OUT receives the work
# folder OUT/sessions/NAME/ and the shards OUT/shards/ (+ index.json). Every stage skips what
# is already finished, so an interrupted run continues where it stopped. Stages:
#   vad → mel → tokens (actor and participant) → headpose → shards (+ index) → verify → info
# Environment: AVFLOW (the avflow command, default: avflow), TOKENS_SOURCE (auto|wav2vec2|
# alignment, default auto), DEVICE (cpu|cuda, default cpu) for the Wav2Vec2 token extractor.
# `avflow prep all SRC OUT` does the same in one process with one progress display.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
SRC=$1
OUT=$2
shift 2
AVFLOW=${AVFLOW:-avflow}
TOKENS_SOURCE=${TOKENS_SOURCE:-auto}
DEVICE=${DEVICE:-cpu}

$AVFLOW prep vad "$SRC" "$OUT"
$AVFLOW prep mel "$SRC" "$OUT"
$AVFLOW prep tokens "$SRC" "$OUT" --source "$TOKENS_SOURCE" --device "$DEVICE"
$AVFLOW prep headpose "$SRC" "$OUT"
$AVFLOW prep shards "$SRC" "$OUT" --tokens-source "$TOKENS_SOURCE" --device "$DEVICE" "$@"
$AVFLOW data verify "$OUT/shards"
$AVFLOW data info "$OUT/shards"
