"""Test-time frame sampling: the spec's pinned examples and properties for every N from 1 to 5000."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from i3d_infer.data.sampling import clip_offsets, sample_frame_indices
from mmaction_reference import mmaction2_test_frame_inds


@pytest.mark.parametrize(
    ("n", "offsets"),
    [
        (300, [11, 35, 59, 82, 106, 130, 154, 177, 201, 225]),
        (250, [9, 28, 46, 65, 84, 102, 121, 140, 158, 177]),
        (63, [0] * 10),
        (1, [0] * 10),
    ],
)
def test_spec_offsets_0x(n, offsets):
    assert clip_offsets(n, 32, 2, num_clips=10).tolist() == offsets


def test_short_video_loops():
    inds = sample_frame_indices(40)
    expected = list(range(0, 40, 2)) + list(range(0, 24, 2))
    assert inds.shape == (10, 32)
    assert all(row == expected for row in inds.tolist())


def test_1x_offsets():
    # round(arange(10) * (N - 63) / 9): a 1.x test clip spans (32 - 1) * 2 + 1 = 63 frames, not 64.
    assert clip_offsets(300, 32, 2, num_clips=10, mode="1.x").tolist() == [0, 26, 53, 79, 105, 132, 158, 184, 211, 237]
    # mmaction2 1.2.0 on its own demo/demo.mp4 (280 frames) and tests/data/test.avi (164 frames):
    assert clip_offsets(280, 32, 2, num_clips=10, mode="1.x").tolist() == [0, 24, 48, 72, 96, 121, 145, 169, 193, 217]
    assert clip_offsets(164, 32, 2, num_clips=10, mode="1.x").tolist() == [0, 11, 22, 34, 45, 56, 67, 79, 90, 101]
    assert clip_offsets(50, 32, 2, num_clips=10, mode="1.x").tolist() == [0] * 10
    assert clip_offsets(100, 32, 2, num_clips=1, mode="1.x").tolist() == [18]


@pytest.mark.parametrize(("clip_len", "interval"), [(32, 2), (8, 1), (8, 8), (16, 4), (1, 1)])
@pytest.mark.parametrize("num_clips", [1, 10])
def test_1x_equals_mmaction2_for_every_n(clip_len, interval, num_clips):
    for n in range(1, 2001):
        expected = mmaction2_test_frame_inds(n, clip_len, interval, num_clips)
        assert np.array_equal(sample_frame_indices(n, clip_len, interval, num_clips=num_clips, mode="1.x"), expected), n


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        sample_frame_indices(0)
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_frame_indices(10, mode="2.x")


@given(n=st.integers(1, 5000), mode=st.sampled_from(["0.x", "1.x"]))
def test_properties(n, mode):
    inds = sample_frame_indices(n, 32, 2, num_clips=10, mode=mode)
    assert inds.shape == (10, 32) and inds.dtype == np.int64
    assert inds.min() >= 0 and inds.max() < n
    offsets = clip_offsets(n, 32, 2, num_clips=10, mode=mode)
    assert np.all(np.diff(offsets) >= 0)  # clips start in order
    # Each clip steps by 2 from its offset, modulo N (looping only when it runs past the end).
    assert np.array_equal(inds, (offsets[:, None] + 2 * np.arange(32)) % n)
    if n >= 64:
        assert offsets.max() + 62 < n  # long enough: no clip loops
    if mode == "0.x" and n < 64:
        assert not offsets.any()


@given(n=st.integers(64, 5000))
def test_0x_offsets_are_centred_in_equal_segments(n):
    avg = (n - 63) / 10
    offsets = clip_offsets(n, 32, 2, num_clips=10)
    assert np.all(offsets == np.floor(np.arange(10) * avg + avg / 2))


def test_every_n_up_to_5000_exhaustively():
    for mode in ("0.x", "1.x"):
        for n in range(1, 5001):
            inds = sample_frame_indices(n, 32, 2, num_clips=10, mode=mode)
            assert inds.shape == (10, 32) and inds.min() >= 0 and inds.max() < n, (mode, n)
