#!/usr/bin/env bash
# Predicted (moerun plan, calibrated on this machine) vs measured (moerun generate under mpirun) tokens/s for a
# synthetic DeepSeek-V3-shaped model at np 1, 2, 4 (pp=1, ep=np). Prints one line per np with the ratios.
# Usage: scripts/plan-vs-measured.sh [SIZE=small] [BATCH=4] [PROMPT=32] [NEW=32]
# Environment: CLUSTER_OUT (calibrated cluster file, default .build/planner/local.yaml), SKIP_CALIBRATE=1,
# RUNS (generate runs per np, median reported; default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-small}"; batch="${2:-4}"; prompt="${3:-32}"; new="${4:-32}"
swift build -c release --product moerun >/dev/null
bin=.build/release/moerun
work=.build/planner
mkdir -p "$work"
model="$work/deepseek-v3-$size"
[ -f "$model/model.safetensors.index.json" ] || "$bin" synth --preset deepseek-v3 --size "$size" --seed 1 --quiet --out "$model" >/dev/null
cluster="${CLUSTER_OUT:-$work/local.yaml}"
if [ "${SKIP_CALIBRATE:-0}" != 1 ] || [ ! -f "$cluster" ]; then
    launch/local.sh 2 plan --calibrate --cluster clusters/local.yaml --cluster-out "$cluster"
fi
prompts="$work/prompts-$batch-$prompt.txt"
python3 -c "import random; r=random.Random(1); print('\n'.join(','.join(str(r.randrange(1, 30000)) for _ in range($prompt)) for _ in range($batch)))" > "$prompts"
printf '%-4s %14s %14s %6s   %14s %14s %6s\n' np "prefill pred" "prefill meas" ratio "decode pred" "decode meas" ratio
for np in 1 2 4; do
    json="$("$bin" plan --model "$model" --cluster "$cluster" --ranks-per-node "$np" --pp 1 --ep "$np" --batch "$batch" \
        --context $((prompt + new)) --prompt "$prompt" --json)"
    read -r pre dec threads < <(python3 -c 'import json,sys; r=json.load(sys.stdin); p=r["prediction"]
print(p["prefill"]["aggregateTokensPerSecond"], p["decode"]["aggregateTokensPerSecond"], r["threadsPerRank"])' <<<"$json")
    # Median of RUNS generate runs (this machine is shared and noisy).
    pres=(); decs=()
    for _ in $(seq "${RUNS:-3}"); do
        out="$(launch/local.sh "$np" generate --model "$model" --plan "pp=1,ep=$np" --prompts "$prompts" --max-new-tokens "$new" \
            --ignore-eos --threads "$threads" --max-batch "$batch")"
        line="$(grep -E '^generated' <<<"$out")"
        pres+=("$(sed -E 's/.*prefill ([0-9.]+) tokens\/s.*/\1/' <<<"$line")")
        decs+=("$(sed -E 's/.*decode ([0-9.]+) tokens\/s.*/\1/' <<<"$line")")
    done
    mpre="$(printf '%s\n' "${pres[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
    mdec="$(printf '%s\n' "${decs[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
    python3 -c "print('%-4s %14.1f %14.1f %6.2f   %14.1f %14.1f %6.2f' % ('$np', $pre, $mpre, $pre/$mpre, $dec, $mdec, $dec/$mdec))"
done
