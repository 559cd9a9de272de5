"""Videos -> rawframe directories (mmaction2 ``build_rawframes.py --use-opencv``, spec §2.1): parallel, resumable.

``task`` flow / both also writes the TV-L1 flow images of mmaction2's tools (``data.flow``): denseflow's
``flow_x_00000.jpg`` (0-based, gray frames shrunk to the short side, rounding quantiser) or ``flow_extraction.py``'s
``x_00001.jpg`` (native size, truncating quantiser), from the same decoding pass.

Each video is decoded with ``cv2.VideoCapture`` until ``read()`` fails, resized with ``cv2.INTER_LINEAR`` and
written as ``img_00001.jpg``, ... with ``cv2.imwrite`` (BGR, JPEG quality 95 by default) into
``OUT/<relative dir>/<video name>/``. It is written into ``.tmp-<name>`` beside that and renamed into place only
when complete, so an interrupted run never leaves a half-extracted video that looks finished; a rerun skips finished
videos. A corrupt, empty or hanging video is recorded in the report and the run goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ..data.decode import OpenCVSource
from ..data.flow import OPENCV, FlowMethod, flow_fields, get_layout, quantise, shrink
from ..data.transforms import short_side_size
from ..errors import I3DError, VideoError
from ..transport.workers import run_tasks
from .annotations import VIDEO_EXTENSIONS, find_items

TASKS = ("rgb", "flow", "both")
TMP_PREFIX = ".tmp-"
REPORT_NAME = "extract_report.json"


@dataclass(frozen=True)
class ExtractOptions:
    """How frames are written."""

    size: tuple[int, int] | None = (256, 256)  # (width, height), aspect ratio ignored (the seed's choice)
    short_side: int | None = None  # instead of size: short side to this, ratio kept (spec §2.5 rounding)
    quality: int = 95  # JPEG quality (cv2.IMWRITE_JPEG_QUALITY); 95 is OpenCV's and mmcv's default
    timeout: float = 600.0  # seconds one video may take before its worker is killed
    task: str = "rgb"  # rgb: img_*.jpg; flow: TV-L1 x/y images; both (build_rawframes --task)
    flow_layout: str = "denseflow"  # names, size and quantiser of the flow images (data.flow.FLOW_LAYOUTS)
    bound: float = 20.0  # flow images: pixels mapped to 0 and 255
    new_short: int = 256  # denseflow layout: the gray frames' short side before TV-L1 (shrink only)
    flow_format: str = "jpg"  # jpg: the layout's 8-bit images; npy: <stem>.flow.npy, the float fields in pixels
    flow: FlowMethod = OPENCV  # which TV-L1 computes them, where

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise I3DError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.flow_format not in ("jpg", "npy"):
            raise I3DError(f"--flow-format must be jpg or npy, got {self.flow_format!r}")
        get_layout(self.flow_layout)

    def flow_record(self) -> dict | None:
        """What writes the flow (the report's ``flow``): the TV-L1 method's record and the layout's choices."""
        if self.task == "rgb":
            return None
        new_short = self.new_short if get_layout(self.flow_layout).shrink else None
        return {**self.flow.describe(), "layout": self.flow_layout, "format": self.flow_format, "bound": self.bound,
                "new_short": new_short}  # fmt: skip

    def resize(self, frame):
        """Resize one BGR frame as configured (``cv2.INTER_LINEAR``)."""
        h, w = frame.shape[:2]
        if self.short_side:
            target = short_side_size(h, w, self.short_side)
        elif self.size:
            target = self.size
        else:
            return frame
        return frame if target == (w, h) else cv2.resize(frame, target, interpolation=cv2.INTER_LINEAR)


def extract_video(
    video: str | os.PathLike, out_dir: str | os.PathLike, options: ExtractOptions, *, source: OpenCVSource | None = None
) -> int:
    """Write every frame of ``video`` into ``out_dir`` (created); returns the frame count.

    Raises:
        VideoError: the video cannot be opened, has no decodable frame, or a frame cannot be written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, options.quality]
    count = 0

    def write(path: Path, image) -> None:
        if not cv2.imwrite(str(path), image, params):
            raise VideoError(f"{video}: cannot write {path}")

    def rgb(frames):  # every frame written as it goes by, then on to the flow stage
        nonlocal count
        for count, frame in enumerate(frames, start=1):
            if options.task != "flow":
                write(out / f"img_{count:05d}.jpg", options.resize(frame))
            yield frame

    frames = rgb((source or OpenCVSource(video)).bgr_frames())
    if options.task == "rgb":
        for _ in frames:
            pass
    else:
        layout = get_layout(options.flow_layout)
        resize = partial(shrink, short=options.new_short) if layout.shrink else None
        fields = flow_fields(frames, resize=resize, method=options.flow)
        if options.flow_format == "npy":
            save_fields(fields, out / f"{Path(video).stem}.flow.npy")
        else:
            for k, field in enumerate(fields, start=layout.first_index):
                for axis, component in zip("xy", (field[..., 0], field[..., 1]), strict=True):
                    write(out / layout.pattern.format(axis, k), quantise(component, layout, options.bound))
    if count == 0:
        raise VideoError(f"{video}: no decodable frames")
    return count


def save_fields(fields, path: Path) -> int:
    """Stream float32 ``(H, W, 2)`` fields into ``path`` as one ``(N - 1, H, W, 2)`` ``.npy`` without holding them:
    raw bytes first, then the header (known once the count is) and the bytes copied behind it. Returns the count."""
    raw, count, shape = path.with_suffix(".raw"), 0, None
    with raw.open("wb") as f:
        for field in fields:
            shape = field.shape
            f.write(np.ascontiguousarray(field, dtype="<f4").tobytes())
            count += 1
    with path.open("wb") as f, raw.open("rb") as source:
        header = {"descr": "<f4", "fortran_order": False, "shape": (count, *(shape or (0, 0, 2)))}
        np.lib.format.write_array_header_1_0(f, header)
        shutil.copyfileobj(source, f, 1 << 24)
    raw.unlink()
    return count


def output_dir(out_root: Path, relative_video: Path) -> Path:
    """Where a video's frames go: its relative directory, then its name without extension."""
    return out_root / relative_video.parent / relative_video.stem


def _extract_task(task: tuple[Path, Path, ExtractOptions]) -> tuple[int, str]:
    """Extract one video into a temporary directory beside its final place, then rename it there; returns its frame
    count and what decoded it."""
    video, final, options = task
    tmp = _tmp_dir(final)
    shutil.rmtree(tmp, ignore_errors=True)
    source = OpenCVSource(video)
    try:
        frames = extract_video(video, tmp, options, source=source)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return frames, source.used


def _tmp_dir(final: Path) -> Path:
    return final.parent / f"{TMP_PREFIX}{final.name}"


@dataclass
class ExtractReport:
    """The outcome of a run; ``failed`` holds ``{"video", "reason"}`` records."""

    videos: int = 0
    extracted: int = 0
    skipped: int = 0  # already finished by an earlier run
    frames: int = 0
    seconds: float = 0.0
    failed: list[dict] = field(default_factory=list)
    handed_over: list[dict] = field(default_factory=list)  # {"video", "decoder"}: read by PyAV, and why
    flow: dict | None = None  # --task flow|both: what computed the flow (implementation, OpenCV, parameters), how

    def summary(self) -> str:
        """One line with every count."""
        rate = self.frames / self.seconds if self.seconds else 0.0
        pyav = f" ({len(self.handed_over)} read by PyAV: OpenCV could not)" if self.handed_over else ""
        return (
            f"{self.videos} videos: {self.extracted} extracted{pyav} ({self.frames} frames, {rate:.0f} frames/s), "
            f"{self.skipped} already done, {len(self.failed)} failed"
        )


def estimate_bytes(videos: list[Path], options: ExtractOptions, probe: int = 20) -> tuple[int, int]:
    """``(frames, bytes)`` the frames of ``videos`` will take, from the headers and one encoded frame of a few."""
    frame_counts, frame_bytes = [], []
    step = max(1, len(videos) // probe)
    for video in videos[::step][:probe]:
        try:
            capture = OpenCVSource(video)._open()
        except VideoError:
            continue
        frame_counts.append(max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0))
        ok, frame = capture.read()
        capture.release()
        if ok:
            encoded = cv2.imencode(".jpg", options.resize(frame), [cv2.IMWRITE_JPEG_QUALITY, options.quality])[1]
            frame_bytes.append(encoded.size)
    if not frame_counts or not frame_bytes:
        return 0, 0
    frames = int(sum(frame_counts) / len(frame_counts) * len(videos))
    return frames, int(frames * sum(frame_bytes) / len(frame_bytes) * 1.1)  # 10% for file system overhead


def extract_all(
    videos_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ExtractOptions = ExtractOptions(),
    *,
    workers: int | None = None,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    check_disk: bool = True,
    progress: bool = True,
    log=print,
) -> ExtractReport:
    """Extract every video below ``videos_dir`` into ``out_dir`` with ``workers`` processes (``i3d extract``).

    Writes ``out_dir/extract_report.json``; returns the report. Finished videos from earlier runs are skipped.

    Raises:
        I3DError: a missing input directory, or (with ``check_disk``) too little free disk space.
    """
    root, out = Path(videos_dir), Path(out_dir)
    videos = find_items(root, "videos", extensions)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob(f"{TMP_PREFIX}*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    report = ExtractReport(videos=len(videos), flow=options.flow_record())
    todo = []
    for relative in videos:
        final = output_dir(out, relative)
        if final.is_dir():
            report.skipped += 1
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            todo.append((root / relative, final))
    _check_disk(out, todo, options, report=report, check=check_disk, log=log)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    tasks = [(video, final, options) for video, final in todo]
    _run(out, tasks, workers, report=report, timeout=options.timeout, progress=progress)
    return report


def _check_disk(out: Path, todo: list, options: ExtractOptions, *, report: ExtractReport, check: bool, log) -> None:
    """Say how much the frames will take; refuse (``check``) when the disk has less free."""
    frames, needed = estimate_bytes([video for video, _ in todo], options)
    free = shutil.disk_usage(out).free
    log(
        f"{report.videos} videos ({report.skipped} already done, {len(todo)} to extract): ~{frames} frames, "
        f"~{_gb(needed)} needed, {_gb(free)} free in {out}"
    )
    if check and needed > free:
        raise I3DError(
            f"{out}: not enough disk space (~{_gb(needed)} needed, {_gb(free)} free); "
            "free some or pass --ignore-disk-check"
        )


def _run(out: Path, tasks: list, workers: int, *, report: ExtractReport, timeout: float | None, progress: bool) -> None:
    """Extract ``tasks`` on ``workers`` processes into ``report``, then write it (whatever happened)."""
    from tqdm import tqdm

    start = time.monotonic()
    results = run_tasks(
        _extract_task,
        tasks,
        workers,
        timeout=timeout,
        ordered=False,
        expected=(VideoError, OSError),
        on_abandon=lambda task: shutil.rmtree(_tmp_dir(task[1]), ignore_errors=True),
    )
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, dynamic_ncols=True)
    try:
        for result in results:
            video = str(result.task[0])
            if result.error is None:
                frames, decoder = result.value
                report.extracted += 1
                report.frames += frames
                if decoder != OpenCVSource.name:  # never silently
                    report.handed_over.append({"video": video, "decoder": decoder})
            else:
                report.failed.append({"video": video, "reason": result.error.removeprefix(f"{video}: ")})
            bar.update(1)
            rate = report.frames / max(time.monotonic() - start, 1e-9)
            bar.set_postfix(frames_per_s=f"{rate:.0f}", failed=len(report.failed))
    finally:
        bar.close()
        report.seconds = time.monotonic() - start
        report.failed.sort(key=lambda f: f["video"])
        report.handed_over.sort(key=lambda f: f["video"])
        payload = {"summary": report.summary(), **asdict(report)}
        (out / REPORT_NAME).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
