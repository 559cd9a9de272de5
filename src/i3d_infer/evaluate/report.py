"""``RUN_DIR/report.html``: one self-contained page of an evaluation (figures inline, no script or font to fetch).

Headline accuracy (with the published figures beside ours when the run is the published setting), the run's facts
(kept in ``<section id="run">``: the only part that differs between a run and the merge of its shards), a per-class
table sortable by a click on a header and filterable by a text box (``#sort=top1`` or ``#sort=-videos`` in the
address sorts on load), the most confused class pairs, the failures with their reasons, and the figures.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model.weights import published_weights
from . import plots
from .results import Metrics, Timing

TOP_PAIRS = 20
SCRIPT = r"""
const table = document.getElementById("classes"), body = table.tBodies[0];
const headers = Array.from(table.tHead.rows[0].cells);
const names = ["index", "class", "videos", "top1", "top5", "confused", "times"];
function value(row, key) {
  const cell = row.cells[key];
  return cell.dataset.v !== undefined ? parseFloat(cell.dataset.v) : cell.textContent.toLowerCase();
}
function sortBy(key, descending) {
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = value(a, key), y = value(b, key);
    return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
  });
  rows.forEach(r => body.appendChild(r));
  headers.forEach((h, i) => h.className = i === key ? (descending ? "desc" : "asc") : "");
}
headers.forEach((h, i) => h.addEventListener("click", () => sortBy(i, h.className === "asc")));
document.getElementById("filter").addEventListener("input", ev => {
  const text = ev.target.value.toLowerCase();
  let shown = 0;
  Array.from(body.rows).forEach(r => {
    const hit = r.cells[1].textContent.toLowerCase().includes(text);
    r.hidden = !hit;
    shown += hit;
  });
  document.getElementById("shown").textContent = shown + " shown";
});
const wanted = /sort=(-?)(\w+)/.exec(location.hash);  // report.html#sort=-top1 sorts on load
if (wanted && names.includes(wanted[2])) {
  sortBy(names.indexOf(wanted[2]), wanted[1] === "-");
  document.body.dataset.sorted = wanted[2];
}
"""


@dataclass(frozen=True)
class ClassRow:
    """One class with listed videos; unreadable videos count as wrong, as in ``metrics.json``'s all_videos."""

    index: int
    name: str
    videos: int
    top1: float
    top5: float
    confused_with: str | None  # the most frequent wrong prediction
    confused_count: int


def class_rows(scores: np.ndarray, truth: np.ndarray, readable: np.ndarray, *, labels: list[str]) -> list[ClassRow]:
    """A row per class present among the labels, in class order."""
    pred = np.where(readable, np.argmax(scores, axis=1), -1)
    top5 = np.argsort(scores, axis=1)[:, ::-1][:, :5]
    in_top5 = readable & np.any(top5 == truth[:, None], axis=1)
    rows = []
    for c in np.unique(truth).tolist():
        mine = truth == c
        wrong = pred[mine & (pred != c) & readable]
        values, counts = np.unique(wrong, return_counts=True)
        confused = int(values[np.argmax(counts)]) if len(values) else None
        rows.append(
            ClassRow(
                index=c,
                name=labels[c] if 0 <= c < len(labels) else str(c),
                videos=int(mine.sum()),
                top1=float(np.mean(pred[mine] == c)),
                top5=float(np.mean(in_top5[mine])),
                confused_with=labels[confused] if confused is not None else None,
                confused_count=int(counts.max()) if len(values) else 0,
            )
        )
    return rows


