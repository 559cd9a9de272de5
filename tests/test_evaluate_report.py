"""``report.html`` and the figures: numbers equal metrics.json, a row per class, offline, failures shown, a browser."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from browser import chromium, render
from i3d_infer.evaluate.outputs import write_outputs
from i3d_infer.evaluate.report import class_rows, confused_pairs, published
from i3d_infer.evaluate.results import Timing, VideoResult
from i3d_infer.evaluate.rundir import EvalConfig
from i3d_infer.model.weights import DEFAULT_WEIGHTS, I3D_NL_DOT_PRODUCT_R50_K400_V1, read_labels

LABELS = read_labels()
SCREENSHOT = Path(__file__).parent.parent / "docs" / "report.png"


def synthetic_records(classes: int, per_class: int, failures: int = 2, seed: int = 0) -> list[VideoResult]:
    """Videos of ``classes`` Kinetics classes, ~70% right, mistakes mostly to a neighbouring class."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(classes * per_class):
        label = (i % classes) * 7
        logits = rng.normal(0, 1, 400)
        target = (
            label if rng.random() < 0.7 - 0.4 * (label % 3 == 0) else (label + 7 * rng.integers(1, 3)) % (7 * classes)
        )
        logits[target] += 4 + rng.random() * 3
        scores = np.exp(logits) / np.exp(logits).sum()
        records.append({"index": i, "video": f"v{i:04d}.mp4", "label": label, "scores": scores.tolist(), "error": None})
    for record in records[:failures]:
        record.update(scores=None, error=f"/data/{record['video']}: cannot open as a video (Invalid data)")
    return [VideoResult.from_json(record) for record in records]


def write_run(out: Path, records: list[VideoResult], timing: Timing | None = None):
    out.mkdir(parents=True, exist_ok=True)
    config = EvalConfig(
        list_file="/data/val_list_videos.txt", root="/data", checkpoint="synthetic.pth", batch_size=8, precision="fp16"
    )
    timing = timing or Timing(wall_seconds=12.5, model_seconds=10.0, waiting_for_data_seconds=1.0,
                              videos_this_session=len(records), videos_per_s=len(records) / 12.5, device="cuda:0",
                              workers=15)  # fmt: skip
    return write_outputs(out, records, LABELS, config=config, timing=timing, complete=True)


