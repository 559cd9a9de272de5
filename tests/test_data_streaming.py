"""Dense clips streamed in one pass: mmaction2's UntrimmedSampleFrames placement exactly, for every length, in
bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from i3d_infer.data.decode import FrameSource
from i3d_infer.data.sampling import DenseClips, untrimmed_frame_indices
from i3d_infer.data.streaming import StreamEnd, stream_clips
from i3d_infer.errors import VideoError
from mmaction_reference import mmaction2_untrimmed_frame_inds


class Counted(FrameSource):
    """``n`` frames whose pixels say their number (R: low byte, G: high byte), 25 frames a second."""

    name = "counted"
    fps = 25.0

    def __init__(self, n: int) -> None:
        super().__init__(f"counted-{n}")
        self.n, self.index = n, -1

    def frame_count_hint(self) -> int:
        return self.n

    @property
    def last_time(self):
        return self.index / 25

    def frames(self):
        for i in range(self.n):
            self.index = i
            yield lambda transform=None, out=None, i=i: np.array([[[i % 256, i // 256, 7]]], np.uint8)


def streamed(n: int, clips: DenseClips, chunk: int = 8):
    end = StreamEnd()
    chunks = list(stream_clips(Counted(n), clips, lambda f: f, chunk=chunk, end=end))
    indices = np.concatenate([c.frame_indices for c in chunks])
    pixels = np.concatenate([c.frames[c.table][..., 0, 0, :2].astype(np.int64) @ [1, 256] for c in chunks])
    return chunks, indices, pixels, end


@pytest.mark.parametrize(
    ("clip_len", "clip_interval", "frame_interval"), [(32, 16, 2), (16, 16, 1), (8, 4, 4), (1, 1, 1), (5, 7, 3)]
)
def test_placement_equals_mmaction2_for_every_length(clip_len, clip_interval, frame_interval):
    clips = DenseClips(clip_len, clip_interval, frame_interval)
    for n in [*range(1, 100), 300, 1001]:
        expected = mmaction2_untrimmed_frame_inds(n, clip_len, clip_interval, frame_interval)
        ours = untrimmed_frame_indices(n, clips)
        _, indices, pixels, end = streamed(n, clips, chunk=3)
        if expected is None:  # too short for a centre: one clip on the middle frame (mmaction2 fails)
            expected = np.clip(
                n // 2
                + np.arange(
                    -(clip_len // 2) * frame_interval, frame_interval * (clip_len - clip_len // 2), frame_interval
                ),
                0,
                n - 1,
            )[None]
        np.testing.assert_array_equal(ours, expected, err_msg=str(n))
        np.testing.assert_array_equal(indices, expected, err_msg=str(n))
        np.testing.assert_array_equal(pixels, expected, err_msg=str(n))  # the frames are the indexed ones
        assert (end.num_frames, end.num_clips) == (n, len(expected))


@pytest.mark.parametrize("tail", ["drop", "pad"])
def test_windows_placed_alike_streamed_and_at_once(tail):
    """The Inception windows (``windows``): the streamed placement and ``untrimmed_frame_indices`` (what the GPU
    readers sample) agree for every length, the too-short ones included."""
    from i3d_infer.data.sampling import windows
    from i3d_infer.errors import VideoError

    clips = windows(16, 4, tail=tail)
    for n in range(1, 90):
        try:
            _, indices, _, _ = streamed(n, clips, chunk=3)
        except VideoError:
            with pytest.raises(ValueError, match="fewer than one window"):
                untrimmed_frame_indices(n, clips)
            assert tail == "drop" and n < 16
            continue
        np.testing.assert_array_equal(untrimmed_frame_indices(n, clips), indices, err_msg=str(n))


def test_memory_does_not_grow_with_the_length():
    clips = DenseClips()
    held = [streamed(n, clips)[3].max_frames_held for n in (300, 3000, 30000)]
    assert held[0] == held[1] == held[2] <= 63 + 8 * 16  # one clip's span and a chunk's centres
    chunks = streamed(30000, clips)[0]
    assert max(c.frames.shape[0] for c in chunks) <= 32 + 7 * 8  # a chunk of 8 clips shares frames


def test_chunk_facts_and_times():
    chunks, _, _, end = streamed(100, DenseClips(), chunk=4)
    assert [c.first_clip for c in chunks] == [0, 4]
    seconds = np.concatenate([c.seconds for c in chunks])
    centres = 8 + 16 * np.arange(6)
    np.testing.assert_array_equal(np.concatenate([c.centres for c in chunks]), centres)
    np.testing.assert_allclose(seconds[:, 1], centres / 25)
    np.testing.assert_allclose(seconds[:, 0], np.maximum(centres - 32, 0) / 25)
    np.testing.assert_allclose(seconds[:, 2], np.minimum(centres + 30, 99) / 25)
    assert (end.fps, end.decoder) == (25.0, "counted")


def test_no_frames_is_one_line():
    with pytest.raises(VideoError, match="counted-0: no decodable frames"):
        list(stream_clips(Counted(0), DenseClips(), lambda f: f))
