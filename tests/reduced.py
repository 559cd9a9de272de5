"""The reduced pipeline the library and CLI tests run (2 clips x 8 frames at 64x64): every stage, at a fraction of
the full 10 x 32 x 256 cost."""

from __future__ import annotations

from dataclasses import replace

from i3d_infer.model.weights import DEFAULT_WEIGHTS, Preprocessing

SMALL_PRE = Preprocessing(clip_len=8, num_clips=2, size=64)
SMALL = replace(DEFAULT_WEIGHTS, preprocessing=SMALL_PRE)