class Tables(HTMLParser):
    """The text of every table cell, by table id, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current, self.row, self.cell = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("id") or f"t{len(self.tables)}", [])
        elif tag == "tr" and self.current is not None:
            self.row = []
            self.current.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(text: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(text)
    return parser.tables


def without_run_section(text: str) -> str:
    return re.sub(r'<section id="run">.*?</section>', "", text, flags=re.S)


def test_report_numbers_rows_failures_and_no_network(tmp_path):
    records = synthetic_records(classes=12, per_class=5)
    record = write_run(tmp_path / "run", records)
    text = (tmp_path / "run" / "report.html").read_text()
    assert record.report == tmp_path / "run" / "report.html"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    tables = tables_of(text)
    headline = {row[0]: row[1:] for row in tables["t0"][1:]}
    for key, label in (
        ("all_videos", "all listed videos (unreadable = wrong)"),
        ("readable_videos", "readable videos"),
    ):
        expected = [f"{100 * metrics[key][n]:.2f}" for n in ("top1_acc", "top5_acc", "mean_class_accuracy")]
        assert headline[label] == expected
    classes = tables["classes"][1:]
    assert len(classes) == len({r.label for r in records}) == 12  # one row per class present
    per_class = {int(row[0]): row for row in classes}
    truth = np.array([r.label for r in records])
    for c, row in per_class.items():
        assert row[1] == LABELS[c] and int(row[2]) == int((truth == c).sum())
    assert not re.search(r"https?://", text)  # nothing to load: images inline, no script or font from the network
    assert "<script src" not in text and 'rel="stylesheet"' not in text
    assert text.count("data:image/png;base64,") == 3  # per class, confusion matrix (12 classes), confidence
    failures = re.search(r'<ul id="failures">(.*?)</ul>', text, flags=re.S).group(1)
    assert failures.count("<li>") == 2 and "v0000.mp4" in failures and "cannot open as a video" in failures
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"per_class_accuracy.png", "confusion_matrix.png", "confidence.png"} <= files
    assert "top_confusions.png" not in files


def test_published_figures_only_for_the_published_setting():
    seed, v1 = DEFAULT_WEIGHTS.filename, I3D_NL_DOT_PRODUCT_R50_K400_V1.filename
    own_0x = json.loads(json.dumps(dataclasses.asdict(DEFAULT_WEIGHTS.preprocessing)))
    own_1x = {**own_0x, "sampling": "1.x"}
    assert published({"protocol": "seed", "checkpoint": None})[:2] == (70.03, 89.51)
    assert published({"protocol": "seed", "checkpoint": None, "preprocessing": own_0x})[:2] == (70.03, 89.51)
    assert published({"protocol": "threecrop", "checkpoint": f"/ckpt/{seed}"})[:2] == (73.92, 91.59)
    assert published({"protocol": "centercrop", "checkpoint": None}) is None
    assert published({"protocol": "seed", "checkpoint": "mine.pth"}) is None
    assert published({"protocol": "seed", "checkpoint": None, "random_weights": True}) is None
    assert published({"protocol": "seed", "checkpoint": None, "model": "i3d.onnx"}) is None
    # The 1.x checkpoint: its figures with three crops and its own 1.x sampling, by name or by its sha256 prefix.
    threecrop_1x = {"protocol": "threecrop", "preprocessing": own_1x}
    assert published({**threecrop_1x, "checkpoint": f"/ckpt/{v1}"}) == (74.80, 92.07, "the mmaction2 1.x model zoo")
    assert published({**threecrop_1x, "checkpoint": "/ckpt/renamed-8e1f2148.pth"})[:2] == (74.80, 92.07)
    assert published({**threecrop_1x, "checkpoint": f"/ckpt/{v1}", "preprocessing": own_0x}) is None
    assert published({**threecrop_1x, "checkpoint": f"/ckpt/{v1}", "protocol": "seed"}) is None
    assert published({"protocol": "seed", "checkpoint": None, "preprocessing": own_1x}) is None
    assert published({"protocol": "seed", "checkpoint": None, "preprocessing": {**own_0x, "num_clips": 5}}) is None


def test_many_classes_get_top_confusions_instead_of_a_matrix(tmp_path):
    write_run(tmp_path / "run", synthetic_records(classes=40, per_class=3, failures=0))
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert "top_confusions.png" in files and "confusion_matrix.png" not in files
    pairs = tables_of((tmp_path / "run" / "report.html").read_text())["pairs"][1:]
    counts = [int(row[2]) for row in pairs]
    assert 0 < len(pairs) <= 20 and counts == sorted(counts, reverse=True)


def test_merged_report_equals_single_apart_from_timing(tmp_path):
    records = synthetic_records(classes=6, per_class=4)
    write_run(tmp_path / "single", records)
    write_run(tmp_path / "merged", records, timing=Timing(merged_from=["runs/s0", "runs/s1"]))
    single, merged = ((tmp_path / d / "report.html").read_text() for d in ("single", "merged"))
    assert single != merged and without_run_section(single) == without_run_section(merged)
    assert "merged from" in merged and "videos/s" in single


def test_random_weights_are_named_as_such(tmp_path):
    records = synthetic_records(classes=3, per_class=2, failures=0)
    config = EvalConfig(list_file="/data/l.txt", root="/data", random_weights=True)
    write_outputs(tmp_path, records, LABELS, config=config, timing=Timing(wall_seconds=1.0), complete=True)
    text = (tmp_path / "report.html").read_text()
    assert "seeded random weights" in text and "published" not in text


def test_class_rows_and_pairs_by_hand():
    scores = np.eye(400)[[1, 2, 2, 0, 2]]  # predictions 1, 2, 2, 0, 2
    truth = np.array([1, 1, 1, 2, 0])
    readable = np.array([True, True, True, True, False])
    rows = {r.index: r for r in class_rows(scores, truth, readable, labels=LABELS)}
    assert rows[1].videos == 3 and rows[1].top1 == pytest.approx(1 / 3)
    assert rows[1].confused_with == LABELS[2] and rows[1].confused_count == 2
    assert rows[0].top1 == 0.0 and rows[0].top5 == 0.0 and rows[0].confused_with is None  # unreadable: wrong
    pred = np.argmax(scores, axis=1)
    assert confused_pairs(truth[readable], pred[readable], LABELS) == [
        (LABELS[1], LABELS[2], 2, pytest.approx(2 / 3)),
        (LABELS[2], LABELS[0], 1, 1.0),
    ]


@pytest.mark.skipif(chromium() is None, reason="no chromium here (Debian package; .ci/run installs it)")
def test_report_in_a_real_browser(tmp_path):
    """The page's script runs in Chromium: ``#sort=-top1`` sorts the class table on load; screenshot kept."""
    write_run(tmp_path / "run", synthetic_records(classes=40, per_class=4))
    screenshot = tmp_path / "report.png"
    dom = render(tmp_path / "run" / "report.html", "sort=-top1", screenshot)
    assert 'data-sorted="top1"' in dom
    rows = tables_of(dom)["classes"][1:]
    top1 = [float(row[3]) for row in rows]
    assert len(rows) == 40 and top1 == sorted(top1, reverse=True) and top1[0] > top1[-1]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("I3D_RECORD_SCREENSHOT"):  # the README's picture: I3D_RECORD_SCREENSHOT=1 pytest -k browser
        shutil.copyfile(screenshot, SCREENSHOT)