def confused_pairs(
    truth: np.ndarray, pred: np.ndarray, labels: list[str], *, limit: int = TOP_PAIRS
) -> list[tuple[str, str, int, float]]:
    """The ``limit`` most frequent (true, predicted, count, share of the true class) mistakes of readable videos."""
    mistakes = pred != truth
    pairs, counts = np.unique(np.stack([truth[mistakes], pred[mistakes]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:limit] if len(counts) else []
    per_class = np.bincount(truth, minlength=len(labels))
    return [
        (labels[pairs[i, 0]], labels[pairs[i, 1]], int(counts[i]), float(counts[i] / per_class[pairs[i, 0]]))
        for i in order
    ]


def figures(
    scores: np.ndarray, truth: np.ndarray, readable: np.ndarray, *, labels: list[str], rows: list[ClassRow], pairs
) -> dict[str, bytes]:
    """The PNGs by file name: per-class accuracy, confusion matrix (few classes) or top confusions, confidence."""
    pred = np.argmax(scores, axis=1)
    result = {
        "per_class_accuracy.png": plots.per_class_accuracy([r.name for r in rows], np.array([r.top1 for r in rows]))
    }
    classes = np.unique(np.concatenate([truth, pred[readable]]))
    if len(classes) <= plots.MATRIX_MAX_CLASSES:
        position = {c: k for k, c in enumerate(classes.tolist())}
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for t, p in zip(truth[readable].tolist(), pred[readable].tolist(), strict=True):
            matrix[position[t], position[p]] += 1
        result["confusion_matrix.png"] = plots.confusion_matrix([labels[c] for c in classes], matrix)
    else:
        result["top_confusions.png"] = plots.top_confusions(pairs)
    result["confidence.png"] = plots.confidence(scores[readable].max(axis=1), pred[readable] == truth[readable])
    return result


def published(config: dict) -> tuple[float, float, str] | None:
    """The published top-1/top-5 to show beside ours: a published checkpoint (not random weights, not an exported
    model) run with its own preprocessing (sampling included) in a protocol it has figures for."""
    weights = published_weights(config.get("checkpoint"))
    if weights is None or config.get("model") is not None or config.get("random_weights"):
        return None
    recorded = config.get("preprocessing")
    if recorded is not None and recorded != json.loads(json.dumps(dataclasses.asdict(weights.preprocessing))):
        return None
    return next((tuple(row[1:]) for row in weights.published if row[0] == config.get("protocol")), None)


def render(metrics: Metrics, rows: list[ClassRow], pairs, *, pngs: dict[str, bytes], reference) -> str:
    """The report's HTML."""
    e = html.escape
    counts, facts = metrics.counts, _configuration(metrics.config)
    headline, run = _headline(metrics, reference), _run_facts(metrics.timing, metrics.versions)
    table_rows = "".join(
        f'<tr><td data-v="{r.index}">{r.index}</td><td>{e(r.name)}</td><td data-v="{r.videos}">{r.videos}</td>'
        f'<td data-v="{r.top1:.6f}">{100 * r.top1:.1f}</td><td data-v="{r.top5:.6f}">{100 * r.top5:.1f}</td>'
        f'<td>{e(r.confused_with or "—")}</td><td data-v="{r.confused_count}">{r.confused_count or ""}</td></tr>'
        for r in rows
    )
    pair_rows = "".join(
        f"<tr><td>{e(t)}</td><td>{e(p)}</td><td>{n}</td><td>{100 * share:.1f}%</td></tr>" for t, p, n, share in pairs
    )
    failures = "".join(f"<li><b>{e(f['video'])}</b>: {e(f['reason'] or '')}</li>" for f in metrics.failures)
    images = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}"></figure>'
        for name, data in pngs.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>i3d eval: {e(facts["list"])}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }}
