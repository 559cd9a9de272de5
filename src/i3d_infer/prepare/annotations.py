"""Kinetics annotation CSVs -> label map and list files (the seed's ``generate_labels.py``, spec §2.2), with a report.

CSV rows are ``label,youtube_id,time_start,time_end,split[,is_cc]`` after a header line. Videos are matched by
YouTube id whether named ``<id>.mp4`` (the seed) or ``<id>_<start:06d>_<end:06d>.mp4`` (the crawler, mmaction2).
Nothing here raises on bad rows or unmatched files: they are counted and listed in a :class:`ListsReport`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data.decode import RAWFRAME_PATTERN, count_rawframes
from ..errors import I3DError

KINETICS400_ANNOTATIONS = tuple(
    f"https://download.openmmlab.com/mmaction/dataset/kinetics400/annotations/kinetics_{split}.csv"
    for split in ("train", "val", "test")
)  # mmaction2's backup annotations (tools/data/kinetics/download_backup_annotations.sh), as the seed used
VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov")
SEGMENT_SUFFIX = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


def label_name(raw: str) -> str:
    """A CSV label as a class name: quotes removed, spaces as underscores (``generate_labels.py``)."""
    return raw.replace('"', "").replace(" ", "_")


@dataclass(frozen=True)
class Annotation:
    """One row of an annotation CSV."""

    youtube_id: str
    label: str  # class name (underscores)
    start: int  # seconds
    end: int
    line: int  # 1-based line number in the CSV, for reports


@dataclass
class ListsReport:
    """What matched and what did not; every list is sorted."""

    matched: int = 0
    videos_without_annotation: list[str] = field(default_factory=list)
    annotations_without_video: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    malformed_rows: list[str] = field(default_factory=list)  # "file:line: reason"
    unknown_labels: list[str] = field(default_factory=list)  # "file:line: label"

    def summary(self) -> str:
        """One line with every count."""
        return (
            f"{self.matched} matched, {len(self.videos_without_annotation)} videos without annotation, "
            f"{len(self.annotations_without_video)} annotations without video, "
            f"{len(self.duplicate_ids)} duplicate ids, {len(self.malformed_rows)} malformed rows, "
            f"{len(self.unknown_labels)} unknown labels"
        )


def read_annotations(path: str | os.PathLike, report: ListsReport) -> list[Annotation]:
    """Parse an annotation CSV; malformed rows go to ``report.malformed_rows``, never raise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise I3DError(f"{path}: cannot read annotation CSV ({e})") from e
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0][:2]] != ["label", "youtube_id"]:
        raise I3DError(f"{path}: not a Kinetics annotation CSV (expected header 'label,youtube_id,...')")
    annotations = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"{path.name}:{number}"
        if len(row) not in (5, 6):
            report.malformed_rows.append(f"{where}: expected 5 or 6 fields, got {len(row)}")
            continue
        label, youtube_id = label_name(row[0].strip()), row[1].strip()
        try:
            start, end = int(float(row[2])), int(float(row[3]))
        except ValueError:
            report.malformed_rows.append(f"{where}: time_start/time_end are not numbers")
            continue
        if not label or not youtube_id:
            report.malformed_rows.append(f"{where}: empty label or youtube_id")
            continue
        annotations.append(Annotation(youtube_id, label, start, end, number))
    return annotations


def class_names(train_csv: str | os.PathLike, report: ListsReport | None = None) -> list[str]:
    """The sorted set of class names of the training CSV: class index = position (spec §2.2)."""
    return sorted({a.label for a in read_annotations(train_csv, report or ListsReport())})


# A flow directory's x images, in either layout (data.flow): denseflow's flow_x_00000.jpg, flow_extraction's x_00001.jpg
FLOW_X_PATTERN = re.compile(r"^(flow_)?x_(\d{5,})\.jpg$")
# how mmaction2's RawFrameDataset (modality Flow) must read each layout: its default start_index 1 reads denseflow's
# 0-based names one frame late (mmaction2#2207)
FLOW_READING = {
    "denseflow": "filename_tmpl='flow_{}_{:05d}.jpg', start_index=0",
    "mmaction2-cpu": "filename_tmpl='{}_{:05d}.jpg', start_index=1 (the defaults)",
}


def count_flow(directory: str | os.PathLike) -> tuple[int, str | None]:
    """Flow fields in a directory (its x images) and their layout (None when it has none)."""
    matches = [m for m in map(FLOW_X_PATTERN.match, os.listdir(directory)) if m]
    layout = None if not matches else "denseflow" if matches[0].group(1) else "mmaction2-cpu"
    return len(matches), layout


def find_items(root: Path, kind: str, extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Path]:
    """Video files (``kind='videos'``), rawframe directories (``'rawframes'``) or flow directories (``'flow'``) below
    ``root``, sorted, relative."""
    if not root.is_dir():
        raise I3DError(f"{root}: no such directory")
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # skip temporary extraction dirs
        here = Path(directory)
        if kind == "videos":
            found += [here / f for f in files if f.rsplit(".", 1)[-1].lower() in extensions]
        elif any((FLOW_X_PATTERN if kind == "flow" else RAWFRAME_PATTERN).match(f) for f in files):
            found.append(here)
    return sorted(p.relative_to(root) for p in found)


