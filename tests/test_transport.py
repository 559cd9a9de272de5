"""The data path: frames through shared memory, views gathered where the model runs, the overlapped loop.

Exactness is bit for bit throughout (pure indexing and copies): views from the transport equal ``read_video``'s,
and an evaluation through it equals one decoding in-process and ``Predictor`` video by video.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from i3d_infer import Predictor
from i3d_infer.cli import build_parser, main
from i3d_infer.cli._common import placement
from i3d_infer.data.datasets import Sample, VideoDataset
from i3d_infer.data.pipeline import read_frames, read_video
from i3d_infer.errors import I3DError, VideoError
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.export.onnx import ExportOptions, export_onnx
from i3d_infer.machine import decide_placement
from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.transport import slots as slots_module
from i3d_infer.transport.batches import HostAssembler, gather_views, gather_views_host
from i3d_infer.transport.decoding import Decoding
from i3d_infer.transport.slots import DecodeStream, FrameSlots
from i3d_infer.transport.stream import OrderedWriter, background, feed
from reduced import SMALL_PRE
from videos import write_video

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=SMALL_PRE)
PROTOCOLS = ("seed", "centercrop", "threecrop")


@pytest.fixture(scope="module")
def videos(tmp_path_factory, sample_videos):
    """A list of real and synthetic videos (odd sizes, portrait, too few frames) and one that is not a video."""
    root = tmp_path_factory.mktemp("transport")
    for name, path in sample_videos.items():
        (root / f"{name}.mp4").symlink_to(path)
    write_video(root / "portrait.mp4", list(range(40)), width=48, height=90)
    write_video(root / "odd.mp4", list(range(9)), width=97, height=61)
    (root / "broken.mp4").write_bytes(b"\x00" * 300)
    names = ["bikes.mp4", "portrait.mp4", "broken.mp4", "carphone_pristine.mp4", "odd.mp4", "bigbuckbunny.mp4"]
    (root / "list.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    return root


def dataset_of(videos: Path, protocol: str = "seed") -> VideoDataset:
    return VideoDataset(videos / "list.txt", videos, protocol=protocol, preprocessing=SMALL_PRE)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gathered_views_equal_read_video(sample_videos, protocol):
    """Each distinct frame once; both gathers (torch on any device, host) == ``read_video``, bit for bit."""
    for path in sample_videos.values():
        frames = read_frames(path, protocol, SMALL_PRE)
        assert len(frames.frames) == len(np.unique(frames.frame_indices))
        expected = read_video(path, protocol, SMALL_PRE).views
        out = torch.empty(expected.shape, dtype=torch.uint8)
        gather_views(torch.from_numpy(frames.frames), frames, out)
        assert out.shape[0] == frames.num_views == (3 if protocol == "threecrop" else 1) * 2
        np.testing.assert_array_equal(out.numpy(), expected)
        host = np.zeros_like(expected)
        gather_views_host(frames, host, np.empty(frames.frames.size + 5, np.uint8))
        np.testing.assert_array_equal(host, expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_memory_stream_equals_in_process(videos, protocol):
    dataset = dataset_of(videos, protocol)
    indices = list(range(len(dataset)))
    stream = DecodeStream(dataset, indices, workers=2, timeout=60, batch_size=2)
    assert stream.slots is not None and stream.slots.count == 6
    got, used_slots = [], 0
    for decoded in stream:
        if decoded.sample.frames is not None:
            fits = stream.slots.fits(decoded.sample.frames.frames.shape)
            assert (decoded.slot is not None) == fits  # shared memory when they fit, else the pipe
            used_slots += decoded.slot is not None
            got.append((decoded.sample.index, decoded.sample.frames.frames.copy(), decoded.sample.frames.table))
        else:
            got.append((decoded.sample.index, decoded.sample.error, None))
        stream.release(decoded)
    assert stream.slots.free == stream.slots.count  # every slot came back
    stream.close()
    assert used_slots >= 3  # 16 frames of up to 16:9 per slot here; wider ones (bikes: 2.35:1) take the pipe
    assert [g[0] for g in got] == indices
    for index, frames, table in got:
        expected = dataset.frames(index)
        if table is None:
            assert frames == expected.error and "broken.mp4: cannot open as a video" in frames
        else:
            np.testing.assert_array_equal(frames, expected.frames.frames)
            np.testing.assert_array_equal(table, expected.frames.table)


def test_frames_too_large_for_a_slot_take_the_pipe(videos, monkeypatch):
    dataset = dataset_of(videos, "threecrop")
    capacity = 16 * 64 * 80 * 3
    monkeypatch.setattr(slots_module, "slot_bytes", lambda dataset: capacity)
    stream = DecodeStream(dataset, [0, 1, 3], workers=1, timeout=60, batch_size=1)
    in_slot = {}
    for decoded in stream:
        frames = decoded.sample.frames.frames
        in_slot[decoded.sample.index] = (decoded.slot is not None, frames.nbytes <= capacity)
        np.testing.assert_array_equal(frames, dataset.frames(decoded.sample.index).frames.frames)
        stream.release(decoded)
    stream.close()
    # bikes: 16 frames of 151x64 (464 KB), portrait: 14 of 64x120 (323 KB) take the pipe; carphone: 16 of 78x64
    # (240 KB of 246 KB) fits.
    assert in_slot == {0: (False, False), 1: (False, False), 3: (True, True)}


_frames = VideoDataset.frames


def _dies_on_bikes(self, index, allocate=None, threads=0):
    if self.entries[index].video_id == "bikes.mp4":
        os._exit(3)  # a decoder crash mid-video
    return _frames(self, index, allocate, threads)


def _hangs_on_carphone(self, index, allocate=None, threads=0):
    if self.entries[index].video_id == "carphone_pristine.mp4":
        time.sleep(60)
    return _frames(self, index, allocate, threads)


@pytest.mark.parametrize(
    ("fault", "video", "reason"),
    [
        (_dies_on_bikes, "bikes.mp4", "bikes.mp4: worker died (exit code 3)"),
        (_hangs_on_carphone, "carphone_pristine.mp4", "carphone_pristine.mp4: timed out after 3 s"),
    ],
)
@pytest.mark.slow
def test_crashed_or_hung_decoder_is_a_failure_and_a_fresh_worker(videos, monkeypatch, fault, video, reason):
    dataset = dataset_of(videos)
    monkeypatch.setattr(VideoDataset, "frames", fault)  # workers are forked: they see it
    stream = DecodeStream(dataset, list(range(len(dataset))), workers=2, timeout=3, batch_size=2)
    samples = []
    for decoded in stream:
        samples.append(decoded.sample)
        stream.release(decoded)
    assert stream.slots.free == stream.slots.count
    stream.close()
    errors = {s.video_id: s.error for s in samples if s.error}
    assert set(errors) == {video, "broken.mp4"} and errors[video].endswith(reason)
    assert sum(s.frames is not None for s in samples) == 4  # the others, decoded by fresh workers


def _says_its_threads(self, index, allocate=None, threads=0):
    entry = self.entries[index]
    return Sample(index, entry.video_id, entry.label, None, f"threads={threads}")


@pytest.mark.slow
@pytest.mark.parametrize(("cores", "workers", "threads"), [(16, 15, 1), (16, 4, 4), (2, 2, 1), (2, 3, 1)])
def test_decode_workers_share_the_cores(videos, monkeypatch, cores, workers, threads):
    """Each worker's video decoder gets its share of the cores instead of one thread per core in every worker."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(VideoDataset, "frames", _says_its_threads)  # workers are forked: they see it
    stream = DecodeStream(dataset_of(videos), [0, 1], workers=workers, timeout=60, batch_size=1)
    assert {decoded.sample.error for decoded in stream} == {f"threads={threads}"}
    stream.close()


