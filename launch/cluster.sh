#!/usr/bin/env bash
# Run moerun generate on a described cluster: `moerun plan` picks the layout and writes the hostfile, rankfile
# and launch script; this script only runs that script. All placement logic lives in `moerun plan`.
# Usage: launch/cluster.sh CLUSTER_FILE MODEL_DIR [generate options...]
#   e.g. launch/cluster.sh clusters/cpu16-100g.yaml /models/DeepSeek-V3 --prompts prompts.txt --max-new-tokens 64
# Environment: PLAN_ARGS (extra plan options, e.g. "--batch 32 --context 8192"), PLAN_DIR (default: plan-<cluster>),
#              MOERUN_BIN (moerun binary; also named in the launch lines).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CLUSTER_FILE MODEL_DIR [generate options...]" >&2
    exit 2
fi
cluster="$1"; model="$2"; shift 2
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${MOERUN_BIN:-}"
if [ -z "$bin" ]; then
    for candidate in "$here/.build/release/moerun" "$here/.build/debug/moerun"; do
        [ -x "$candidate" ] && { bin="$candidate"; break; }
    done
fi
[ -n "$bin" ] || { echo "$0: no moerun binary; build first: swift build -c release" >&2; exit 2; }
dir="${PLAN_DIR:-plan-$(basename "$cluster" .yaml)}"
# shellcheck disable=SC2086  # PLAN_ARGS is a list of options
"$bin" plan --model "$model" --cluster "$cluster" --binary "$bin" --write-launch "$dir" ${PLAN_ARGS:-}
exec bash "$dir/mpirun.sh" "$@"
