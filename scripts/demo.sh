#!/usr/bin/env bash
# The main job on the built-in default: a small synthetic DeepSeek-V3-shaped model (made by `moerun synth`,
# ~490 MB, no download) served by 4 local ranks as 2 pipeline stages x 2 expert-parallel lanes.
# Usage: scripts/demo.sh [ranks] [plan]        e.g. scripts/demo.sh 4 pp=2,ep=2
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-4}"
plan="${2:-pp=2,ep=2}"
scripts/bootstrap.sh
swift build -c release --product moerun
model="${MOERUN_DEMO_MODEL:-.build/demo/deepseek-v3-small}"
if [ ! -f "$model/model.safetensors.index.json" ]; then
    .build/release/moerun synth --preset deepseek-v3 --size small --seed 1 --out "$model"
fi
prompts="$(mktemp)"
trap 'rm -f "$prompts"' EXIT
printf '%s\n' "0,3145,1024,42,7,99" "0,17,18,19" "0,2718,281,828" > "$prompts"
exec launch/local.sh "$ranks" generate --model "$model" --plan "$plan" --prompts "$prompts" --max-new-tokens 16
