#!/usr/bin/env bash
# The whole test suite: bootstrap, build, then every test target (unit + multi-rank mpirun tests).
# Usage: scripts/test.sh [extra swift test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
swift build --build-tests
# One test at a time: synchronous tests that wait on mpirun jobs occupy the cooperative thread pool (as many
# threads as cores), and the in-process HTTP servers of MoerunServerTests need that pool to answer; run side by
# side on a 2-core machine they can starve each other.
swift test --skip-build --no-parallel "$@"