def test_host_assembler_reuses_its_buffers(videos):
    dataset = dataset_of(videos, "threecrop")
    assemble = HostAssembler()
    views = []
    stream = DecodeStream(dataset, [0, 3, 4, 5, 0, 3], workers=2, timeout=60, batch_size=2)
    decoded = iter(stream)
    for _ in range(3):
        batch = assemble([next(decoded), next(decoded)], stream.release)
        views.append(batch.views)
        assert batch.views_per_video == 6 and batch.views.shape == batch.shape == (12, 3, 8, 64, 64)
        assert all(s.frames is None for s in batch.samples)  # their slots are released
    assert stream.slots.free == stream.slots.count
    stream.close()
    expected = [read_video(videos / dataset.entries[i].video_id, "threecrop", SMALL_PRE).views for i in (0, 3)]
    np.testing.assert_array_equal(views[0], np.concatenate(expected))  # three buffers in turn: still intact
    assert len({v.__array_interface__["data"][0] for v in views}) == 3


def test_feed_without_a_model_and_strict(videos):
    dataset = dataset_of(videos)
    pending = list(feed(dataset, [[0, 1], [2, 3], [4, 5]], None, decoding=Decoding(workers=2)))
    assert [len(p.batch.samples) for p in pending] == [2, 2, 2]
    assert [len(p.batch.readable) for p in pending] == [2, 1, 2]
    assert pending[0].result() == (None, 0.0)
    launched = feed(dataset, [[0, 1], [2, 3], [4, 5]], None, decoding=Decoding(workers=2), strict=True)
    assert len(next(launched).batch.readable) == 2  # the batch before the bad video comes through
    with pytest.raises(I3DError, match=r"broken.mp4: cannot open as a video .*\(--strict\)"):
        next(launched)


