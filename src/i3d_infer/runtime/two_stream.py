"""Two streams as one backend: views carrying RGB and flow channels in, the two networks' outputs side by side."""

from __future__ import annotations

import numpy as np

from ..errors import I3DError
from .base import Backend


class TwoStreamBackend:
    """An RGB backend and a flow backend on float32 ``(n, 3 + 2, T, H, W)`` views (``data.flow.FlowPairedSource``'s
    items cropped): RGB features first, then flow (the TAL releases' order), ``(n, rgb_dim + flow_dim)``. ``head``:
    the two classifiers as one on the concatenated features, whose logits are the sum of the streams' (DeepMind's
    fusion: softmax of the summed logits)."""

    name = "two-stream"

    def __init__(self, rgb: Backend, flow: Backend) -> None:
        heads = getattr(rgb, "head", None), getattr(flow, "head", None)
        if (heads[0] is None) != (heads[1] is None):
            raise I3DError("both streams give features, or both logits")
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

    def compute(self, views: np.ndarray) -> np.ndarray:
        rgb = self.rgb(np.ascontiguousarray(views[:, :3]))  # 0..255 values: the RGB network normalizes them
        flow = self.flow(np.ascontiguousarray(views[:, 3:]))  # already clip(v, -B, B) / B
        return np.concatenate([rgb, flow], axis=1)  # (n, rgb_dim + flow_dim)

    def __call__(self, views: np.ndarray) -> np.ndarray:
        return self.compute(views)
