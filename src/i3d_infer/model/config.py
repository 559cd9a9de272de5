"""The architecture of an I3D ResNet-3D classifier, as data (no torch: the CLI reads it without loading torch)."""

from __future__ import annotations

from dataclasses import dataclass

STAGE_DEPTHS = {50: (3, 4, 6, 3)}


@dataclass(frozen=True)
class I3DConfig:
    """The architecture of an I3D ResNet-3D classifier."""

    depth: int = 50  # ResNet depth; selects blocks per stage from STAGE_DEPTHS
    num_classes: int = 400  # outputs of the linear head
    # Per stage, per block: 1 = conv1 is a (3,1,1) temporal conv ("inflated"), 0 = a 1x1x1 conv.
    inflate: tuple[tuple[int, ...], ...] = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
    # Per stage, per block: 1 = a non-local block follows the block's residual add and ReLU.
    non_local: tuple[tuple[int, ...], ...] = ((0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0))
    non_local_mode: str = "dot_product"  # the only mode mmaction2 publishes I3D checkpoints for
    stem_kernel: tuple[int, int, int] = (5, 7, 7)  # (t, h, w) of the first conv; stride (2, 2, 2)
    base_planes: int = 64  # planes of stage 1; stage i has base_planes * 2**i

    def __post_init__(self) -> None:
        depths = STAGE_DEPTHS.get(self.depth)
        if depths is None:
            raise ValueError(f"unsupported depth {self.depth}; supported: {sorted(STAGE_DEPTHS)}")
        for name in ("inflate", "non_local"):
            table = getattr(self, name)
            if tuple(len(stage) for stage in table) != depths:
                raise ValueError(f"{name} table must have {depths} blocks per stage, got {table}")
        if self.non_local_mode != "dot_product":
            raise ValueError(f"unsupported non-local mode {self.non_local_mode!r}; supported: 'dot_product'")


def i3d_nl_dot_product_r50(num_classes: int = 400) -> I3DConfig:
    """The official ``i3d_nl_dot_product_r50_32x2x1_100e_kinetics400_rgb`` architecture (35,397,840 parameters)."""
    return I3DConfig(
        depth=50,
        num_classes=num_classes,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        non_local=((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0)),
    )


def i3d_r50(num_classes: int = 400) -> I3DConfig:
    """Plain I3D R50 (``i3d_r50_32x2x1_100e_kinetics400_rgb``): the same network without non-local blocks."""
    return I3DConfig(
        depth=50, num_classes=num_classes, non_local=((0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0))
    )
