#!/usr/bin/env bash
# Run moerun under mpirun on this machine with N ranks (root and oversubscription handled).
# Usage: launch/local.sh N SUBCOMMAND [args...]     e.g. launch/local.sh 4 selftest
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 N SUBCOMMAND [args...]   (runs: mpirun -np N moerun SUBCOMMAND args...)" >&2
    exit 2
fi
ranks="$1"; shift
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${MOERUN_BIN:-}"
if [ -z "$bin" ]; then
    for candidate in "$here/.build/release/moerun" "$here/.build/debug/moerun"; do
        [ -x "$candidate" ] && { bin="$candidate"; break; }
    done
fi
[ -n "$bin" ] || { echo "$0: no moerun binary; build first: swift build -c release" >&2; exit 2; }
extra=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && extra+=(--allow-run-as-root)
exec mpirun -np "$ranks" "${extra[@]}" "$bin" "$@"
