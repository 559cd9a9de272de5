"""List files (spec §2.2) and the dataset reader the evaluation uses: per video its id, label and uint8 views."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HandOver, I3DError, VideoError
from ..model.weights import DEFAULT_WEIGHTS, Preprocessing
from .decode import DEFAULT_DECODER
from .flow import FlowMethod
from .pipeline import VideoFrames, VideoViews, read_frames, read_video, sampler, video_frames
from .transforms import get_protocol

# list format -> the fields of its lines (mmaction2's VideoDataset, RawframeDataset, RawframeDataset(with_offset=True))
LIST_LINES = {
    "videos": "<video> <label>",
    "rawframes": "<frame_dir> <total_frames> <label>",
    "rawframes_offset": "<frame_dir> <offset> <total_frames> <label>",
}
LIST_FORMATS = tuple(LIST_LINES)
_BY_FIELD_COUNT = {len(fields.split()): name for name, fields in LIST_LINES.items()}


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file."""

    video_id: str  # the path as written in the list (relative to the root)
    label: int  # class index
    total_frames: int | None  # rawframes only: the frame count the list states (used for sampling, like mmaction2)
    offset: int = 0  # rawframes_offset only: files before frame 0 (frame k is img_{offset + k + 1:05d}.jpg)


def read_list(path: str | os.PathLike, list_format: str | None = None) -> tuple[str, list[ListEntry]]:
    """Parse a list file in one of :data:`LIST_LINES`' formats.

    The format is guessed from the first line's field count when not given. Returns ``(format, entries)``.

    Raises:
        I3DError: naming the file and line of the first malformed line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise I3DError(f"{path}: cannot read list file ({e})") from e
    if list_format is not None and list_format not in LIST_LINES:
        raise I3DError(f"unknown list format {list_format!r}; choose one of {', '.join(LIST_FORMATS)}")
    entries = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if list_format is None and len(fields) not in _BY_FIELD_COUNT:
            known = "; ".join(f"{name}: {syntax}" for name, syntax in LIST_LINES.items())
            raise I3DError(f"{path}:{number}: list line {line.strip()!r} is in no known format ({known})")
        list_format = list_format or _BY_FIELD_COUNT[len(fields)]
        expected = LIST_LINES[list_format]
        if len(fields) != len(expected.split()) or not all(f.isdigit() for f in fields[1:]):
            raise I3DError(f"{path}:{number}: malformed {list_format} list line {line.strip()!r} (expected {expected})")
        numbers = [int(f) for f in fields[1:]]
        if list_format == "rawframes_offset":
            entries.append(ListEntry(fields[0], numbers[2], numbers[1], offset=numbers[0]))
        else:
            entries.append(ListEntry(fields[0], numbers[-1], numbers[0] if list_format == "rawframes" else None))
    if list_format is None:
        raise I3DError(f"{path}: empty list file")
    return list_format, entries


@dataclass(frozen=True)
class Sample:
    """One video of a dataset: its views, or why they could not be read."""

    index: int  # position in the list
    video_id: str
    label: int
    views: VideoViews | None  # dataset[i]: the views; None when the video failed (or frames were asked for)
    error: str | None = None  # one line naming the file and the reason
    frames: VideoFrames | None = None  # dataset.frames(i): the sampled frames, each once
    decoder: str | None = None  # what decoded the frames (GPU decoders: a CPU fallback says why)


class VideoDataset:
    """The videos of a list file under a root, read with the checkpoint's preprocessing and a view protocol
    (``flow``: with the flow stream's input too).

    ``dataset[i]`` never raises for a bad video: the sample carries the error instead.
    """

    def __init__(
        self,
        list_file: str | os.PathLike,
        root: str | os.PathLike,
        list_format: str | None = None,
        *,
        protocol: str = "seed",
        preprocessing: Preprocessing = DEFAULT_WEIGHTS.preprocessing,
        decoder: str = DEFAULT_DECODER,
        flow: FlowMethod | None = None,
    ) -> None:
        if get_protocol(protocol).mirror:  # the batch gatherers take crops of the frames as decoded, never mirrored
            raise I3DError(f"--protocol {protocol} is for i3d features and i3d predict; evaluate with fivecrop")
        self.list_format, self.entries = read_list(list_file, list_format)
        self.root = Path(root)
        self.protocol = protocol
        self.preprocessing = preprocessing
        self.decoder = decoder
        self.flow = flow  # two streams: each video's flow fields too (read_frames(flow=True))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Sample:
        entry = self.entries[index]
        try:
            views = read_video(
                self.root / entry.video_id,
                self.protocol,
                self.preprocessing,
                decoder=self.decoder,
                num_frames=entry.total_frames,
                offset=entry.offset,
                flow=self.flow,
            )
        except VideoError as e:
            return Sample(index, entry.video_id, entry.label, None, str(e))
        return Sample(index, entry.video_id, entry.label, views, decoder=views.decoder)

    def frames(
        self, index: int, allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None, threads: int = 0
    ) -> Sample:
        """The sample's frames (what the evaluation's workers send), written into ``allocate(shape)`` if given, the
        video decoded with ``threads`` threads (0: one per core)."""
        entry = self.entries[index]
        try:
            frames = read_frames(
                self.root / entry.video_id,
                self.protocol,
                self.preprocessing,
                decoder=self.decoder,
                num_frames=entry.total_frames,
                allocate=allocate,
                threads=threads,
                offset=entry.offset,
                flow=self.flow,
            )
        except VideoError as e:
            return Sample(index, entry.video_id, entry.label, None, str(e), decoder=self.decoder)
        return Sample(index, entry.video_id, entry.label, None, frames=frames, decoder=frames.decoder)

    def read_with(self, index: int, reader) -> Sample:
        """The sample's frames read by a GPU ``reader`` (:mod:`i3d_infer.data.gpu.decode`) into device memory."""
        entry = self.entries[index]
        path = self.root / entry.video_id
        try:
            read = reader.read(path, sampler(self.preprocessing), entry.total_frames, offset=entry.offset)
        except HandOver:
            raise  # not a failure: the caller has a CPU decoder read it
        except VideoError as e:
            return Sample(index, entry.video_id, entry.label, None, str(e), decoder=reader.name)
        frames = video_frames(path, reader.protocol, read, size=self.preprocessing.crop_size, decoder=reader.name)
        return Sample(index, entry.video_id, entry.label, None, frames=frames, decoder=reader.name)

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    @property
    def labels(self) -> np.ndarray:
        """Class index of every entry, in list order."""
        return np.array([e.label for e in self.entries], dtype=np.int64)
