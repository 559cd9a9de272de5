"""The network itself: architecture literals, parameter count, shapes, equality with the functional reference."""

from __future__ import annotations

import pytest
import torch

from i3d_infer.model.checkpoint import build_model, convert_state_dict
from i3d_infer.model.config import I3DConfig, i3d_nl_dot_product_r50, i3d_r50
from i3d_infer.model.i3d import I3D
from mmaction_reference import NO_NON_LOCAL, normalize, random_state_dict, reference_forward


def test_official_parameter_count_is_exact():
    model = I3D(i3d_nl_dot_product_r50())
    assert sum(p.numel() for p in model.parameters()) == 35_397_840
    assert len(model.state_dict()) == 380  # spec §1, num_batches_tracked included


def test_plain_r50_parameter_count():
    # mmaction2's metafile for i3d_r50_32x2x1_100e_kinetics400_rgb: 28,043,472 parameters.
    assert sum(p.numel() for p in I3D(i3d_r50()).parameters()) == 28_043_472


def test_non_local_positions_and_inflation():
    model = I3D(i3d_nl_dot_product_r50())
    non_local = [name for name, m in model.named_modules() if type(m).__name__ == "NonLocal"]
    assert non_local == [f"layer2.{j}.non_local" for j in (1, 3)] + [f"layer3.{j}.non_local" for j in (1, 3, 5)]
    inflated = [name for name, m in model.named_modules() if name.endswith("conv1.conv") and m.kernel_size[0] == 3]
    expected = ["layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.2", "layer3.0", "layer3.2", "layer3.4"]
    assert inflated == [f"{b}.conv1.conv" for b in [*expected, "layer4.1"]]
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d))


def test_config_rejects_inconsistent_tables():
    with pytest.raises(ValueError, match="inflate table"):
        I3DConfig(inflate=((1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)))
    with pytest.raises(ValueError, match="depth"):
        I3DConfig(depth=101)
    with pytest.raises(ValueError, match="mode"):
        I3DConfig(non_local_mode="concatenation")  # mmcv has it; mmaction2 publishes no I3D with it


def test_training_mode_is_refused():
    model = build_model(i3d_r50())
    assert not model.training and not model.network.training
    with pytest.raises(RuntimeError, match="inference-only"):
        model.train()


@pytest.mark.parametrize("non_local", ["official", "plain"])
def test_matches_functional_reference_on_small_input(non_local):
    """Our modules + rename table == a key-by-key functional mmaction2 forward, relative error <= 1e-5."""
    table = NO_NON_LOCAL if non_local == "plain" else None
    state = random_state_dict(seed=1, **({"non_local": table} if table else {}))
    model = build_model(i3d_r50() if table else i3d_nl_dot_product_r50())
    model.network.load_state_dict(convert_state_dict(state, model.network), strict=True)
    views = torch.randint(0, 256, (2, 3, 16, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = model(views)
        reference = reference_forward(normalize(views), state, **({"non_local": table} if table else {}))
    assert ((ours - reference).abs().max() / reference.abs().max()).item() <= 1e-5


def test_non_local_path_matters(mm_state):
    """With the synthetic weights the non-local output BN is non-zero and changes the logits by >1%."""
    zeroed = {k: (torch.zeros_like(v) if "conv_out.bn.weight" in k else v) for k, v in mm_state.items()}
    x = normalize(torch.randint(0, 256, (1, 3, 16, 64, 64), dtype=torch.uint8))
    with torch.inference_mode():
        full, without = reference_forward(x, mm_state), reference_forward(x, zeroed)
    assert ((full - without).abs().max() / full.abs().max()).item() > 1e-2


@pytest.mark.slow
def test_full_size_clip_shapes_and_reference(mm_state):
    """One full 3x32x256x256 clip: the spec's stage shapes, and equality with the reference (rel. error <= 1e-5)."""
    model = build_model(i3d_nl_dot_product_r50())
    model.network.load_state_dict(convert_state_dict(mm_state, model.network), strict=True)
    shapes = {}
    for name in ("stem", "maxpool", "layer1", "pool2", "layer2", "layer3", "layer4"):
        module = getattr(model.network, name)
        module.register_forward_hook(lambda m, i, o, name=name: shapes.update({name: o.shape[1:]}))
    views = torch.randint(0, 256, (1, 3, 32, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ours = model(views)
        reference = reference_forward(normalize(views), mm_state)
    assert {k: tuple(v) for k, v in shapes.items()} == {
        "stem": (64, 16, 128, 128),
        "maxpool": (64, 8, 64, 64),
        "layer1": (256, 8, 64, 64),
        "pool2": (256, 4, 64, 64),
        "layer2": (512, 4, 32, 32),
        "layer3": (1024, 4, 16, 16),
        "layer4": (2048, 4, 8, 8),
    }
    assert ours.shape == (1, 400)
    assert ((ours - reference).abs().max() / reference.abs().max()).item() <= 1e-5
