#!/usr/bin/env bash
# Install everything the test suite needs (Debian's chromium for the browser tests, the
# CPU build of PyTorch, the dev extras) into .venv, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }
fi

python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
# torch pinned to the CPU wheel (a bare `torch` pulls a multi-GB CUDA build)
pip install -q "torch==2.13.0" -e ".[dev]"
python -m pytest "$@"
