"""Which frames a decoding pass keeps: planned from the container's frame count, then, if that was wrong (headers
lie), a second pass with the count the first one found. Shared by the CPU and GPU readers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import VideoError


def in_two_passes(path, guess: int, sample: Callable[[int], np.ndarray], *, decode_pass) -> tuple:
    """Decode a video planned for the header's frame count ``guess``; if the real count needs other frames (headers
    lie), once more with the now exact count. ``decode_pass(planned)`` decodes one pass keeping the ``planned``
    (sorted) frames and returns ``(frames decoded, kept frames)``. Returns ``(num_frames, indices, frames, table)``
    as :func:`read_sampled_frames` does."""
    for _ in range(2):
        try:
            planned = np.unique(sample(guess)) if guess > 0 else np.empty(0, np.int64)  # sorted
        except ValueError:  # too short by the header's count: the pass counts them; pass_complete says why
            planned = np.empty(0, np.int64)
        count, frames = decode_pass(planned)
        indices = pass_complete(path, count, sample, planned=planned, frames=frames)
        if indices is not None:
            return count, indices, frames, np.searchsorted(planned, indices)
        guess = count  # the header was wrong: a second pass with the exact count
    raise VideoError(f"{path}: the frame count changed between two decoding passes")


def pass_complete(path, count: int, sample, *, planned: np.ndarray, frames) -> np.ndarray | None:
    """After a decoding pass planned for ``planned`` frames: the sampled indices if the pass holds exactly the frames
    sampling ``count`` frames needs, else None (another pass, with the exact count, is needed)."""
    if count == 0:
        raise VideoError(f"{path}: no decodable frames")
    try:
        indices = sample(count)
    except ValueError as e:  # fewer frames than the model's shortest input (a whole-video network's)
        raise VideoError(f"{path}: {e}") from None
    return indices if frames is not None and np.array_equal(np.unique(indices), planned) else None
