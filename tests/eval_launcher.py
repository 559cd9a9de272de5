"""Run the ``i3d`` CLI with the reduced test pipeline (2 clips x 8 frames at 64x64) in a separate process.

Used by tests that must kill a run or start several processes (torchrun-style ranks). Usage:
``python tests/eval_launcher.py eval --list ... --out-dir ...``
"""

import sys
from dataclasses import replace

import i3d_infer.model.weights as weights
from i3d_infer.cli import main

weights.DEFAULT_WEIGHTS = replace(
    weights.DEFAULT_WEIGHTS, preprocessing=weights.Preprocessing(clip_len=8, num_clips=2, size=64)
)
sys.exit(main(sys.argv[1:]))
