"""OpenCV's CPU TV-L1 in torch, batched over frame pairs: the same algorithm, op for op, on a GPU or the CPU.

The reference is opencv_contrib's ``modules/optflow/src/tvl1flow.cpp`` (``OpticalFlowDual_TVL1::calc`` and
``procOneScale``) with the defaults mmaction2's ``tools/misc/flow_extraction.py`` uses (``../shared/reference/
flow.md``): uint8 gray in as 0..255 floats; a pyramid of ``resize(INTER_LINEAR)`` x0.8 per level (5 levels at most,
none with a side under 16); per level the centred gradient of the second frame, 5 warps of it by ``remap
(INTER_CUBIC)`` (constant 0 outside, exact sub-pixel positions as OpenCV 5.0 computes them), the dual TV-L1 updates
(tau 0.25, lambda 0.15, theta 0.3) in at most 10 outer x 30 inner iterations with a 5x5 median filter of the flow at
the start of each outer one, stopped once an iteration changes the flow by no more than ``epsilon² · area``
(epsilon 0.01, the sum of squared changes); the flow upsampled (``resize(INTER_LINEAR)`` to the finer level, x1.25)
from the coarsest level to the finest.

Batching: the pairs of a call share one size (several videos of one size may share a call). Each pair keeps its
own stopping rule: a pair that has converged in a warp stops changing (its updates are masked) while the others go
on; a batch runs until its last pair stops (:attr:`TVL1Torch.iterations` counts the batch's iterations and the
pairs' own, to measure what that costs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FLT_EPSILON = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class TVL1Params:
    """``cv2.optflow.DualTVL1OpticalFlow_create()``'s defaults (gamma 0: no illumination term)."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    scales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner: int = 30
    outer: int = 10
    scale_step: float = 0.8
    median: int = 5


