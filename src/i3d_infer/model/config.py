"""The architecture of an I3D ResNet-3D classifier, as data (no torch: the CLI reads it without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass

STAGE_DEPTHS = {50: (3, 4, 6, 3)}
# mmcv NonLocal3d's pairwise functions that mmaction2 publishes I3D checkpoints for (sub-sampled, use_scale False):
# dot_product: theta^T phi / M; embedded_gaussian: softmax(theta^T phi); gaussian: softmax(x^T x), no theta/phi convs
NON_LOCAL_MODES = ("dot_product", "embedded_gaussian", "gaussian")
NL_PLACEMENT = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))  # every other block of stages 2 and 3
NO_NON_LOCAL = ((0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0))


@dataclass(frozen=True)
class I3DConfig:
    """The architecture of an I3D ResNet-3D classifier."""

    depth: int = 50  # ResNet depth; selects blocks per stage from STAGE_DEPTHS
    num_classes: int = 400  # outputs of the linear head
    # Per stage, per block: 1 = conv1 is a (3,1,1) temporal conv ("inflated"), 0 = a 1x1x1 conv.
    inflate: tuple[tuple[int, ...], ...] = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
    # Per stage, per block: 1 = a non-local block follows the block's residual add and ReLU.
    non_local: tuple[tuple[int, ...], ...] = ((0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0))
    non_local_mode: str = "dot_product"  # one of NON_LOCAL_MODES
    stem_kernel: tuple[int, int, int] = (5, 7, 7)  # (t, h, w) of the first conv; stride (stem_stride_t, 2, 2)
    base_planes: int = 64  # planes of stage 1; stage i has base_planes * 2**i
    stem_stride_t: int = 2  # temporal stride of the first conv (mmaction2 conv1_stride_t; "heavy": 1)
    pool1_stride_t: int = 2  # temporal stride of the max-pool after it (pool1_stride_t; "heavy": 1)

    def __post_init__(self) -> None:
        depths = STAGE_DEPTHS.get(self.depth)
        if depths is None:
            raise ValueError(f"unsupported depth {self.depth}; supported: {sorted(STAGE_DEPTHS)}")
        for name in ("inflate", "non_local"):
            table = getattr(self, name)
            if tuple(len(stage) for stage in table) != depths:
                raise ValueError(f"{name} table must have {depths} blocks per stage, got {table}")
        if self.non_local_mode not in NON_LOCAL_MODES:
            raise ValueError(f"unsupported non-local mode {self.non_local_mode!r}; supported: {NON_LOCAL_MODES}")

    @property
    def feature_dim(self) -> int:
        """Channels of the last stage: the size of the pooled feature (Bottleneck expansion 4)."""
        return self.base_planes * 8 * 4


def i3d_nl_dot_product_r50(num_classes: int = 400) -> I3DConfig:
    """The official ``i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb`` architecture (35,397,840 parameters)."""
    return I3DConfig(
        depth=50,
        num_classes=num_classes,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        non_local=NL_PLACEMENT,
    )


def i3d_nl_embedded_gaussian_r50(num_classes: int = 400) -> I3DConfig:
    """``i3d_nl_embedded_gaussian_r50``: the dot-product network's blocks with a softmax over theta^T phi."""
    return I3DConfig(num_classes=num_classes, non_local=NL_PLACEMENT, non_local_mode="embedded_gaussian")


def i3d_nl_gaussian_r50(num_classes: int = 400) -> I3DConfig:
    """``i3d_nl_gaussian_r50``: non-local blocks comparing the features themselves (no theta / phi embeddings)."""
    return I3DConfig(num_classes=num_classes, non_local=NL_PLACEMENT, non_local_mode="gaussian")


def i3d_r50(num_classes: int = 400) -> I3DConfig:
    """Plain I3D R50 (``i3d_r50_32x2x1_100e_kinetics400_rgb``): the same network without non-local blocks."""
    return I3DConfig(depth=50, num_classes=num_classes, non_local=NO_NON_LOCAL)


