"""Two streams as one backend: RGB and flow views in, the two networks' outputs side by side."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..errors import I3DError
from ..model.weights import Weights, choose_weights
from .base import Backend


def flow_stream(checkpoint: str | os.PathLike, spec, rgb: Weights) -> tuple[Backend, Weights]:
    """The flow network of ``--flow-checkpoint`` (torch, placed as ``spec``, a ``BackendSpec``, places the RGB one)
    and its description, for a two-stream run beside the ``rgb`` weights.

    Raises:
        I3DError: not a flow stream, or beside a network that is not a whole-video (Inception) one.
    """
    from . import make_backend

    weights = choose_weights(checkpoint)[0]
    if weights.stream != "flow" or not rgb.preprocessing.whole_video:
        raise I3DError(
            f"{checkpoint}: --flow-checkpoint takes a flow stream (Inception flow_imagenet, either layout) beside an "
            f"Inception RGB one; here {weights.name} beside {rgb.name}"
        )
    return make_backend(replace(spec, backend="torch", checkpoint=checkpoint, model=None), weights), weights


def check_streams(rgb: Backend, flow: Backend) -> None:
    """Two classifiers fused by adding logits must have the same classes."""
    if rgb.num_classes != flow.num_classes:
        raise I3DError(f"the flow network has {flow.num_classes} classes, the RGB one {rgb.num_classes}")


class TwoStreamBackend:
    """An RGB backend and a flow backend on float32 ``(n, 3 + 2, T, H, W)`` views (``data.flow.FlowPairedSource``'s
    items cropped: features windows) or on ``(rgb views, flow views)`` (the whole-video input: N frames, N - 1
    fields): RGB outputs first, then flow (the TAL releases' order), ``(n, rgb_dim + flow_dim)``. ``head``:
    the two classifiers as one on the concatenated features, whose logits are the sum of the streams' (DeepMind's
    fusion: softmax of the summed logits)."""

    name = "two-stream"

    def __init__(self, rgb: Backend, flow: Backend) -> None:
        heads = getattr(rgb, "head", None), getattr(flow, "head", None)
        if (heads[0] is None) != (heads[1] is None):
            raise I3DError("both streams give features, or both logits")
        if heads[0] is None:  # logits, summed by the caller: the same classes
            check_streams(rgb, flow)
        self.rgb, self.flow = rgb, flow
        self.device, self.input_device = rgb.device, None  # host views: the channels are split here
        self.num_classes = rgb.num_classes + flow.num_classes
        self.label = f"{getattr(rgb, 'label', rgb.name)}+flow"
        self.head = None
        if heads[0] is not None:
            (w_rgb, b_rgb), (w_flow, b_flow) = heads
            if w_rgb.shape[0] != w_flow.shape[0]:
                raise I3DError(f"the streams have {w_rgb.shape[0]} and {w_flow.shape[0]} classes")
            self.head = (np.concatenate([w_rgb, w_flow], axis=1), b_rgb + b_flow)  # (classes, rgb_dim + flow_dim)

    def prepare(self, views: np.ndarray) -> np.ndarray:
        return views

    def compute(self, views) -> np.ndarray:
        rgb, flow = views if isinstance(views, tuple) else (views[:, :3], views[:, 3:])
        rgb = self.rgb(np.ascontiguousarray(rgb))  # 0..255 values: the RGB network normalizes them
        flow = self.flow(np.ascontiguousarray(flow))  # already in [-1, 1]
        return np.concatenate([rgb, flow], axis=1)  # (n, rgb_dim + flow_dim)

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.compute(views)
