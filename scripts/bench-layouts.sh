#!/usr/bin/env bash
# Prefill / decode tokens/s and dispatch+combine share for np=1, 2 (ep=2), 2 (pp=2), 4 (pp=2,ep=2) on a
# synthetic DeepSeek-V3-shaped model (made on first use). Medians over repetitions, one `moerun bench` per layout.
# Usage: scripts/bench-layouts.sh [SIZE=small] [extra bench args...]
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-small}"; shift || true
swift build -c release --product moerun >/dev/null
model=".build/bench/deepseek-v3-$size"
[ -f "$model/model.safetensors.index.json" ] || .build/release/moerun synth --preset deepseek-v3 --size "$size" --seed 1 --quiet --out "$model" >/dev/null
for layout in "1 pp=1,ep=1" "2 pp=1,ep=2" "2 pp=2,ep=1" "4 pp=2,ep=2"; do
    set -- $layout "$@"
    np="$1"; plan="$2"; shift 2
    echo "== np=$np $plan"
    launch/local.sh "$np" bench --model "$model" --plan "$plan" --prompt-lengths 32,128 --batch-sizes 1,4,16 \
        --decode-tokens 8 --repetitions 3 "$@" 2>/dev/null | grep -E '^  (kind|prefill|decode|memory)'
done
