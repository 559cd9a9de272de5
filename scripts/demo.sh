#!/usr/bin/env bash
# Set up, then predict the bundled sample videos with the official checkpoint (downloaded once into the cache).
# Extra arguments go to `i3d predict`, e.g.: bash scripts/demo.sh --checkpoint /path/to/i3d_nl_dot_product_r50.pth
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh samples
. .venv/bin/activate
mapfile -t videos < <(i3d samples)
i3d predict "${videos[@]}" "$@"
