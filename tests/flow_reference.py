"""OpenCV's CPU TV-L1 as the reference tools call it, and how far another flow is from it (the tests' and the
benchmarks' yardstick; no pytest here: the GPU image runs the benchmarks without it)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from i3d_infer.data.flow import FLOW_LAYOUTS, quantise, to_short_side


def gray_frames(path, count: int, short: int | None = None) -> np.ndarray:
    capture, frames = cv2.VideoCapture(str(path)), []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        frames.append(gray if short is None else to_short_side(gray, short))
    return np.stack(frames)


def opencv_flow(frames: np.ndarray) -> np.ndarray:
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return np.stack([tvl1.calc(a, b, None) for a, b in itertools.pairwise(frames)])


def differences(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """Mean end-point error, max |difference|, share of differing quantised pixels (mmaction2's quantiser)."""
    layout = FLOW_LAYOUTS["mmaction2-cpu"]
    epe = np.sqrt(((ours - reference) ** 2).sum(-1)).mean()
    quantised = quantise(ours, layout) != quantise(reference, layout)
    return float(epe), float(np.abs(ours - reference).max()), float(quantised.mean())