def video_key(name: str) -> tuple[str, tuple[int, int] | None]:
    """``(youtube_id, (start, end) or None)`` from a file or directory name without extension."""
    match = SEGMENT_SUFFIX.match(name)
    if match:
        return match["id"], (int(match["start"]), int(match["end"]))
    return name, None


def match_items(
    items: list[Path], annotations: list[Annotation], classes: list[str], *, report: ListsReport, source: str
) -> list[tuple[Path, int]]:
    """Pair each item (video or rawframe dir) with its annotation's class index; the rest goes to ``report``."""
    index = {name: i for i, name in enumerate(classes)}
    by_id: dict[str, list[Annotation]] = {}
    for a in annotations:
        by_id.setdefault(a.youtube_id, []).append(a)
    report.duplicate_ids = sorted(i for i, rows in by_id.items() if len(rows) > 1)
    used, pairs = set(), []
    for item in items:
        stem = item.name if item.suffix == "" or item.is_dir() else item.stem
        youtube_id, segment = video_key(stem)
        rows = by_id.get(youtube_id) or by_id.get(stem)
        if not rows:
            report.videos_without_annotation.append(str(item))
            continue
        exact = [a for a in rows if segment is None or (a.start, a.end) == segment]
        annotation = (exact or rows)[0]
        used.add(annotation.youtube_id)
        if annotation.label not in index:
            report.unknown_labels.append(f"{source}:{annotation.line}: {annotation.label}")
            continue
        pairs.append((item, index[annotation.label]))
    report.annotations_without_video = sorted({a.youtube_id for a in annotations} - used)
    report.matched = len(pairs)
    return pairs


@dataclass(frozen=True)
class ListsResult:
    """Files written by :func:`make_lists`, and a report per list kind ("videos", "rawframes")."""

    label_map: Path
    lists: dict[str, Path]
    reports: dict[str, ListsReport]
    report_file: Path
    flow_reading: str | None = None  # how mmaction2 must read the flow list's layout (its config's settings)


def make_lists(
    train_csv: str | os.PathLike,
    split_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    videos: str | os.PathLike | None = None,
    rawframes: str | os.PathLike | None = None,
    flow: str | os.PathLike | None = None,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
) -> ListsResult:
    """Write the label map, the list file(s) of one split and a report (``i3d lists``).

    Files in ``out_dir``: ``kinetics400_label_map.txt``; ``<split>_list_videos.txt`` (``<relative/path> <label>``)
    when ``videos`` is given; ``<split>_list_rawframes.txt`` (``<frame_dir> <total_frames> <label>``) when
    ``rawframes`` is given; ``<split>_list_flow.txt`` (``<frame_dir> <flow fields> <label>``, what mmaction2's
    ``build_file_list.py`` counts) when ``flow`` is given; ``<split>_lists_report.json``. The split name is the CSV's
    (``kinetics_val.csv`` -> val).
    """
    kinds = (("videos", videos), ("rawframes", rawframes), ("flow", flow))
    roots = {kind: Path(root) for kind, root in kinds if root is not None}
    if not roots:
        raise I3DError("give --videos DIR, --rawframes DIR, --flow DIR or several")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_report = ListsReport()
    classes = class_names(train_csv, csv_report)
    annotations = read_annotations(split_csv, csv_report)
    split = Path(split_csv).stem.rsplit("_", 1)[-1]
    label_map = out / "kinetics400_label_map.txt"
    label_map.write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    lists, reports, layouts = {}, {}, set()
    for kind, root in roots.items():
        report = ListsReport(malformed_rows=list(csv_report.malformed_rows))
        items = find_items(root, kind, extensions)
        pairs = match_items(items, annotations, classes, report=report, source=Path(split_csv).name)
        if kind == "videos":
            lines = [f"{path} {label}\n" for path, label in pairs]
        elif kind == "flow":
            counts = [count_flow(root / path) for path, _ in pairs]
            layouts |= {layout for _, layout in counts}
            lines = [f"{path} {count} {label}\n" for (path, label), (count, _) in zip(pairs, counts, strict=True)]
        else:
            lines = [f"{path} {count_rawframes(root / path)} {label}\n" for path, label in pairs]
        lists[kind] = out / f"{split}_list_{kind}.txt"
        lists[kind].write_text("".join(lines), encoding="utf-8")
        reports[kind] = report
    report_file = out / f"{split}_lists_report.json"
    payload = {kind: {"summary": r.summary(), **asdict(r)} for kind, r in reports.items()}
    if len(layouts) > 1:
        raise I3DError(f"{flow}: holds flow images of both layouts ({', '.join(sorted(layouts))}); list them apart")
    reading = FLOW_READING[layouts.pop()] if layouts else None
    if reading:
        payload["flow_reading"] = reading
    report_file.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return ListsResult(label_map, lists, reports, report_file, reading)