def test_background_raises_in_order_and_stops_when_closed():
    closed = threading.Event()

    def source():
        try:
            yield 1
            yield 2
            raise ValueError("bad item")
        finally:
            closed.set()

    items = background(source)
    assert [next(items), next(items)] == [1, 2]
    with pytest.raises(ValueError, match="bad item"):
        next(items)

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    closed.clear()
    items = background(endless)
    next(items)
    items.close()  # stops the thread, which closes the source in its own thread
    assert closed.is_set()


def test_ordered_writer_keeps_order_and_reports_errors():
    seen = []
    writer = OrderedWriter(seen.append)
    for i in range(20):
        writer.submit(i)
    writer.close()
    assert seen == list(range(20))

    def fails(item):
        raise OSError("disk full")

    writer = OrderedWriter(fails)
    writer.submit(1)
    with pytest.raises(OSError, match="disk full"):
        writer.close()


@pytest.fixture(scope="module")
def onnx_model(checkpoint_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "dyn.onnx"
    return export_onnx(load_model(checkpoint_file), path, ExportOptions(shape=(1, 2, 3, 8, 64, 64), dynamic_batch=True))


@pytest.mark.parametrize(
    ("backend", "protocol"),
    [("torch", "centercrop"), ("torch", "threecrop"), ("onnxruntime", "seed"), ("openvino", "threecrop")],
)
@pytest.mark.slow
def test_eval_through_shared_memory_equals_in_process_and_predict(
    videos, tmp_path, checkpoint_file, onnx_model, backend, protocol
):
    """Every backend, every protocol: 2 workers (shared memory), 0 workers and Predictor agree bit for bit."""
    model = {"model": str(onnx_model)} if backend != "torch" else {"checkpoint": str(checkpoint_file)}
    config = EvalConfig(
        list_file=str(videos / "list.txt"),
        root=str(videos),
        backend=backend,
        protocol=protocol,
        batch_size=2 if backend != "openvino" else 1,
        **model,
    )
    results = {}
    for workers in (2, 0):
        out = tmp_path / f"w{workers}"
        evaluate(config, out, RunOptions(workers=workers, progress=False), weights=SMALL)
        results[workers] = (out / "result.json").read_bytes()
    assert results[2] == results[0]
    kwargs = {"model": onnx_model} if backend != "torch" else {}
    predictor = Predictor.create(checkpoint_file if backend == "torch" else None, backend, weights=SMALL, **kwargs)
    scores = json.loads(results[2])
    for i, line in enumerate((videos / "list.txt").read_text().splitlines()):
        name = line.split()[0]
        if name == "broken.mp4":
            assert scores[i] == [0.0] * 400
            continue
        expected = predictor.predict(videos / name, protocol=protocol).scores
        if config.batch_size == 1:
            np.testing.assert_array_equal(np.array(scores[i]), expected)  # same views, same batch composition
        else:  # batches of 2 against single videos: the kernels' own batch-size difference
            np.testing.assert_allclose(np.array(scores[i]), expected, rtol=0, atol=1e-6)


def test_machine_defaults(monkeypatch, capsys):
    where = decide_placement()  # this machine has no GPU: the CPU, fp32, batch 1, one worker, nothing to say
    assert (where.device, where.precision, where.batch_size, where.workers, where.note) == ("cpu", "fp32", 1, 1, None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    where = decide_placement(workers=4)
    assert (where.device, where.precision, where.batch_size, where.workers) == ("cuda", "fp16", 8, 4)
    assert where.note.startswith("for the GPU: device cuda, fast engine, fp16, batch size 8 (")
    where = decide_placement(engine="eager")
    assert (where.device, where.precision, where.batch_size, where.workers) == ("cuda", "fp32", 8, 15)
    where = decide_placement(backend="onnxruntime")  # the GPU defaults are the torch backend's
    assert (where.device, where.precision) == ("cpu", "fp32")
    # The CLI decides once and says it once, on stderr.
    args = build_parser().parse_args(["eval", "--list", "l", "--root", "r", "--out-dir", "o", "--workers", "4"])
    assert placement(args, batch_size=args.batch_size) == decide_placement(workers=4)
    assert capsys.readouterr().err.count("for the GPU") == 1


def test_cli_bench_decode_only(videos, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("i3d_infer.model.weights.DEFAULT_WEIGHTS", SMALL)
    command = ["bench", "--e2e", str(videos / "list.txt"), "--root", str(videos), "--decode-only", "--workers", "2"]
    assert main([*command, "--batch-sizes", "2", "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "decode-ceiling" in out and "data-only" in out and "data path / decode ceiling:" in out
    records = json.loads((tmp_path / "b.json").read_text())
    assert [r["mode"] for r in records] == ["decode-ceiling", "data-only"]
    assert records[1]["iters"] == 2 and records[1]["input_shape"] == [4, 3, 8, 64, 64]
    assert all(r["videos_per_s"] > 0 for r in records)
    assert main(["bench", "--decode-only"]) == 2
    assert "--decode-only needs --e2e" in capsys.readouterr().err


def test_slots_are_shared_with_forked_children():
    slots = FrameSlots(2, 1024)
    slot = slots.acquire()
    pid = os.fork()
    if pid == 0:  # the child writes, the parent reads
        slots.array(slot, (4, 4))[:] = 7
        os._exit(0)
    os.waitpid(pid, 0)
    assert (slots.array(slot, (4, 4)) == 7).all() and slots.free == 1
    slots.release(slot)
    assert slots.fits((1024,)) and not slots.fits((1025,))
    slots.close()


@pytest.mark.slow
def test_e2e_gpu_script_runs_on_cpu(tmp_path):
    """benchmarks/e2e_gpu.py with tiny sizes: every row measured, ratios computed, JSON written."""
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "e2e_gpu.py"
    spec = importlib.util.spec_from_file_location("e2e_gpu", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--device", "cpu", "--videos", "4", "--batch-size", "2", "--workers", "2", "--small"]
    record = script.main([*argv, "--json", str(tmp_path / "e2e.json")])
    rows = {(r["what"], r["source"]): r for r in record["rows"]}
    assert set(rows) == {("model", "-")} | {
        (what, source) for what in ("decode ceiling", "data path", "i3d eval") for source in ("videos", "rawframes")
    }
    assert all(r["videos_per_s"] > 0 for r in record["rows"])
    assert rows[("i3d eval", "videos")]["of_achievable"] > 0 and rows[("data path", "rawframes")]["of_ceiling"] > 0
    assert json.loads((tmp_path / "e2e.json").read_text())["rows"] == record["rows"]
    assert record["checks"] == {"two_processes_max_abs_diff": 0.0}  # CPU: two fresh processes agree bit for bit
    assert record["errors"] == {}


class _FakeEvent:
    def __init__(self, enable_timing: bool = False) -> None:
        self.recorded = False

    def synchronize(self) -> None:
        assert self.recorded, "waited for an event never recorded"

    def elapsed_time(self, other) -> float:
        return 1.0


class _FakeStream:
    def __init__(self, device=None) -> None:
        self.waited = []

    def record_event(self, event=None):
        event = event or _FakeEvent()
        event.recorded = True
        return event

    def wait_event(self, event) -> None:
        assert event.recorded
        self.waited.append(event)


@pytest.mark.slow
def test_device_path_logic_with_cuda_faked(videos, checkpoint_file, monkeypatch):
    """The GPU path's Python (pinned staging offsets, side-stream events, record_stream, async logits) run on CPU
    with CUDA's stream/event/pinned calls faked: same logits as the host path. Not a GPU test: the device
    semantics themselves are checked by benchmarks/e2e_gpu.py on a GPU."""
    import contextlib

    from i3d_infer.model.checkpoint import load_model
    from i3d_infer.runtime.torch_backend import TorchBackend
    from i3d_infer.transport.batches import DeviceAssembler
    from i3d_infer.transport.stream import ModelCall

    empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: empty(*a, **k))
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _FakeStream())
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, stream: None)
    backend = TorchBackend(load_model(checkpoint_file, SMALL))
    cpu = torch.device("cpu")
    for protocol in ("seed", "threecrop"):
        dataset = dataset_of(videos, protocol)
        stream = DecodeStream(dataset, [0, 1, 2, 3], workers=2, timeout=60, batch_size=2)
        decoded = iter(stream)
        device_assembler = DeviceAssembler(cpu, 1000)  # too small: grows for the first batch
        for turn in range(2):
            group = [next(decoded), next(decoded)]
            if turn and group[0].sample.frames is not None:  # frames a GPU decoder left on the device: no staging
                frames = group[0].sample.frames
                on_device = dataclasses.replace(frames, frames=torch.from_numpy(frames.frames.copy()))
                group[0] = dataclasses.replace(group[0], sample=dataclasses.replace(group[0].sample, frames=on_device))
            host = HostAssembler()(group, lambda d: None)
            batch = device_assembler(group, stream.release)
            np.testing.assert_array_equal(batch.views.numpy(), host.views)
            logits, seconds = ModelCall(backend, cpu)(batch).result()
            np.testing.assert_array_equal(logits, backend(host.views))
            assert batch.views is None and seconds == 0.001  # the call took the views; timing from the events (ms)
        assert stream.slots.free == stream.slots.count
        stream.close()


def _count_to(task):
    """A streamed task: its items, then the end; task 2 kills its worker half-way, task 3 hangs, task 4 raises."""
    for k in range(3):
        if task == 2 and k == 1:
            os._exit(5)
        if task == 3 and k == 1:
            time.sleep(60)
        if task == 4 and k == 1:
            raise VideoError(f"video {task}: broken at item {k}")
        yield (task, k)


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_tasks_interleave_and_survive_dead_and_stuck_workers(workers):
    """``stream_tasks``: every item of every task, each task's end or its one-line error; a worker that dies or
    hangs fails its task only (killed, replaced), and the others finish."""
    from i3d_infer.transport.workers import stream_tasks

    tasks = [0, 1, 2, 3, 4, 5] if workers else [0, 1, 4, 5]
    items, ends = {}, {}
    for message in stream_tasks(_count_to, tasks, workers, timeout=2, expected=(VideoError,)):
        if message.kind == "item":
            items.setdefault(message.task, []).append(message.value[1])
        else:
            ends[message.task] = message.kind if message.kind == "done" else message.value
    assert {t: items[t] for t in (0, 1, 5)} == {0: [0, 1, 2], 1: [0, 1, 2], 5: [0, 1, 2]}
    assert ends[0] == ends[1] == ends[5] == "done" and ends[4] == "video 4: broken at item 1"
    if workers:
        assert ends[2].startswith("worker died") and ends[3] == "timed out after 2 s without a clip"
        assert items[2] == items[3] == items[4] == [0]
