#!/usr/bin/env bash
# Serve a model on a described cluster with the OpenAI-compatible API on rank 0: `moerun plan` picks the layout
# and writes the launch scripts (as for launch/cluster.sh); this runs them with `moerun serve` instead of generate.
# Usage: launch/serve-cluster.sh CLUSTER_FILE MODEL_DIR [serve options...]
#   e.g. launch/serve-cluster.sh clusters/cpu16-100g.yaml /models/DeepSeek-V3 --host 0.0.0.0 --port 8000 --api-key KEY
# Under Slurm: MOERUN_COMMAND=serve sbatch launch/slurm.sbatch CLUSTER_FILE MODEL_DIR [serve options...]
# Environment: as launch/cluster.sh (PLAN_ARGS, PLAN_DIR, MOERUN_BIN). Stop with SIGTERM (drains, every rank exits 0).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CLUSTER_FILE MODEL_DIR [serve options...]" >&2
    exit 2
fi
MOERUN_COMMAND=serve exec "$(dirname "$0")/cluster.sh" "$@"
