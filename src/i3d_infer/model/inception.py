"""DeepMind's Inception-v1 I3D (kinetics-i3d ``i3d.py``), inference only, RGB or flow stream.

The architecture is the data in ``config.py`` (:data:`INCEPTION_V1`). TF semantics kept exactly: SAME padding
computed from each input's size (the odd unit at the end), max-pools ignoring padded cells, BatchNorm with eps 1e-3,
AvgPool (2, 7, 7) VALID, logits averaged over time. Module names are pytorch-i3d's (``Conv3d_1a_7x7.conv3d``,
``Mixed_3b.b1b.bn``, ``logits.conv3d``), so its files load as they are; DeepMind's TF variables are renamed onto
them (:func:`convert_deepmind`).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from .config import InceptionConfig, Mixed, Pool, Unit
from .i3d import InferenceOnly

BN_EPS = 1e-3  # Sonnet's BatchNorm default, which DeepMind trained with


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's SAME padding of one axis: ``(front, back)``, the odd unit at the back."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel, stride, *, value: float = 0.0) -> torch.Tensor:
    """``x`` (n, C, T, H, W) padded as TF's SAME would for this kernel and stride.

    With stride 2 (the only one here besides 1) SAME depends on the length's parity: an odd length pads
    ``((k - 1) // 2, k - 1 - (k - 1) // 2)``; an even one pads one cell less, at the front for an odd kernel (at the
    back for an even kernel, where the extra cell never completes a window). So every axis is padded as for an odd
    length and, for an odd kernel, the first cell is dropped when the length is even: the same numbers, written
    with ops a traced export keeps symbolic (a dynamic time axis in ONNX)."""
    pads, parity = [], []
    for axis in (4, 3, 2):  # F.pad lists the last axis first
        k, s = kernel[axis - 2], stride[axis - 2]
        if s > 2:
            pads += same_padding(x.shape[axis], k, s)
            continue
        pads += [(k - 1) // 2, k - 1 - (k - 1) // 2]
        if s == 2 and k % 2 == 1:
            parity.append((axis, x.shape[axis]))
    y = F.pad(x, pads, value=value) if any(pads) else x
    for axis, size in parity:
        y = y[(slice(None),) * axis + (slice(1 - size % 2, None),)]  # even length: drop the first padded cell
    return y


class Unit3D(nn.Module):
    """Conv3d (TF SAME padding, no bias) -> BatchNorm3d (eps 1e-3) -> ReLU."""

    def __init__(self, cin: int, spec: Unit) -> None:
        super().__init__()
        self.kernel, self.stride = spec.kernel, spec.stride
        self.conv3d = nn.Conv3d(cin, spec.out, spec.kernel, stride=spec.stride, bias=False)
        self.bn = nn.BatchNorm3d(spec.out, eps=BN_EPS)  # weight 1 in DeepMind's files (no gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel, self.stride)  # (n, C, T, H, W) -> padded
        return F.relu(self.bn(self.conv3d(x)))  # -> (n, out, ceil(T/s), ceil(H/s), ceil(W/s))


class MaxPoolSame(nn.Module):
    """Max-pool with TF SAME padding: padded cells are -inf, so they never win."""

    def __init__(self, spec: Pool) -> None:
        super().__init__()
        self.kernel, self.stride = spec.kernel, spec.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel, self.stride, value=-math.inf)
        return F.max_pool3d(x, self.kernel, self.stride)  # -> (n, C, ceil(T/s), ceil(H/s), ceil(W/s))


class InceptionBlock(nn.Module):
    """Four branches on the same input, concatenated on channels in DeepMind's order."""

    def __init__(self, cin: int, spec: Mixed) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = spec.widths
        self.b0 = Unit3D(cin, Unit("b0", b0, (1, 1, 1)))
        self.b1a = Unit3D(cin, Unit("b1a", b1a, (1, 1, 1)))
        self.b1b = Unit3D(b1a, Unit("b1b", b1b, (3, 3, 3)))
        self.b2a = Unit3D(cin, Unit("b2a", b2a, (1, 1, 1)))
        self.b2b = Unit3D(b2a, Unit("b2b", b2b, (3, 3, 3)))
        self.b3a = MaxPoolSame(Pool("b3a", (3, 3, 3), (1, 1, 1)))
        self.b3b = Unit3D(cin, Unit("b3b", b3b, (1, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)  # (n, Cin, T, H, W) -> (n, b0 + b1b + b2b + b3b, T, H, W)


class Logits(nn.Module):
    """pytorch-i3d's ``logits`` unit: a 1x1x1 conv with bias (DeepMind's ``Logits/Conv3d_0c_1x1``)."""

    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.conv3d = nn.Conv3d(cin, classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3d(x)


class InceptionI3D(InferenceOnly):
    """Inception-v1 I3D: ``(n, C, T, H, W)`` input scaled to [-1, 1] -> ``(n, num_classes)`` logits, the mean
    over time of the per-time logits (DeepMind's ``Logits`` endpoint). :meth:`endpoints` gives the others."""

    engines = ("eager", "fast")  # the torch backend's engines; fast: :meth:`fused`
    max_frames = 512  # longer inputs run in chunks (activations of 512 frames at 224: about 2 GB in fp32)
    channels_last = False  # run in channels-last-3d memory (the fused network's: faster convolutions on CPU)

    def __init__(self, config: InceptionConfig) -> None:
        super().__init__()
        self.config = config
        cin = config.in_channels
        for spec in config.layers:
            if isinstance(spec, Unit):
                self.add_module(spec.name, Unit3D(cin, spec))
                cin = spec.out
            elif isinstance(spec, Pool):
                self.add_module(spec.name, MaxPoolSame(spec))
            else:
                self.add_module(spec.name, InceptionBlock(cin, spec))
                cin = spec.out
        self.avg_pool = nn.AvgPool3d(config.logits_pool, stride=1)  # VALID
        self.logits = Logits(cin, config.num_classes)
        self.eval()

    def check_input(self, x: torch.Tensor) -> None:
        """One clear error for an input the network cannot take (wrong channels, too short, too small)."""
        frames, side = self.config.min_input
        _, c, t, h, w = x.shape
        if c != self.config.in_channels:
            raise InputError(f"the network takes {self.config.in_channels} channels, got {c}")
        if t < frames or min(h, w) < side:
            raise InputError(
                f"Inception I3D needs at least {frames} frames of {side}x{side} pixels, got {t} of {w}x{h}"
            )

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Up to the AvgPool in one pass: ``(n, C, T, H, W)`` -> ``(n, 1024, T', h, w)`` pooled per time step."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        for spec in self.config.layers:
            x = getattr(self, spec.name)(x)  # -> (n, 1024, ceil(T/8), ceil(H/32), ceil(W/32)) after Mixed_5c
        return self.avg_pool(x)  # -> (n, 1024, ceil(T/8) - 1, ceil(H/32) - 6, ceil(W/32) - 6)

    def trunk(self, x: torch.Tensor, prepare=None) -> torch.Tensor:
        """:meth:`pooled` of ``prepare(x)`` (e.g. the normalization), a long input in chunks of at most
        ``max_frames`` frames whose per-time outputs equal one pass's (:func:`time_chunks`): activations and the
        prepared input stay bounded whatever the length."""
        self.check_input(x)
        prepare = prepare or (lambda chunk: chunk)
        if x.shape[2] <= self.max_frames or torch.jit.is_tracing():
            return self.pooled(prepare(x))
        parts = [
            self.pooled(prepare(x[:, :, s:e]))[:, :, keep] for s, e, keep in time_chunks(x.shape[2], self.max_frames)
        ]
        return torch.cat(parts, dim=2)  # -> (n, 1024, T', h, w), as one pass

    def endpoints(self, x: torch.Tensor, prepare=None) -> dict[str, torch.Tensor]:
        """Every named output: ``logits`` (n, classes), ``logits_per_time`` (n, T', classes), ``features``
        (n, 1024: the AvgPool output averaged over time and space), ``features_per_time`` (n, T', 1024)."""
        pooled = self.trunk(x, prepare)
        per_time = self.logits(pooled).mean(dim=(3, 4)).transpose(1, 2)  # (n, classes, T', h, w) -> (n, T', classes)
        features_per_time = pooled.mean(dim=(3, 4)).transpose(1, 2)  # (n, 1024, T', h, w) -> (n, T', 1024)
        return {
            "logits": per_time.mean(dim=1),
            "logits_per_time": per_time,
            "features": features_per_time.mean(dim=1),
            "features_per_time": features_per_time,
        }

    def forward(self, x: torch.Tensor, prepare=None) -> torch.Tensor:
        pooled = self.trunk(x, prepare)
        if self.logits is None:  # a feature extractor (drop_head)
            return pooled.mean(dim=(2, 3, 4))  # (n, 1024, T', h, w) -> (n, 1024)
        return self.logits(pooled).mean(dim=(2, 3, 4))  # (n, classes, T', h, w) -> (n, classes)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @torch.no_grad()
    def fused(self) -> InceptionI3D:
        """A copy for fast inference: every BatchNorm folded into its convolution (weight scaled by
        ``1 / sqrt(var + eps)``, bias ``beta - mean * scale``), run channels-last. Equal to this network within
        float rounding (1.26x faster on a 2-core CPU: benchmarks/RESULTS.md)."""
        fused = copy.deepcopy(self)
        for unit in fused.modules():
            if isinstance(unit, Unit3D) and isinstance(unit.bn, nn.BatchNorm3d):
                bn, conv = unit.bn, unit.conv3d
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (out,)
                folded = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride)
                folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1, 1))
                folded.bias.copy_(bn.bias - bn.running_mean * scale)
                unit.conv3d, unit.bn = folded.to(conv.weight.device), nn.Identity()
        fused.channels_last = True
        return fused.to(memory_format=torch.channels_last_3d).eval()

    def drop_head(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Turn this network into a feature extractor: ``(n, 1024)`` out (the logits conv is linear, so the
        logits are ``head(features)``). Returns the head's float32 ``(weight (classes, 1024), bias)``."""
        if self.logits is None:
            return None
        conv = self.logits.conv3d
        head = (conv.weight.detach().float().flatten(1).cpu().numpy(), conv.bias.detach().float().cpu().numpy())
        self.logits = None
        return head


# Output j of the AvgPool depends on input frames [8j - 47, 8j + 62] (the layers' SAME windows traced back through
# the temporal strides 2, 2, 2); a chunk that holds them, starts on a multiple of 8 and has the length's remainder
# mod 4 (so every stride-2 layer pads its front as the whole video does) computes output j exactly as one pass.
RECEPTIVE = (47, 62)
GRID = 8  # the temporal stride from the input to the AvgPool's output


def time_chunks(frames: int, most: int) -> list[tuple[int, int, slice]]:
    """``(start, end, kept outputs)`` of each chunk of a ``frames``-long input, at most ``most`` frames each (for
    ``most`` >= 128): every AvgPool output once, from a chunk that holds its whole receptive field."""
    size = frames
    for _ in range(3):
        size = -(-size // 2)  # ceil: each stride-2 SAME layer
    outputs = size - 1  # the AvgPool over 2 time steps, VALID
    before, after = (-(-r // GRID) * GRID for r in RECEPTIVE)  # margins on the grid: 48, 64
    per_chunk = (most - before - after - 3) // GRID
    chunks = []
    for first in range(0, outputs, per_chunk):
        last = min(first + per_chunk, outputs)  # outputs [first, last)
        start = max(0, GRID * first - before)
        end = min(frames, GRID * (last - 1) + RECEPTIVE[1] + 1)
        if end < frames:
            end = min(frames, end + (frames - (end - start)) % 4)  # the whole length's remainder mod 4
        chunks.append((start, end, slice(first - start // GRID, last - start // GRID)))
    return chunks


# ---- checkpoints: pytorch-i3d's state dicts load as they are; DeepMind's TF variables are renamed ----

TF_UNIT = {  # our unit in a Mixed block -> DeepMind's scope
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}
TF_QUIRKS = {"Mixed_5b/Branch_2/Conv3d_0b_3x3": "Mixed_5b/Branch_2/Conv3d_0a_3x3"}  # as the released files name it
TF_PREFIXES = ("RGB/inception_i3d/", "Flow/inception_i3d/", "inception_i3d/")
TF_IGNORED = ("/Momentum", "global_step")  # optimizer slots and counters in rgb_scratch_kin600


def deepmind_names(config: InceptionConfig) -> dict[str, tuple[str, str]]:
    """Our parameter name -> (DeepMind's variable name without its stream prefix, how to turn it into ours)."""
    names = {}

    def unit(ours: str, theirs: str) -> None:
        theirs = TF_QUIRKS.get(theirs, theirs)
        names[f"{ours}.conv3d.weight"] = (f"{theirs}/conv_3d/w", "conv")
        names[f"{ours}.bn.bias"] = (f"{theirs}/batch_norm/beta", "vector")
        names[f"{ours}.bn.running_mean"] = (f"{theirs}/batch_norm/moving_mean", "vector")
        names[f"{ours}.bn.running_var"] = (f"{theirs}/batch_norm/moving_variance", "vector")

    for spec in config.layers:
        if isinstance(spec, Unit):
            unit(spec.name, spec.name)
        elif isinstance(spec, Mixed):
            for ours, theirs in TF_UNIT.items():
                unit(f"{spec.name}.{ours}", f"{spec.name}/{theirs}")
    names["logits.conv3d.weight"] = ("Logits/Conv3d_0c_1x1/conv_3d/w", "conv")
    names["logits.conv3d.bias"] = ("Logits/Conv3d_0c_1x1/conv_3d/b", "vector")
    return names


def convert_deepmind(variables: dict[str, np.ndarray], model: InceptionI3D, source: str) -> dict[str, torch.Tensor]:
    """DeepMind's TF variables (``RGB/inception_i3d/...``, ``Flow/...`` or unprefixed) -> our state dict.

    Conv kernels ``(t, h, w, in, out)`` become ``(out, in, t, h, w)``; BN vectors (``(C,)`` or ``(1, 1, 1, 1, C)``)
    become ``(C,)``; BN weights are 1 (Sonnet's BatchNorm has no scale). Strict: every variable used once.

    Raises:
        CheckpointError: naming the first missing, unexpected or mis-shaped variables.
    """
    stripped = {}
    for name, value in variables.items():
        if any(part in name for part in TF_IGNORED):
            continue
        prefix = next((p for p in TF_PREFIXES if name.startswith(p)), "")
        stripped[name[len(prefix) :]] = value
    expected = model.state_dict()
    state, missing, misshaped = {}, [], []
    for ours, (theirs, kind) in deepmind_names(model.config).items():
        if theirs not in stripped:
            missing.append(theirs)
            continue
        value = torch.from_numpy(np.array(stripped.pop(theirs), dtype=np.float32))
        value = value.permute(4, 3, 0, 1, 2) if kind == "conv" and value.ndim == 5 else value.reshape(-1)
        if value.shape != expected[ours].shape:
            misshaped.append(f"{theirs} {list(value.shape)} (expected {list(expected[ours].shape)})")
        state[ours] = value.contiguous()
    for key, value in expected.items():
        if key.endswith(".bn.weight"):
            state[key] = torch.ones_like(value)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(value)
    mismatch(source, missing=missing, unexpected=sorted(stripped), misshaped=misshaped)
    return state


def convert_pytorch_i3d(state: dict[str, torch.Tensor], model: InceptionI3D, source: str) -> dict[str, torch.Tensor]:
    """pytorch-i3d's state dict (our names already) checked strictly; missing BN counters filled with zero."""
    expected = model.state_dict()
    unexpected = sorted(k for k in state if k not in expected)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    misshaped = [
        f"{k} {list(v.shape)} (expected {list(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    mismatch(source, missing=missing, unexpected=unexpected, misshaped=misshaped)
    full = {k: torch.zeros_like(v) for k, v in expected.items() if k.endswith("num_batches_tracked")}
    return {**full, **state}


def mismatch(source: str, *, missing: list[str], unexpected: list[str], misshaped: list[str], show: int = 5) -> None:
    """Raise one line listing the first few keys of each kind of mismatch; nothing when all fit."""
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
            parts.append(f"{len(keys)} {label}: " + ", ".join(keys[:show]) + more)
    if parts:
        raise CheckpointError(f"{source}: does not fit the Inception I3D network: " + "; ".join(parts))
