"""I3D ResNet-3D with optional dot-product non-local blocks (mmaction2 ``ResNet3d`` + ``I3DHead``), inference only.

The architecture is stated as literals in ``config.py`` (:func:`i3d_nl_dot_product_r50`, :func:`i3d_r50`); every
shape-changing line carries a shape comment. Module names are our own; ``checkpoint.py`` maps mmaction2's names onto
them.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .config import I3DConfig

BN_EPS = 1e-5


class InferenceOnly(nn.Module):
    """A module that stays in eval mode: BatchNorm always uses running statistics, dropout is the identity."""

    def train(self, mode: bool = True) -> InferenceOnly:
        """Refuse training mode."""
        if mode:
            raise RuntimeError(f"{type(self).__name__} is inference-only; train() is not supported")
        return super().train(False)


class ConvBN(nn.Module):
    """Conv3d without bias followed by BatchNorm3d (eps 1e-5); no activation."""

    def __init__(self, cin: int, cout: int, kernel, *, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class NonLocal(nn.Module):
    """Non-local block, sub-sampled (mmcv ``NonLocal3d``, ``sub_sample=True, use_scale=False``). ``mode``:
    ``dot_product`` (theta^T phi / M), ``embedded_gaussian`` (softmax of theta^T phi) or ``gaussian`` (softmax of
    x^T x: no theta / phi convs, phi is the pooled input itself)."""

    def __init__(self, channels: int, mode: str = "dot_product") -> None:
        super().__init__()
        inter = channels // 2
        self.mode = mode
        self.g = nn.Conv3d(channels, inter, 1)
        self.theta = nn.Conv3d(channels, inter, 1) if mode != "gaussian" else None
        self.phi = nn.Conv3d(channels, inter, 1) if mode != "gaussian" else None
        self.pool = nn.MaxPool3d((1, 2, 2))
        self.out = ConvBN(inter, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        theta = x if self.theta is None else self.theta(x)
        phi = self.pool(x if self.phi is None else self.phi(x))
        theta = theta.flatten(2).transpose(1, 2)  # (n, C', T, H, W) -> (n, N, C'), C' = C/2 (gaussian: C)
        phi = phi.flatten(2)  # (n, C', T, H/2, W/2) -> (n, C', M)
        g = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (n, C/2, M) -> (n, M, C/2)
        pairwise = theta @ phi  # (n, N, M)
        pairwise = pairwise / phi.shape[-1] if self.mode == "dot_product" else pairwise.softmax(dim=-1)
        y = (pairwise @ g).transpose(1, 2).reshape(n, -1, t, h, w)  # (n, N, C/2) -> (n, C/2, T, H, W)
        return x + self.out(y)


class Bottleneck(nn.Module):
    """ResNet bottleneck, "pytorch" style (spatial stride on conv2), conv1 optionally inflated to (3,1,1)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, *, inflate: bool, non_local: str | None) -> None:
        super().__init__()
        cout = planes * self.expansion
        if inflate:
            self.conv1 = ConvBN(cin, planes, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.conv1 = ConvBN(cin, planes, 1)
        self.conv2 = ConvBN(planes, planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))
        self.conv3 = ConvBN(planes, cout, 1)
        self.downsample = ConvBN(cin, cout, 1, stride=(1, stride, stride)) if stride != 1 or cin != cout else None
        self.non_local = NonLocal(cout, non_local) if non_local else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (n, Cin, T, H, W) -> (n, Cout, T, H/s, W/s)
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))  # (n, P, T, H, W) -> (n, P, T, H/s, W/s)
        out = self.relu(self.conv3(out) + identity)  # (n, P, ...) -> (n, 4P, ...)
        if self.non_local is not None:
            out = self.non_local(out)
        return out


