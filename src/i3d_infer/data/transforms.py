"""Resize and crop (mmaction2 ``Resize``, ``CenterCrop``, ``ThreeCrop``) and the named view protocols; uint8 out."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ViewProtocol:
    """How decoded frames become views: per-frame resize, then crops taken from every clip."""

    name: str  # the name users pass to --protocol
    squash: bool  # True: resize to size x size ignoring the aspect ratio; False: short side to size
    crops: str  # "full" (the whole, already square frame), "center", "three" (left/right/middle) or "five"
    description: str  # one line for --help and docs
    mirror: bool = False  # also the crops of the horizontally flipped frame, after the others (torchvision TenCrop)

    @property
    def num_crops(self) -> int:
        return CROP_COUNTS[self.crops] * (2 if self.mirror else 1)


CROP_COUNTS = {"full": 1, "center": 1, "three": 3, "five": 5}

PROTOCOLS = {
    p.name: p
    for p in (
        ViewProtocol(
            "seed", True, "full", "squashed to 256x256 (the seed's rawframes), 10 clips x 1 view: 70.03/89.51"
        ),
        ViewProtocol("centercrop", False, "center", "short side 256, centre crop 256, 10 clips x 1 view"),
        ViewProtocol("threecrop", False, "three", "short side 256, three 256 crops, 10 clips x 3 views: 73.92/91.59"),
        ViewProtocol("fivecrop", False, "five", "short side, the four corners and the centre (torchvision FiveCrop)"),
        ViewProtocol("tencrop", False, "five", "fivecrop, then that of the mirrored frame (torchvision TenCrop)", True),
    )
}


def get_protocol(name: str) -> ViewProtocol:
    """The protocol called ``name``; ValueError listing the choices otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(new_w, new_h)`` with the short side at ``short``, rounded like mmcv ``rescale_size`` (spec §2.5)."""
    scale = short / min(height, width)
    return int(width * scale + 0.5), int(height * scale + 0.5)


def resized_size(height: int, width: int, protocol: ViewProtocol, *, size: int) -> tuple[int, int]:
    """``(new_w, new_h)`` of a ``height x width`` frame after the protocol's resize."""
    return (size, size) if protocol.squash else short_side_size(height, width, size)


def resize_frame(frame: np.ndarray, protocol: ViewProtocol, size: int) -> np.ndarray:
    """Resize one ``(H, W, 3)`` uint8 frame as the protocol says (``cv2.INTER_LINEAR``); a no-op when already there."""
    h, w = frame.shape[:2]
    new_w, new_h = resized_size(h, w, protocol, size=size)
    if (new_w, new_h) == (w, h):
        return frame
    return cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def crop_offsets(height: int, width: int, crops: str, *, size: int) -> list[tuple[int, int]]:
    """Top-left ``(x, y)`` of each crop, in mmaction2's order (three crops: left/top, right/bottom, middle)."""
    if crops == "full":
        if (height, width) != (size, size):
            raise ValueError(f"'full' view needs {size}x{size} frames, got {width}x{height}")
        return [(0, 0)]
    if crops == "center":
        return [((width - size) // 2, (height - size) // 2)]
    if crops == "three":
        if height == size:
            step = (width - size) // 2
            return [(0, 0), (2 * step, 0), (step, 0)]
        if width == size:
            step = (height - size) // 2
            return [(0, 0), (0, 2 * step), (0, step)]
        raise ValueError(f"three crops of {size} need one side equal to {size}, got {width}x{height}")
    if crops == "five":  # torchvision's FiveCrop order: top-left, top-right, bottom-left, bottom-right, centre
        right, bottom = width - size, height - size
        return [(0, 0), (right, 0), (0, bottom), (right, bottom), (right // 2, bottom // 2)]
    raise ValueError(f"unknown crops {crops!r}")


FLOW_X = {2: 0, 5: 3}  # channels of a view -> where its flow's x component is


def make_views(clips: np.ndarray, protocol: ViewProtocol, size: int) -> np.ndarray:
    """Crop resized clips into model views, crop-major like mmaction2 (view = crop * num_clips + clip).

    Args:
        clips: uint8 ``(num_clips, clip_len, H, W, 3)`` RGB, or float32 ``(..., 2)`` flow or ``(..., 5)`` RGB and
            flow; a mirrored view's flow has its x component negated (the field of the flipped frames).

    Returns:
        ``(num_crops * num_clips, C, clip_len, size, size)`` of the clips' dtype, C-contiguous.
    """
    num_clips, clip_len, height, width = clips.shape[:4]
    offsets = crop_offsets(height, width, protocol.crops, size=size)
    sources = [clips, clips[:, :, :, ::-1]] if protocol.mirror else [clips]  # the flipped frame: a view, no copy
    channels = clips.shape[-1]  # 3; 2 for flow; 5 for frames carrying their flow (data.flow.FlowPairedSource)
    views = np.empty((len(sources) * len(offsets) * num_clips, channels, clip_len, size, size), dtype=clips.dtype)
    for k, (frames, (x, y)) in enumerate((f, xy) for f in sources for xy in offsets):
        crop = frames[:, :, y : y + size, x : x + size]  # (clips, T, size, size, 3)
        views[k * num_clips : (k + 1) * num_clips] = crop.transpose(0, 4, 1, 2, 3)  # -> (clips, C, T, size, size)
    if protocol.mirror and channels in FLOW_X:
        views[len(views) // 2 :, FLOW_X[channels]] *= -1  # flipped frames move the other way along x
    return views
