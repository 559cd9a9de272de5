"""What OpenCV does to a decoded frame before anyone sees it, for the decoders that must give the same pixels
(PyAV here; NVDEC's reader turns frames with the same quarter turns): the colour conversion and the orientation."""

from __future__ import annotations

import cv2
import numpy as np

# OpenCV's rotation of a frame whose display matrix turns it (cv::rotate after the conversion, with auto-orientation
# on), as counter-clockwise quarter turns keyed by PyAV's angle; any other angle OpenCV leaves as decoded, and so do we
QUARTER_TURNS = {90: 1, 180: 2, -180: 2, -90: 3}
CV2_TURNS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that make a frame with this display-matrix angle upright."""
    return QUARTER_TURNS.get(round(rotation), 0)


def bgr24(frame) -> np.ndarray:
    """A decoded ``av.VideoFrame`` -> uint8 BGR (H, W, 3), pixel for pixel what ``cv2.VideoCapture`` gives: swscale to
    BGR24 with OpenCV's flags (``SWS_BICUBIC``, no colour details: BT.601, range from the pixel format;
    ``cap_ffmpeg_impl.hpp``), then turned upright as OpenCV's auto-orientation does. (High bit depths and 4:2:2 go
    through swscale's scaler, where the flag picks the chroma filter: PyAV's default differs by up to 11 levels.)"""
    image = frame.reformat(format="bgr24", interpolation="BICUBIC").to_ndarray()
    turns = quarter_turns(frame.rotation)
    return cv2.rotate(image, CV2_TURNS[turns]) if turns else image
