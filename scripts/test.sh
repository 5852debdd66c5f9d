#!/usr/bin/env bash
# The whole test suite: bootstrap, build, then every test target (unit + multi-rank mpirun tests).
# Usage: scripts/test.sh [extra swift test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
swift build --build-tests
swift test --skip-build "$@"
