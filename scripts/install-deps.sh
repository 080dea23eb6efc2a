#!/usr/bin/env bash
# Installs the Debian packages kerac builds and tests with (run as root, or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config libopenblas-pthread-dev zlib1g-dev libcurl4-openssl-dev \
    libssl-dev libcriterion-dev libhdf5-dev libzip-dev libcjson-dev \
    libcairo2-dev fonts-dejavu-core libpng-dev libjpeg62-turbo-dev clang \
    openmpi-bin libopenmpi-dev >/dev/null
