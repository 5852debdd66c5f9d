#!/usr/bin/env bash
# The main job on the built-in default: moerun across 4 local ranks.
# Usage: scripts/demo.sh [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-4}"
scripts/bootstrap.sh
swift build -c release --product moerun
exec launch/local.sh "$ranks" selftest
