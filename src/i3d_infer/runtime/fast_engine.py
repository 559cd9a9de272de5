"""The fast torch engine: I3D as 2D convolutions and GEMMs on channels-last activations, BatchNorm folded.

Every convolution of I3D-R50 but the stem is (1,k,k), (k,1,1) or 1x1x1. Activations are kept as ``(N·T, C, H, W)``
tensors in channels-last memory, i.e. physically ``(N, T, H, W, C)``:

- a (1,3,3) conv is a 2D conv over the N·T frames, as they are;
- a (3,1,1) conv is a 2D conv with kernel (3,1) over the free view ``(N, C, T, H·W)``;
- a 1x1x1 conv is a 1x1 2D conv (a GEMM over N·T·H·W rows);
- the stem's 5 temporal taps (stride 2) are folded into channels: 5 frames x 3 colours = 15 input channels, one
  7x7/2 2D conv;
- max-pool (1,3,3)/(2,2,2) is every other frame then a 2D 3x3/2 pool; pool2 (2,1,1) is the max of frame pairs;
- the non-local blocks are two batched GEMMs (no softmax, divided by M, spec §1).

BatchNorm is folded into the conv weights once, when the engine is built. The input normalization runs on the
device on the uint8 batch, before the zero padding of the stem, so padding semantics are exactly the eager model's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.i3d import I3D, ConvBN, NonLocalDotProduct, Recognizer

PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def fold(conv_bn: ConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight and bias with the BatchNorm (running statistics) folded in, float64 for the arithmetic."""
    bn = conv_bn.bn
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv_bn.conv.weight.double() * scale.view(-1, *([1] * (conv_bn.conv.weight.dim() - 1)))
    bias = bn.bias.double() - bn.running_mean.double() * scale
    return weight, bias


