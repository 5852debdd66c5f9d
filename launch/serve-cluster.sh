#!/usr/bin/env bash
# Serve a model on a described cluster with the OpenAI-compatible API on rank 0: `moerun plan` picks the layout
# and writes the launch scripts (as for launch/cluster.sh); this runs them with `moerun serve` instead of generate.
# Usage: launch/serve-cluster.sh CLUSTER_FILE MODEL_DIR [serve options...]
#   e.g. launch/serve-cluster.sh clusters/cpu16-100g.yaml /models/DeepSeek-V3 --host 0.0.0.0 --port 8000 --api-key KEY
# Under Slurm: MOERUN_COMMAND=serve sbatch launch/slurm.sbatch CLUSTER_FILE MODEL_DIR [serve options...]
# Environment: as launch/cluster.sh (PLAN_ARGS, PLAN_DIR, MOERUN_BIN). To stop: SIGTERM to rank 0 (its pid is printed
# at "ready:", on the first host) drains and every rank exits 0; SIGTERM to this script (mpirun) or scancel ends the
# job at once, and every open request gets an error saying so.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CLUSTER_FILE MODEL_DIR [serve options...]" >&2
    exit 2
fi
MOERUN_COMMAND=serve exec "$(dirname "$0")/cluster.sh" "$@"