class I3D(InferenceOnly):
    """I3D ResNet-3D backbone and linear head: ``(n, 3, T, H, W)`` normalized float -> ``(n, num_classes)`` logits."""

    engines = ("eager", "fast")  # the torch backend's engines for this network (runtime/fast_engine.py: FastI3D)

    def __init__(self, config: I3DConfig) -> None:
        super().__init__()
        self.config = config
        kt, kh, kw = config.stem_kernel
        stem_stride, pool_stride = (config.stem_stride_t, 2, 2), (config.pool1_stride_t, 2, 2)
        padding = (kt // 2, kh // 2, kw // 2)
        self.stem = ConvBN(3, config.base_planes, config.stem_kernel, stride=stem_stride, padding=padding)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=pool_stride, padding=(0, 1, 1))
        self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        cin = config.base_planes
        stages = []
        for i, (inflate, non_local) in enumerate(zip(config.inflate, config.non_local, strict=True)):
            planes = config.base_planes * 2**i
            blocks = []
            for j in range(len(inflate)):
                stride = 2 if i > 0 and j == 0 else 1
                mode = config.non_local_mode if non_local[j] else None
                blocks.append(Bottleneck(cin, planes, stride, inflate=bool(inflate[j]), non_local=mode))
                cin = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, config.num_classes)
        self.eval()

    def forward(self, x: torch.Tensor, prepare=None) -> torch.Tensor:
        x = x if prepare is None else prepare(x)
        x = self.relu(self.stem(x))  # (n, 3, T, H, W) -> (n, 64, T/s1, H/2, W/2)
        x = self.maxpool(x)  # -> (n, 64, T/(s1·s2), H/4, W/4); s1 = s2 = 2 but in the heavy network (1)
        x = self.layer1(x)  # -> (n, 256, T/4, H/4, W/4)
        x = self.pool2(x)  # -> (n, 256, T/8, H/4, W/4)
        x = self.layer2(x)  # -> (n, 512, T/8, H/8, W/8)
        x = self.layer3(x)  # -> (n, 1024, T/8, H/16, W/16)
        x = self.layer4(x)  # -> (n, 2048, T/8, H/32, W/32)
        x = x.mean(dim=(2, 3, 4))  # -> (n, 2048); dropout is the identity at test time
        return self.fc(x)  # -> (n, num_classes)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def drop_head(self) -> tuple | None:
        """Turn this network into a feature extractor, in place: ``(n, 2048)`` pooled features out (mmaction2
        ``FeatureHead(spatial_type='avg', temporal_type='avg')``: the mean over T, H and W of the last stage, before
        the head's dropout and fc); ``config.num_classes`` is then the feature size. Returns the fc's float32
        ``(weight (classes, dim), bias (classes,))``, None when it was already off."""
        if isinstance(self.fc, nn.Identity):
            return None
        head = (self.fc.weight.detach().float().cpu().numpy(), self.fc.bias.detach().float().cpu().numpy())
        self.config = dataclasses.replace(self.config, num_classes=self.fc.in_features)
        self.fc = nn.Identity()
        return head


class Normalize(nn.Module):
    """Turn a uint8 (or float 0..255) RGB batch into the network's input: ``(x - mean) / std`` per channel, float32
    (as many channels as ``mean`` has: a flow stream's 2)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        # Non-persistent: the checkpoint holds network weights only.
        shape = (1, len(mean), 1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std  # (n, C, T, H, W) uint8 -> float32


class Recognizer(InferenceOnly):
    """Normalization plus network (:class:`I3D`, or ``inception.InceptionI3D``): a uint8 ``(n, 3, T, H, W)`` batch of
    views in, ``(n, num_classes)`` logits out."""

    def __init__(self, network: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.network = network
        self.head: tuple | None = None  # the fc's weights once features_only() took it off
        self.eval()

    def features_only(self) -> Recognizer:
        """This recognizer turned feature extractor, in place: the network's pooled features out (its
        ``drop_head``). Returns ``self``; ``head`` is then the classifier's float32 ``(weight (classes, dim), bias
        (classes,))``, for class scores from features."""
        head = self.network.drop_head()
        self.head = head if head is not None else self.head
        return self

    @property
    def num_outputs(self) -> int:
        """Values per view: the classes, or the feature size once :meth:`features_only`."""
        net = self.network
        return net.feature_dim if self.head is not None else net.config.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x, prepare=self.normalize)  # the network normalizes what it runs (chunks of long videos)
