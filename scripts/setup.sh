#!/usr/bin/env bash
# Create .venv (if missing) and install i3d-infer into it with the given extras (e.g. "samples" or "test").
# CPU torch is pinned first: a bare torch requirement would pull a multi-GB CUDA build. GPU users: install the
# torch build for your CUDA first (https://pytorch.org), then `pip install -e .`; our own requirement is torch>=2.1.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-samples}"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[${extras}]"
