"""Checkpoint reading, unwrapping, renaming and strict loading (spec §1 key names)."""

from __future__ import annotations

import re

import pytest
import torch

from i3d_infer.errors import CheckpointError
from i3d_infer.model.checkpoint import RENAME_TABLE, load_model, read_checkpoint, rename_key
from i3d_infer.model.config import i3d_r50
from i3d_infer.model.weights import I3D_R50_K400
from mmaction_reference import NO_NON_LOCAL, key_shapes, random_state_dict


def test_synthetic_checkpoint_has_the_spec_keys(mm_state):
    assert len(mm_state) == 380
    assert mm_state["backbone.conv1.conv.weight"].shape == (64, 3, 5, 7, 7)
    assert mm_state["backbone.layer2.1.non_local_block.g.0.conv.weight"].shape == (256, 512, 1, 1, 1)
    assert mm_state["backbone.layer2.1.non_local_block.conv_out.conv.weight"].shape == (512, 256, 1, 1, 1)
    assert mm_state["cls_head.fc_cls.weight"].shape == (400, 2048)


def test_every_key_matches_exactly_one_rename_row(mm_state):
    for key in mm_state:
        hits = [p for p, _ in RENAME_TABLE if re.match(p, key)]
        assert len(hits) == 1, (key, hits)


def test_loads_strictly_and_round_trips(checkpoint_file, mm_state):
    model = load_model(checkpoint_file)
    ours = model.network.state_dict()
    for key, value in mm_state.items():
        assert torch.equal(ours[rename_key(key)], value), key
    assert len(ours) == len(mm_state)


@pytest.mark.parametrize("container", ["mmaction", "bare", "module_prefix"])
def test_container_variants(tmp_path, mm_state, container):
    if container == "mmaction":
        obj = {"state_dict": mm_state, "meta": {"epoch": 100}}
    elif container == "bare":
        obj = dict(mm_state)
    else:
        obj = {"state_dict": {f"module.{k}": v for k, v in mm_state.items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    state = read_checkpoint(path)
    assert state.keys() == mm_state.keys()


def test_num_batches_tracked_may_be_absent(tmp_path, mm_state):
    path = tmp_path / "no_counters.pth"
    torch.save({k: v for k, v in mm_state.items() if not k.endswith("num_batches_tracked")}, path)
    load_model(path)  # BN counters are training bookkeeping


def test_plain_r50_checkpoint_loads(tmp_path):
    path = tmp_path / "i3d_r50.pth"
    torch.save({"state_dict": random_state_dict(seed=2, non_local=NO_NON_LOCAL)}, path)
    model = load_model(path, weights=I3D_R50_K400)
    assert model.network.config == i3d_r50()


def test_wrong_checkpoint_lists_missing_unexpected_and_misshaped(tmp_path, mm_state):
    broken = dict(mm_state)
    broken["backbone.layer1.0.conv1.conv.weight_renamed"] = broken.pop("backbone.layer1.0.conv1.conv.weight")
    del broken["backbone.layer3.5.conv2.bn.running_var"]
    broken["backbone.extra_layer.weight"] = torch.zeros(3)
    broken["cls_head.fc_cls.weight"] = torch.zeros(101, 2048)
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": broken, "meta": {}}, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "2 missing (our names): layer1.0.conv1.conv.weight, layer3.5.conv2.bn.running_var" in message
    assert "2 unexpected: backbone.layer1.0.conv1.conv.weight_renamed, backbone.extra_layer.weight" in message
    assert "1 mis-shaped: cls_head.fc_cls.weight [101, 2048] (expected [400, 2048])" in message


def test_long_lists_are_cut_with_a_count(tmp_path):
    path = tmp_path / "other_model.pth"
    torch.save({f"head.w{i}": torch.zeros(1) for i in range(12)}, path)
    with pytest.raises(CheckpointError, match=r"12 unexpected: head.w0, .*, head.w4, \.\.\. \(7 more\)"):
        load_model(path)


def test_non_local_checkpoint_into_plain_network_fails(checkpoint_file):
    with pytest.raises(CheckpointError, match=r"60 unexpected: backbone.layer2.1.non_local_block"):
        load_model(checkpoint_file, weights=I3D_R50_K400)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_truncated_checkpoint(tmp_path, checkpoint_file):
    path = tmp_path / "truncated.pth"
    path.write_bytes(checkpoint_file.read_bytes()[: checkpoint_file.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)


class Payload:
    """An object whose unpickling would run code (os.system) if pickles were trusted."""

    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/i3d_infer_pwned",))


def test_checkpoint_cannot_run_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: checkpoint not found"):
        read_checkpoint(tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="list.pth: not a state dict"):
        read_checkpoint(path)


def test_key_shapes_cover_the_model(mm_state):
    assert set(key_shapes()) == set(mm_state)
