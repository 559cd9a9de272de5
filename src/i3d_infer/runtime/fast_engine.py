"""The fast torch engine: I3D as 2D convolutions and GEMMs on channels-last activations, BatchNorm folded.

Every convolution of I3D-R50 but the stem is (1,k,k), (k,1,1) or 1x1x1. Activations are kept as ``(N·T, C, H, W)``
tensors in channels-last memory, i.e. physically ``(N, T, H, W, C)``:

- a (1,3,3) conv is a 2D conv over the N·T frames, as they are;
- a (3,1,1) conv is a 2D conv with kernel (3,1) over the free view ``(N, C, T, H·W)``;
- a 1x1x1 conv is a 1x1 2D conv (a GEMM over N·T·H·W rows);
- the stem's 5 temporal taps are folded into channels (5 frames x 3 colours, plus one zero channel: 16, the
  alignment tensor cores want), one 7x7/2 2D conv. The max-pool after it has temporal kernel 1 and stride 2, so it
  keeps stem frames 0, 2, 4, ... only: the stem is computed at those frames alone (half its work);
- max-pool (1,3,3)/2 is then a 2D 3x3/2 pool; pool2 (2,1,1) is the max of frame pairs;
- the non-local blocks are GEMMs: theta, phi+g in one, then two batched ones (no softmax, divided by M, spec §1).

BatchNorm is folded into the conv weights once, when the engine is built, and so is the input normalization's
division by std. The mean is subtracted while the uint8 frames are gathered into the stem's input, so the stem's
zero padding is the eager model's zero padding of the normalized input, exactly.

Epilogues (bias, residual add, ReLU after each conv): ``torch`` runs them as separate ops (CPU default); ``cudnn``
runs conv + bias (+ residual) + ReLU as one fused cuDNN call (CUDA only). The 1x1 convs without ReLU (non-local
embeddings and output) are GEMMs with the bias in cuBLASLt's epilogue; a downsample conv has no bias of its own
(it is added to conv3's, whose epilogue adds the residual).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.i3d import I3D, ConvBN, NonLocal, Recognizer

PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
EPILOGUES = ("torch", "cudnn")


def fold(conv_bn: ConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight and bias with the BatchNorm (running statistics) folded in, float64 for the arithmetic."""
    bn = conv_bn.bn
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    weight = conv_bn.conv.weight.double() * scale.view(-1, *([1] * (conv_bn.conv.weight.dim() - 1)))
    bias = bn.bias.double() - bn.running_mean.double() * scale
    return weight, bias


