#!/usr/bin/env bash
# Make this machine able to build and run moerun: installs OpenMPI (Debian packages) when missing.
# Usage: scripts/bootstrap.sh        (idempotent; needs root or sudo only when something is missing)
set -euo pipefail

need=()
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
pkg-config --exists ompi-c 2>/dev/null || need+=(libopenmpi-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if ((${#need[@]})); then
    echo "bootstrap: installing ${need[*]} (OpenMPI from Debian)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libopenmpi-dev openmpi-bin pkg-config >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "bootstrap: swift not found on PATH (Swift 6 toolchain required)" >&2; exit 1; }
echo "bootstrap: $(mpirun --version 2>/dev/null | head -n 1); $(swift --version 2>/dev/null | head -n 1)"