class Conv2d(nn.Module):
    """A folded 3D conv with a unit temporal kernel, run as a 2D conv on ``(N·T, C, H, W)`` channels-last."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int, dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight[:, :, 0].to(dtype).contiguous(memory_format=torch.channels_last), False)
        self.bias = nn.Parameter(bias.to(dtype), False)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)  # (N·T, Cin, H, W) -> (N·T, Cout, ..)


class TemporalConv(nn.Module):
    """A folded (3,1,1) conv with temporal padding 1, as a (3,1) 2D conv over the free view ``(N, C, T, H·W)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, dtype) -> None:
        super().__init__()
        kt = weight.shape[2]
        self.weight = nn.Parameter(weight.reshape(*weight.shape[:2], kt, 1).to(dtype), False)  # (Co, Ci, 3, 1)
        self.bias = nn.Parameter(bias.to(dtype), False)
        self.padding = (kt // 2, 0)

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        nt, c, h, w = x.shape
        v = x.permute(0, 2, 3, 1).reshape(n, nt // n, h * w, c).permute(0, 3, 1, 2)  # -> (N, C, T, H·W), a view
        y = F.conv2d(v, self.weight, self.bias, 1, self.padding)  # -> (N, Co, T, H·W)
        return y.permute(0, 2, 3, 1).reshape(nt, h, w, -1).permute(0, 3, 1, 2)  # -> (N·T, Co, H, W)


def conv_for(conv_bn: ConvBN, dtype) -> nn.Module:
    """The 2D form of one folded ConvBN of a bottleneck."""
    weight, bias = fold(conv_bn)
    kt = conv_bn.conv.kernel_size[0]
    if kt > 1:
        return TemporalConv(weight, bias, dtype)
    return Conv2d(weight, bias, conv_bn.conv.stride[1], conv_bn.conv.padding[1], dtype)


class FastNonLocal(nn.Module):
    """Dot-product non-local block as batched GEMMs on channels-last frames."""

    def __init__(self, block: NonLocalDotProduct, dtype) -> None:
        super().__init__()
        self.theta = Conv2d(block.theta.weight.double(), block.theta.bias.double(), 1, 0, dtype)
        self.phi = Conv2d(block.phi.weight.double(), block.phi.bias.double(), 1, 0, dtype)
        self.g = Conv2d(block.g.weight.double(), block.g.bias.double(), 1, 0, dtype)
        self.out = Conv2d(*fold(block.out), 1, 0, dtype)

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        nt, _, h, w = x.shape

        def rows(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 2, 3, 1).reshape(n, -1, y.shape[1])  # (N·T, C', h, w) -> (N, T·h·w, C')

        theta = rows(self.theta(x))  # (N, N_pos, C/2)
        phi = rows(F.max_pool2d(self.phi(x), 2))  # (N, M, C/2)
        g = rows(F.max_pool2d(self.g(x), 2))  # (N, M, C/2)
        pairwise = theta @ phi.transpose(1, 2) / phi.shape[1]  # (N, N_pos, M)
        y = (pairwise @ g).reshape(nt, h, w, -1).permute(0, 3, 1, 2)  # -> (N·T, C/2, H, W) channels-last
        return x + self.out(y)


class FastBottleneck(nn.Module):
    def __init__(self, block, dtype) -> None:
        super().__init__()
        self.conv1 = conv_for(block.conv1, dtype)
        self.conv2 = conv_for(block.conv2, dtype)
        self.conv3 = conv_for(block.conv3, dtype)
        self.downsample = conv_for(block.downsample, dtype) if block.downsample is not None else None
        self.non_local = FastNonLocal(block.non_local, dtype) if block.non_local is not None else None

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv1(x, n) if isinstance(self.conv1, TemporalConv) else self.conv1(x)
        out = F.relu(out, inplace=True)
        out = F.relu(self.conv2(out), inplace=True)  # (N·T, P, H, W) -> (N·T, P, H/s, W/s)
        out = F.relu(self.conv3(out).add_(identity), inplace=True)  # -> (N·T, 4P, H/s, W/s)
        if self.non_local is not None:
            out = self.non_local(out, n)
        return out


class FastI3D(nn.Module):
    """The fast engine of a :class:`Recognizer`: uint8 ``(N, 3, T, H, W)`` in, float32 ``(N, classes)`` logits out."""

    def __init__(self, recognizer: Recognizer, precision: str = "fp32") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.precision, dtype = precision, PRECISIONS[precision]
        net: I3D = recognizer.network
        self.register_buffer("mean", recognizer.normalize.mean.view(1, 1, 3, 1, 1).clone(), persistent=False)
        self.register_buffer("std", recognizer.normalize.std.view(1, 1, 3, 1, 1).clone(), persistent=False)
        weight, bias = fold(net.stem)  # (64, 3, 5, 7, 7)
        kt = weight.shape[2]
        stem = weight.permute(0, 2, 1, 3, 4).reshape(weight.shape[0], kt * 3, *weight.shape[3:])  # (64, 5·3, 7, 7)
        self.stem = Conv2d(stem.unsqueeze(2), bias, 2, net.stem.conv.padding[1], dtype)
        self.stem_taps, self.stem_pad = kt, net.stem.conv.padding[0]
        self.layers = nn.ModuleList(
            nn.ModuleList(FastBottleneck(b, dtype) for b in layer)
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4)
        )
        self.fc = nn.Linear(net.fc.in_features, net.fc.out_features).to(dtype)
        self.fc.load_state_dict({k: v.to(dtype) for k, v in net.fc.state_dict().items()})
        self.dtype = dtype
        self.requires_grad_(False)
        self.eval()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        n, _, _, h, w = video.shape
        x = ((video.permute(0, 2, 1, 3, 4).float() - self.mean) / self.std).to(self.dtype)  # (N, T, 3, H, W)
        x = F.pad(x, (0, 0, 0, 0, 0, 0, self.stem_pad, self.stem_pad))  # zero-pad T (after normalization)
        taps = x.unfold(1, self.stem_taps, 2)  # (N, T', 3, H, W, 5): the 5 frames of each output step
        t1 = taps.shape[1]
        x = taps.permute(0, 1, 5, 2, 3, 4).reshape(n * t1, self.stem_taps * 3, h, w)  # -> (N·T', 15, H, W)
        x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.stem(x), inplace=True)  # -> (N·T', 64, H/2, W/2)
        x = x.view(n, t1, *x.shape[1:])[:, ::2].flatten(0, 1)  # temporal stride 2 of maxpool: (N·T/4, 64, ..)
        x = F.max_pool2d(x, 3, 2, 1)  # -> (N·T/4, 64, H/4, W/4)
        for i, layer in enumerate(self.layers):
            if i == 1:  # pool2: max of frame pairs, (N·T/4, C, H, W) -> (N·T/8, C, H, W)
                nt, c, hh, ww = x.shape
                frames = x.permute(0, 2, 3, 1).reshape(n, nt // n, hh, ww, c)[:, : nt // n // 2 * 2]
                pairs = frames.reshape(n, -1, 2, hh, ww, c)  # an odd last frame is dropped, as MaxPool3d does
                x = pairs.amax(dim=2).reshape(-1, hh, ww, c).permute(0, 3, 1, 2)
            for block in layer:
                x = block(x, n)
        pooled = x.permute(0, 2, 3, 1).reshape(n, -1, x.shape[1]).float().mean(dim=1)  # -> (N, 2048)
        return self.fc(pooled.to(self.dtype)).float()  # -> (N, classes)