class Conv(nn.Module):
    """A folded conv run as a 2D conv on channels-last ``(N·T, C, H, W)`` frames, with its epilogue.

    ``weight`` is 5D ``(Co, Ci, kt, kh, kw)``: with ``kt == 1`` a spatial conv over the N·T frames, with ``kh == kw
    == 1`` a temporal conv, a (kt,1) 2D conv over the free view ``(N, C, T, H·W)``.
    """

    def __init__(self, weight, bias, stride: int, *, padding: int, dtype, epilogue: str) -> None:
        super().__init__()
        kt, kh, kw = weight.shape[2:]
        self.gemm = kt == kh == kw == stride == 1  # a 1x1x1 conv: a GEMM over the N·T·H·W rows
        self.temporal = kt > 1
        if self.temporal:
            weight2d, self.stride, self.padding = weight[..., 0], (1, 1), (kt // 2, 0)  # (Co, Ci, kt, 1)
        else:
            weight2d, self.stride, self.padding = weight[:, :, 0], (stride, stride), (padding, padding)
        self.register_buffer("weight", weight2d.to(dtype).contiguous(memory_format=torch.channels_last))
        # Constants of the engine. No bias: a downsample's joins conv3's.
        self.register_buffer("bias", None if bias is None else bias.to(dtype))
        self.epilogue = epilogue

    def forward(self, x: torch.Tensor, n: int = 1, relu: bool = True, residual: torch.Tensor | None = None):
        """``relu(conv(x) + bias (+ residual))``; ``n`` is the number of clips in ``x`` (temporal convs need it)."""
        if self.temporal:
            nt, c, h, w = x.shape
            x = x.permute(0, 2, 3, 1).reshape(n, nt // n, h * w, c).permute(0, 3, 1, 2)  # -> (N, C, T, H·W), a view
        if self.gemm and not relu and residual is None:  # non-local, layer1's downsample: bias in cuBLASLt's epilogue
            nt, c, h, w = x.shape
            rows = F.linear(x.permute(0, 2, 3, 1).reshape(-1, c), self.weight.view(self.weight.shape[:2]), self.bias)
            return rows.view(nt, h, w, -1).permute(0, 3, 1, 2)  # -> (N·T, Co, H, W) channels-last, a view
        if self.epilogue == "cudnn" and relu:
            args = (self.stride, self.padding, (1, 1), 1)
            if residual is None:
                y = torch.cudnn_convolution_relu(x, self.weight, self.bias, *args)
            else:
                y = torch.cudnn_convolution_add_relu(x, self.weight, residual, 1.0, self.bias, *args)
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
            if residual is not None:
                y.add_(residual)
            if relu:
                y.relu_()
        if self.temporal:
            _, co, t, _ = y.shape
            y = y.permute(0, 2, 3, 1).reshape(n * t, h, w, co).permute(0, 3, 1, 2)  # -> (N·T, Co, H, W), a view
        return y


def conv_for(conv_bn: ConvBN, dtype, epilogue: str) -> Conv:
    """The 2D form of one folded ConvBN of a bottleneck."""
    weight, bias = fold(conv_bn)
    return Conv(weight, bias, conv_bn.conv.stride[1], padding=conv_bn.conv.padding[1], dtype=dtype, epilogue=epilogue)


class FastNonLocal(nn.Module):
    """A non-local block (any mode of :class:`NonLocal`) as GEMMs on channels-last frames."""

    def __init__(self, block: NonLocal, dtype, epilogue: str) -> None:
        super().__init__()
        self.mode = block.mode

        def gemm(convs: list) -> Conv:  # 1x1x1 convs side by side: one GEMM
            weight, bias = torch.cat([c.weight for c in convs]).double(), torch.cat([c.bias for c in convs]).double()
            return Conv(weight, bias, 1, padding=0, dtype=dtype, epilogue=epilogue)

        self.theta = gemm([block.theta]) if block.theta is not None else None
        self.phi_g = gemm([block.phi, block.g] if block.phi is not None else [block.g])  # pooled together
        weight, bias = fold(block.out)
        self.out = Conv(weight, bias, 1, padding=0, dtype=dtype, epilogue=epilogue)

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        nt, _, h, w = x.shape

        def rows(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 2, 3, 1).reshape(n, -1, y.shape[1])  # (N·T, C', h, w) -> (N, T·h·w, C')

        pooled = rows(F.max_pool2d(self.phi_g(x, relu=False), 2))  # (N, M, [C/2 phi +] C/2 g)
        if self.theta is None:  # gaussian: theta and phi are the block's input itself
            theta, phi, g = rows(x), rows(F.max_pool2d(x, 2)), pooled  # (N, N_pos, C), (N, M, C), (N, M, C/2)
        else:
            c = pooled.shape[2] // 2
            theta, phi, g = rows(self.theta(x, relu=False)), pooled[..., :c], pooled[..., c:]
        if self.mode == "dot_product":
            empty = theta.new_empty(())
            pairwise = torch.baddbmm(empty, theta, phi.transpose(1, 2), beta=0, alpha=1 / phi.shape[1])  # (N, N, M)
        else:  # the softmax in float32 whatever the precision (the eager model's autocast keeps it there too)
            pairwise = (theta @ phi.transpose(1, 2)).float().softmax(dim=-1).to(theta.dtype)
        y = (pairwise @ g).reshape(nt, h, w, g.shape[2]).permute(0, 3, 1, 2)  # -> (N·T, C/2, h, w) channels-last
        return self.out(y, relu=False).add_(x)


class FastBottleneck(nn.Module):
    def __init__(self, block, dtype, epilogue: str) -> None:
        super().__init__()
        self.conv1 = conv_for(block.conv1, dtype, epilogue)
        self.conv2 = conv_for(block.conv2, dtype, epilogue)
        weight, bias = fold(block.conv3)
        self.downsample = None
        if block.downsample is not None:  # its bias joins conv3's: relu(conv3 + b3 + (downsample + b_ds))
            ds_weight, ds_bias = fold(block.downsample)
            ds = block.downsample.conv
            self.downsample = Conv(ds_weight, None, ds.stride[1], padding=ds.padding[1], dtype=dtype, epilogue=epilogue)
            bias = bias + ds_bias
        self.conv3 = Conv(weight, bias, 1, padding=0, dtype=dtype, epilogue=epilogue)
        self.non_local = FastNonLocal(block.non_local, dtype, epilogue) if block.non_local is not None else None

    def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x, relu=False)
        out = self.conv2(self.conv1(x, n), n)  # (N·T, C, H, W) -> (N·T, P, H/s, W/s)
        out = self.conv3(out, n, residual=identity)  # -> (N·T, 4P, H/s, W/s)
        if self.non_local is not None:
            out = self.non_local(out, n)
        return out


class FastI3D(nn.Module):
    """The fast engine of a :class:`Recognizer`: uint8 ``(N, 3, T, H, W)`` in, float32 ``(N, classes)`` logits out."""

    def __init__(self, recognizer: Recognizer, precision: str = "fp32", epilogue: str = "torch") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if epilogue not in EPILOGUES:
            raise ValueError(f"unknown epilogue {epilogue!r}; choose one of {', '.join(EPILOGUES)}")
        self.precision, self.epilogue, dtype = precision, epilogue, PRECISIONS[precision]
        net: I3D = recognizer.network
        mean, std = recognizer.normalize.mean.flatten(), recognizer.normalize.std.flatten()
        self.register_buffer("mean", mean.clone(), persistent=False)
        weight, bias = fold(net.stem)  # (64, 3, kt, 7, 7)
        weight = weight / std.double().view(1, 3, 1, 1, 1)  # the input arrives as x - mean: fold 1/std in
        co, _, kt, kh, kw = weight.shape
        stem = weight.permute(0, 2, 1, 3, 4).reshape(co, kt * 3, 1, kh, kw)  # channel k·3 + c: tap k, colour c
        self.channels = -(-kt * 3 // 8) * 8  # 15 -> 16: zero weights on the padding channels
        stem = torch.cat([stem, stem.new_zeros(co, self.channels - kt * 3, 1, kh, kw)], dim=1)
        self.stem = Conv(
            stem, bias, net.stem.conv.stride[1], padding=net.stem.conv.padding[1], dtype=dtype, epilogue=epilogue
        )
        self.taps, self.pad_t = kt, net.stem.conv.padding[0]
        pool_stride = net.maxpool.stride if isinstance(net.maxpool.stride, int) else net.maxpool.stride[0]
        self.step = net.stem.conv.stride[0] * pool_stride  # the max-pool (temporal kernel 1) keeps every other frame
        self.layers = nn.ModuleList(
            nn.ModuleList(FastBottleneck(b, dtype, epilogue) for b in layer)
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4)
        )
        if isinstance(net.fc, nn.Identity):  # a feature extractor (Recognizer.features_only): the pooled features
            self.fc = None
        else:
            self.fc = nn.Linear(net.fc.in_features, net.fc.out_features).to(dtype)
            self.fc.load_state_dict({k: v.to(dtype) for k, v in net.fc.state_dict().items()})
        self.dtype = dtype
        self.requires_grad_(False)
        self.eval()

    def stem_input(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, 3, T, H, W)`` -> ``(N·T', 16, H, W)`` channels-last: for each kept stem frame i, channel
        ``k·3 + c`` holds ``x[c, step·i - pad + k] - mean[c]``, zero outside the clip (the stem's temporal padding).

        Gathered plane by plane (whole H x W planes: coalesced copies), then turned channels-last in one pass."""
        n, _, t, h, w = video.shape
        steps = (t + 2 * self.pad_t - self.taps) // self.step + 1
        x = torch.empty((n, steps, self.channels, h, w), dtype=self.dtype, device=video.device)
        x[:, :, 3 * self.taps :] = 0
        frames = video.transpose(1, 2)  # (N, T, 3, H, W), a view
        for k in range(self.taps):
            first = max(0, -(-(self.pad_t - k) // self.step))  # first step whose tap k lies inside the clip
            last = min(steps - 1, (t - 1 + self.pad_t - k) // self.step)
            x[:, :first, 3 * k : 3 * k + 3] = 0
            x[:, last + 1 :, 3 * k : 3 * k + 3] = 0
            if first <= last:
                source = frames[:, self.step * first - self.pad_t + k :: self.step][:, : last - first + 1]
                torch.sub(source, self.mean.view(3, 1, 1), out=x[:, first : last + 1, 3 * k : 3 * k + 3])  # + cast
        return x.view(n * steps, self.channels, h, w).contiguous(memory_format=torch.channels_last)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        n = video.shape[0]
        x = self.stem(self.stem_input(video))  # -> (N·T/4, 64, H/2, W/2): stem frames 0, 2, 4, ...
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
        return pooled if self.fc is None else self.fc(pooled.to(self.dtype)).float()  # -> (N, classes)