#classes th {{ cursor: pointer; user-select: none; background: #f4f4f4; position: sticky; top: 0; }}
#classes th.asc::after {{ content: " ▲"; }} #classes th.desc::after {{ content: " ▼"; }}
.big td {{ font-size: 1.6em; font-weight: 600; }} figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }} dt {{ color: #666; }}
</style></head><body>
<h1>Evaluation of {counts.listed} videos</h1>
<p>{counts.readable} readable, {counts.failed} unreadable.</p>
<table class="big"><tr><th></th><th>top-1 %</th><th>top-5 %</th><th>mean class %</th></tr>{headline}</table>
<h2>Configuration</h2>
<dl>{"".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts.items())}</dl>
<section id="run"><h2>Run</h2><dl>{run}</dl></section>
<h2>Per class ({len(rows)} classes with videos)</h2>
<p><input id="filter" placeholder="filter classes" size="30"> <span id="shown"></span></p>
<table id="classes"><thead><tr><th data-key="0">#</th><th data-key="1">class</th><th data-key="2">videos</th>
<th data-key="3">top-1 %</th><th data-key="4">top-5 %</th><th data-key="5">most frequent wrong prediction</th>
<th data-key="6">times</th></tr></thead><tbody>{table_rows}</tbody></table>
<h2>Most confused pairs</h2>
<table id="pairs">
<tr><th>true class</th><th>predicted</th><th>videos</th><th>share of the true class</th></tr>
{pair_rows or '<tr><td colspan="4">none</td></tr>'}</table>
<h2>Failures ({counts.failed})</h2><ul id="failures">{failures or "<li>none</li>"}</ul>
<h2>Figures</h2>{images}
<script>
{SCRIPT}</script>
</body></html>
"""


def _headline(metrics: Metrics, reference) -> str:
    """The accuracy table's rows: all listed videos, the readable ones, each stream alone (two streams) and the
    published figures when they apply."""
    e = html.escape
    streams = {"rgb": "RGB stream alone", "flow": "flow stream alone", "rgb+flow": "RGB + flow (summed logits)"}
    rows = [(f"{streams[k]} (all listed videos)", v) for k, v in (metrics.streams or {}).items()]
    headline = "".join(
        f"<tr><th>{e(label)}</th>"
        + "".join(f"<td>{100 * value:.2f}</td>" for value in dataclasses.astuple(accuracy))
        + "</tr>"
        for label, accuracy in (
            ("all listed videos (unreadable = wrong)", metrics.all_videos),
            ("readable videos", metrics.readable_videos),
            *rows,
        )
    )
    if reference:
        top1, top5, source = reference
        source = f"the RGB stream alone: {source}" if rows else source
        headline += f"<tr><th>published ({e(source)})</th><td>{top1:.2f}</td><td>{top5:.2f}</td><td>—</td></tr>"
    return headline


def _configuration(config: dict) -> dict:
    """What the run computed with, as the report shows it."""
    return {
        "backend": config.get("backend"),
        "engine": config.get("engine") or ("fast" if config.get("backend") == "torch" else "—"),
        "precision": config.get("precision"),
        "checkpoint": _checkpoint_name(config),
        "flow checkpoint": Path(str(config["flow_checkpoint"])).name if config.get("flow_checkpoint") else "—",
        "model": Path(str(config["model"])).name if config.get("model") else "—",
        "protocol": config.get("protocol"),
        "sampling": (config.get("preprocessing") or {}).get("sampling", "0.x"),
        "fusion": config.get("fusion"),
        "decoder": config.get("decoder"),
        "batch size": config.get("batch_size"),
        "list": Path(str(config.get("list_file"))).name,
    }


def _checkpoint_name(config: dict) -> str:
    if config.get("random_weights"):
        return "none: seeded random weights (accuracy means nothing)"
    if config.get("model"):
        return "—"
    return Path(str(config["checkpoint"])).name if config.get("checkpoint") else "official"


def _run_facts(timing: Timing, versions: dict) -> str:
    e = html.escape
    facts = {}
    if timing.merged_from is not None:
        facts["merged from"] = ", ".join(timing.merged_from)
    else:
        wall = timing.wall_seconds or 0.0
        facts["device"] = timing.device or "—"
        facts["decode workers"] = "—" if timing.workers is None else timing.workers
        facts["wall time"] = f"{wall:.1f} s"
        if timing.videos_per_s:
            facts["speed"] = f"{timing.videos_per_s:.2f} videos/s ({timing.videos_this_session or 0} this session)"
        if wall:
            facts["model busy"] = f"{100 * (timing.model_seconds or 0) / wall:.0f}% of the wall time"
            waited = timing.waiting_for_data_seconds or 0
            facts["model waiting for data"] = f"{100 * waited / wall:.0f}% of the wall time"
    facts["versions"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    return "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts.items())


def write_report(
    out: Path,
    metrics: Metrics,
    scores: np.ndarray,
    *,
    truth: np.ndarray,
    readable: np.ndarray,
    labels: list[str],
) -> Path:
    """Write the figures as PNG files and ``report.html`` with them inline; returns the report's path."""
    rows = class_rows(scores, truth, readable, labels=labels)
    pred = np.argmax(scores, axis=1)
    pairs = confused_pairs(truth[readable], pred[readable], labels)
    pngs = figures(scores, truth, readable, labels=labels, rows=rows, pairs=pairs)
    for name in ("confusion_matrix.png", "top_confusions.png"):
        (out / name).unlink(missing_ok=True)  # only the one that fits this run's class count stays
    for name, data in pngs.items():
        (out / name).write_bytes(data)
    path = out / "report.html"
    path.write_text(render(metrics, rows, pairs, pngs=pngs, reference=published(metrics.config)), encoding="utf-8")
    return path
