#!/usr/bin/env bash
# Set up, then run the whole flow on the bundled sample videos: annotations, lists, rawframes, ONNX export,
# evaluation with torch and onnxruntime, benchmark. Uses the official checkpoint when it can be had (cache or
# download), else says so and shows the pipeline with random weights.
# Extra arguments go to `i3d demo`, e.g.: bash scripts/demo.sh --checkpoint /path/to/i3d_nl_dot_product_r50.pth
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh samples,export,onnxruntime
. .venv/bin/activate
i3d demo "$@"