def _linear_taps(src: int, dst: int, scale: float, *, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``cv::resize`` INTER_LINEAR's source taps along one axis: ``s = (d + 0.5) · scale − 0.5``, the left tap
    clamped to the image (its weight then 0). Returns the two taps and the right tap's weight (float32)."""
    s = (np.arange(dst) + 0.5) * scale - 0.5
    left = np.floor(s).astype(np.int64)
    weight = (s - left).astype(np.float32)
    low, high = left < 0, left >= src - 1
    weight[low | high] = 0
    left = np.clip(left, 0, src - 1)
    right = np.minimum(left + 1, src - 1)
    as_tensor = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return as_tensor(left), as_tensor(right), as_tensor(weight)


def resize_linear(x: torch.Tensor, size: tuple[int, int], scale: tuple[float, float]) -> torch.Tensor:
    """``cv::resize(..., INTER_LINEAR)`` of float32 ``(..., H, W)`` to ``size`` ``(h, w)`` with the source step
    ``scale`` ``(sy, sx)`` per destination pixel (``1 / fx`` when OpenCV is given the factor, ``src / dst`` when given
    the size): rows first, then columns, as OpenCV's horizontal then vertical passes."""
    (h, w), (sy, sx) = size, scale
    x0, x1, fx = _linear_taps(x.shape[-1], w, sx, device=x.device)
    y0, y1, fy = _linear_taps(x.shape[-2], h, sy, device=x.device)
    rows = x[..., x0] * (1 - fx) + x[..., x1] * fx
    return rows[..., y0, :] * (1 - fy)[:, None] + rows[..., y1, :] * fy[:, None]


def centered_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``centeredGradient``: ``0.5 · (next − previous)``, one-sided (``0.5 · (x1 − x0)``) on the borders."""
    padded = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return dx, dy


def forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``forwardGradient``: ``next − this``, 0 in the last column (x) and the last row (y)."""
    dx = F.pad(u[:, :, 1:] - u[:, :, :-1], (0, 1))
    dy = F.pad(u[:, 1:, :] - u[:, :-1, :], (0, 0, 0, 1))
    return dx, dy


def divergence(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """``divergence``: backward differences, the value before the first column / row taken as 0."""
    return (v1 - F.pad(v1[:, :, :-1], (1, 0))) + (v2 - F.pad(v2[:, :-1, :], (0, 0, 1, 0)))


def median_blur(u: torch.Tensor, size: int) -> torch.Tensor:
    """``cv::medianBlur`` of float32 ``(B, H, W)`` (``size`` 3 or 5; the border replicated)."""
    half = size // 2
    padded = F.pad(u[:, None], (half, half, half, half), mode="replicate")
    windows = F.unfold(padded, size)  # (B, size², H·W)
    return windows.median(dim=1).values.view_as(u)


def _cubic(t: torch.Tensor) -> list[torch.Tensor]:
    """OpenCV's ``interpolateCubic`` weights (A = −0.75) of the four taps around a fractional position ``t``."""
    a = -0.75
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return [c0, c1, c2, 1 - c0 - c1 - c2]


def remap_cubic(images: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor) -> torch.Tensor:
    """``cv::remap(..., INTER_CUBIC, BORDER_CONSTANT 0)`` of float32 ``(B, C, H, W)`` at float32 ``(B, H, W)``
    positions, as OpenCV 5.0 computes it (the exact fractional position; 4.x rounded it to 1/32 of a pixel)."""
    batch, channels, height, width = images.shape
    fx, fy = torch.floor(map_x), torch.floor(map_y)
    wx, wy = _cubic(map_x - fx), _cubic(map_y - fy)
    ix, iy = fx.to(torch.int64) - 1, fy.to(torch.int64) - 1
    flat = images.reshape(batch, channels, height * width)
    out = torch.zeros_like(images)
    for i in range(4):
        y = iy + i
        row_ok = (y >= 0) & (y < height)
        row = y.clamp(0, height - 1) * width
        for j in range(4):
            x = ix + j
            inside = row_ok & (x >= 0) & (x < width)
            index = (row + x.clamp(0, width - 1)).reshape(batch, 1, -1).expand(-1, channels, -1)
            taps = flat.gather(2, index).view_as(images)
            out += torch.where(inside[:, None], taps, 0) * (wy[i] * wx[j])[:, None]
    return out


@dataclass
class Iterations:
    """What the batch's shared loop cost: iterations the batch ran, and those its pairs needed (their own rule)."""

    batch: int = 0  # inner iterations run, times the pairs in the batch
    needed: int = 0  # inner iterations each pair ran before its own rule stopped it, summed

    @property
    def wasted(self) -> float:
        """The share of the computed pair-iterations spent on pairs that had already stopped."""
        return 1 - self.needed / self.batch if self.batch else 0.0


class TVL1Torch:
    """TV-L1 flow of frame pairs (see the module docstring). ``device``: where it runs (``cuda`` or ``cpu``)."""

    def __init__(self, device: str | torch.device = "cpu", params: TVL1Params = TVL1Params()) -> None:
        self.device, self.params = torch.device(device), params
        self.iterations = Iterations()

    def consecutive(self, frames) -> torch.Tensor:
        """The flow of each consecutive pair of ``frames`` (``(K + 1, H, W)``, uploaded once): ``(K, H, W, 2)``."""
        frames = torch.as_tensor(frames).to(self.device, torch.float32)
        return self(frames[:-1], frames[1:])

    def __call__(self, first, second) -> torch.Tensor:
        """The flow from ``first`` to ``second`` (uint8 or float ``(B, H, W)`` gray frames, numpy or torch): float32
        ``(B, H, W, 2)`` in pixels, x then y, on the device."""
        i0, i1 = (torch.as_tensor(x).to(self.device, torch.float32) for x in (first, second))
        if i0.ndim == 2:
            i0, i1 = i0[None], i1[None]
        if i0.shape != i1.shape or i0.shape[-1] < 3 or i0.shape[-2] < 3:
            raise ValueError(f"TV-L1 takes two frames of one size, at least 3x3; got {i0.shape} and {i1.shape}")
        pyramid = self._pyramid(i0, i1)
        u1 = u2 = torch.zeros_like(pyramid[-1][0])
        for f0, f1 in reversed(pyramid):
            if u1.shape != f0.shape:  # the coarser level's flow, zoomed to this one (x 1 / scale step)
                scale = (u1.shape[-2] / f0.shape[-2], u1.shape[-1] / f0.shape[-1])
                zoom = np.float32(1 / self.params.scale_step)
                u1, u2 = (resize_linear(u, f0.shape[-2:], scale) * zoom for u in (u1, u2))
            u1, u2 = self._one_scale(f0, f1, flow=(u1, u2))
        return torch.stack([u1, u2], dim=-1)

    def _pyramid(self, i0: torch.Tensor, i1: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The frames at each level: ``resize(fx = fy = scale step)`` of the level above, rounded sizes, until a side
        would be under 16 (that level is not used)."""
        step = self.params.scale_step
        levels = [(i0, i1)]
        for _ in range(1, self.params.scales):
            height, width = levels[-1][0].shape[-2:]
            size = (round(height * step), round(width * step))  # cvRound: half to even, as round()
            if size[0] < 16 or size[1] < 16:
                break
            levels.append(tuple(resize_linear(x, size, (1 / step, 1 / step)) for x in levels[-1]))
        return levels

    def _one_scale(self, i0, i1, *, flow: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """``procOneScale``: ``warps`` warps of the second frame, each followed by the TV-L1 iterations until every
        pair has met its stopping rule (or the iteration limits)."""
        (u1, u2), p, (batch, height, width) = flow, self.params, i0.shape
        epsilon = np.float32(p.epsilon * p.epsilon * height * width)  # the sum of squared changes that stops it
        l_t, taut, theta = np.float32(p.lambda_ * p.theta), np.float32(p.tau / p.theta), np.float32(p.theta)
        gradients = torch.stack([i1, *centered_gradient(i1)], dim=1)  # (B, 3, H, W): I1, I1x, I1y
        ys, xs = torch.meshgrid(
            torch.arange(height, device=i0.device, dtype=torch.float32),
            torch.arange(width, device=i0.device, dtype=torch.float32),
            indexing="ij",
        )
        duals = [torch.zeros_like(i0) for _ in range(4)]  # p11, p12, p21, p22: zero once per level, kept over warps
        for _ in range(p.warps):
            i1w, i1wx, i1wy = remap_cubic(gradients, xs + u1, ys + u2).unbind(1)
            warped = (i1wx, i1wy, i1wx * i1wx + i1wy * i1wy, i1w - i1wx * u1 - i1wy * u2 - i0)  # grad, rho_c
            active = torch.ones(batch, dtype=torch.bool, device=i0.device)
            for _ in range(p.outer):
                if not bool(active.any()):
                    break
                mask = active[:, None, None]
                u1 = torch.where(mask, median_blur(u1, p.median), u1)
                u2 = torch.where(mask, median_blur(u2, p.median), u2)
                for _ in range(p.inner):
                    if not bool(active.any()):
                        break
                    (u1, u2), duals, error = _iteration(
                        (u1, u2), duals, warped=warped, active=active, constants=(l_t, taut, theta)
                    )
                    self.iterations.batch += batch
                    self.iterations.needed += int(active.sum())
                    active = active & (error > epsilon)
        return u1, u2


def _iteration(flow, duals, *, warped, active, constants):
    """One inner iteration (``estimateV``, ``divergence``, ``estimateU``, ``forwardGradient``,
    ``estimateDualVariables``) for the ``active`` pairs; the others keep their values. Returns the new flow, the new
    duals and each pair's sum of squared changes of the flow."""
    (u1, u2), (i1wx, i1wy, grad, rho_c), (l_t, taut, theta) = flow, warped, constants
    rho = rho_c + (i1wx * u1 + i1wy * u2)
    bound = l_t * grad
    step = torch.where(grad > FLT_EPSILON, -rho / grad, torch.zeros_like(rho))  # inside the band: to rho = 0
    step = torch.where(rho < -bound, l_t, torch.where(rho > bound, -l_t, step))
    v1, v2 = u1 + step * i1wx, u2 + step * i1wy
    p11, p12, p21, p22 = duals
    new1 = v1 + theta * divergence(p11, p12)
    new2 = v2 + theta * divergence(p21, p22)
    error = ((new1 - u1).square() + (new2 - u2).square()).sum(dim=(1, 2), dtype=torch.float64)
    mask = active[:, None, None]
    u1, u2 = torch.where(mask, new1, u1), torch.where(mask, new2, u2)
    u1x, u1y = forward_gradient(u1)
    u2x, u2y = forward_gradient(u2)
    ng1, ng2 = 1 + taut * torch.hypot(u1x, u1y), 1 + taut * torch.hypot(u2x, u2y)
    updated = ((p11 + taut * u1x) / ng1, (p12 + taut * u1y) / ng1, (p21 + taut * u2x) / ng2, (p22 + taut * u2y) / ng2)
    return (u1, u2), [torch.where(mask, new, old) for new, old in zip(updated, duals, strict=True)], error
