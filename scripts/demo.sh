#!/usr/bin/env bash
# The main job on the built-in default: a small synthetic DeepSeek-V3-shaped model (made by `moerun synth`,
# ~490 MB, random weights, with a synthetic tokenizer and DeepSeek-V3's chat template; no download) served by
# 4 local ranks as 2 pipeline stages x 2 expert-parallel lanes. Text in, text out; the weights are random, so
# the generated text is meaningless: the demo shows the machinery, not a model.
# Usage: scripts/demo.sh [ranks] [plan]        e.g. scripts/demo.sh 4 pp=2,ep=2
# Environment: MOERUN_DEMO_MODEL (checkpoint directory; default .build/demo/deepseek-v3-small, made on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-4}"
plan="${2:-pp=2,ep=2}"
scripts/bootstrap.sh
swift build -c release --product moerun
default_model=.build/demo/deepseek-v3-small
model="${MOERUN_DEMO_MODEL:-$default_model}"
has_tokenizer() { [ -f "$1/tokenizer.json" ] || [ -f "$1/tiktoken.model" ]; }
# Made on first use; the default model is remade when it predates the synthetic tokenizer.
if [ ! -f "$model/model.safetensors.index.json" ] || { [ "$model" = "$default_model" ] && ! has_tokenizer "$model"; }; then
    .build/release/moerun synth --preset deepseek-v3 --size small --seed 1 --out "$model"
fi
prompts="$(mktemp)"
trap 'rm -f "$prompts"' EXIT
if has_tokenizer "$model"; then
    # One request per line: raw completions and one chat turn (the checkpoint's chat template is applied).
    printf '%s\n' \
        '{"prompt": "The capital of France is"}' \
        '{"prompt": "def fibonacci(n):"}' \
        '{"messages": [{"role": "user", "content": "Write a haiku about expert parallelism."}]}' > "$prompts"
else
    # A checkpoint without tokenizer files: prompts as token ids.
    printf '%s\n' "0,3145,1024,42,7,99" "0,17,18,19" "0,2718,281,828" > "$prompts"
fi
exec launch/local.sh "$ranks" generate --model "$model" --plan "$plan" --prompts "$prompts" --max-new-tokens 16