def i3d_r50_heavy(num_classes: int = 400) -> I3DConfig:
    """``i3d_imagenet-pretrained-r50-heavy``: every block's conv1 inflated to (3,1,1), no temporal stride before
    pool2 (conv1_stride_t = pool1_stride_t = 1), so stages 1-4 see 16 frames of a 32-frame clip, not 8."""
    inflate_all = ((1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1))
    return I3DConfig(
        num_classes=num_classes, inflate=inflate_all, non_local=NO_NON_LOCAL, stem_stride_t=1, pool1_stride_t=1
    )


@dataclass(frozen=True)
class Unit:
    """An Inception I3D ``Unit3D``: conv (TF SAME padding, no bias) -> BatchNorm (no gamma, eps 1e-3) -> ReLU."""

    name: str  # DeepMind's endpoint name (also pytorch-i3d's module name)
    out: int  # output channels
    kernel: tuple[int, int, int]  # (t, h, w)
    stride: tuple[int, int, int] = (1, 1, 1)


@dataclass(frozen=True)
class Pool:
    """A max-pool with TF SAME padding (padded cells ignored)."""

    name: str
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]


@dataclass(frozen=True)
class Mixed:
    """An Inception block: four branches concatenated on channels — 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 -> 3x3x3;
    max-pool 3x3x3 stride 1 -> 1x1x1."""

    name: str
    widths: tuple[int, int, int, int, int, int]  # b0, b1a -> b1b, b2a -> b2b, b3b

    @property
    def out(self) -> int:
        b0, _, b1, _, b2, b3 = self.widths
        return b0 + b1 + b2 + b3


# DeepMind's InceptionI3d (kinetics-i3d i3d.py), endpoint by endpoint up to Mixed_5c; then Logits.
INCEPTION_V1 = (
    Unit("Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    Pool("MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2)),
    Unit("Conv3d_2b_1x1", 64, (1, 1, 1)),
    Unit("Conv3d_2c_3x3", 192, (3, 3, 3)),
    Pool("MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    Mixed("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    Mixed("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    Pool("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    Mixed("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    Mixed("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    Mixed("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    Mixed("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    Mixed("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    Pool("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    Mixed("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    Mixed("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


@dataclass(frozen=True)
class InceptionConfig:
    """The architecture of DeepMind's Inception-v1 I3D (RGB or flow stream)."""

    num_classes: int = 400  # outputs of the Logits conv (400 Kinetics-400, 600, 157 Charades, ...)
    in_channels: int = 3  # 3: RGB; 2: optical flow (x, y)
    layers: tuple = INCEPTION_V1  # Unit / Pool / Mixed, in order
    logits_pool: tuple[int, int, int] = (2, 7, 7)  # AvgPool kernel (t, h, w), stride 1, VALID, before the logits

    @property
    def feature_dim(self) -> int:
        """Channels of the last Mixed block: the size of the pooled feature."""
        return self.layers[-1].out

    @property
    def min_input(self) -> tuple[int, int]:
        """The shortest clip (frames) and smallest side (pixels) the network takes: the AvgPool needs
        ``logits_pool`` cells after the layers' strides (each stride-s SAME layer maps n to ceil(n / s))."""
        strides = [layer.stride for layer in self.layers if not isinstance(layer, Mixed)]
        out = []
        for axis in (0, 1):
            total = 1
            for stride in strides:
                total *= stride[axis]
            out.append((self.logits_pool[axis] - 1) * total + 1)
        return out[0], out[1]


def inception_i3d(num_classes: int = 400) -> InceptionConfig:
    """The RGB stream of DeepMind's Inception I3D (12,697,264 parameters with 400 classes)."""
    return InceptionConfig(num_classes=num_classes, in_channels=3)


def inception_i3d_flow(num_classes: int = 400) -> InceptionConfig:
    """The optical-flow stream: the same network on 2 channels (flow x, y)."""
    return InceptionConfig(num_classes=num_classes, in_channels=2)
