"""GPU decoding's logic on CPU tensors: NVDEC replaced by FFmpeg's NV12 planes (the same bits, by the H.264
standard), nvJPEG by OpenCV's decoder; the GPU itself is exercised by benchmarks/e2e_gpu.py.

Checked here: the readers' frames equal the CPU pipeline's bit for bit; the decode threads keep list order, record
which decoder read each video and fall back to the CPU (recorded) for a video the GPU decoder cannot take; the CPU
and GPU split is a fixed assignment; ``i3d eval --decoder nvdec`` gives the CPU run's result.json bit for bit;
the one-line errors.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
import torch

from i3d_infer.cli import main
from i3d_infer.data.datasets import VideoDataset
from i3d_infer.data.decode import RawframeSource
from i3d_infer.data.gpu import decode as gpu_decode
from i3d_infer.data.gpu.decode import NvdecReader, NvjpegReader
from i3d_infer.data.gpu.probe import VideoProbe, probe_video
from i3d_infer.data.pipeline import read_frames, sampler
from i3d_infer.data.transforms import get_protocol
from i3d_infer.errors import VideoError
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate
from i3d_infer.model.weights import DEFAULT_WEIGHTS
from i3d_infer.runtime.cuda_graphs import CAPTURE_GATE
from i3d_infer.transport import gpu, stream
from i3d_infer.transport.decoding import Decoding, GpuDecoding, on_cpu
from i3d_infer.transport.gpu import GpuDecodeStream, decode_stream
from reduced import SMALL_PRE
from videos import assert_reader_equals_the_cpu, ffmpeg_nv12, opencv_jpeg, opencv_rawframes, write_video

SMALL = replace(DEFAULT_WEIGHTS, preprocessing=SMALL_PRE)
CPU = torch.device("cpu")


def nvdec_on_cpu(protocol: str = "seed", **kwargs) -> NvdecReader:
    return NvdecReader(CPU, get_protocol(protocol), SMALL_PRE.size, batches=ffmpeg_nv12, **kwargs)


def as_h264(path: str) -> VideoProbe:
    """A probe that takes every file for 8-bit H.264 (so a reader failure, not a hand-over, is what is tested)."""
    return replace(probe_video(path), codec="h264")


@pytest.fixture(scope="module")
def videos(tmp_path_factory, sample_videos):
    """Real videos, an odd-sized MPEG-4 Part 2 one (handed over to the CPU by the probe; FFmpeg's planes of it
    would be refused: the GPU reader fails and the CPU reads it), and a file that is no video."""
    root = tmp_path_factory.mktemp("gpu_decode")
    for name, path in sample_videos.items():
        (root / f"{name}.mp4").symlink_to(path)
    write_video(root / "odd.mp4", list(range(30)), width=97, height=61)
    (root / "broken.mp4").write_bytes(b"\x00" * 300)
    names = ["bikes.mp4", "odd.mp4", "carphone_pristine.mp4", "broken.mp4", "bigbuckbunny.mp4", "bikes.mp4"]
    (root / "list.txt").write_text("".join(f"{name} {k}\n" for k, name in enumerate(names)))
    return root


@pytest.fixture(scope="module")
def rawframes(tmp_path_factory, sample_videos):
    """Rawframes (96x80 JPEGs) of the three sample videos, each three times, and their list (``list.txt``)."""
    root = tmp_path_factory.mktemp("rawframes")
    lines = []
    for k, (name, path) in enumerate(sorted(sample_videos.items()) * 3):
        count = opencv_rawframes(path, root / f"{name}{k}", size=(96, 80))
        lines.append(f"{name}{k} {count} {k % 3}\n")
    (root / "list.txt").write_text("".join(lines))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["seed", "threecrop"])
def test_nvdec_reader_equals_the_cpu_pipeline(sample_videos, protocol):
    """NV12 -> RGB -> resize in torch, sampled frames only, in batches: the CPU pipeline's frames bit for bit."""
    reader = nvdec_on_cpu(protocol)
    for path in sample_videos.values():
        assert_reader_equals_the_cpu(reader, path, protocol, SMALL_PRE)


@pytest.mark.slow
def test_nvdec_reader_makes_a_second_pass_when_the_header_lies(sample_videos):
    def lying(path):
        _, batches = ffmpeg_nv12(path)
        return 40, batches  # bikes.mp4 has 250 frames

    reader = NvdecReader(CPU, get_protocol("seed"), SMALL_PRE.size, batches=lying)
    _, indices, frames, _ = reader.read(sample_videos["bikes"], sampler(SMALL_PRE))
    expected = read_frames(sample_videos["bikes"], "seed", SMALL_PRE)
    np.testing.assert_array_equal(indices, expected.frame_indices)
    np.testing.assert_array_equal(frames.numpy(), expected.frames)


class FakeSimpleDecoder:
    """PyNvVideoCodec's ``SimpleDecoder`` contract on FFmpeg's planes; ``streams``: those decoders were made with."""

    streams: ClassVar[list[int]] = []
    refuse_streams = False  # as a PyNvVideoCodec that rejected the caller's stream would

    def __init__(self, path, gpu_id=0, cuda_stream=0, use_device_memory=True, output_color_type=0):
        self.streams.append(cuda_stream)
        if cuda_stream and self.refuse_streams:
            raise RuntimeError("cudastream input argument does not correspond to cudacontext argument")
        self.reconfigure_decoder(path)

    def reconfigure_decoder(self, path):
        self.count, batches = ffmpeg_nv12(path, 1)
        self.frames = (batch[0] for batch in batches)

    def __len__(self):
        return self.count

    def get_batch_frames(self, n):
        return [frame for _, frame in zip(range(n), self.frames, strict=False)]


@pytest.fixture
def fake_pynvvideocodec(monkeypatch):
    """``import PyNvVideoCodec`` gives :class:`FakeSimpleDecoder`, its record of streams emptied."""
    fake = type(sys)("PyNvVideoCodec")
    fake.SimpleDecoder, fake.OutputColorType = FakeSimpleDecoder, type("OutputColorType", (), {"NATIVE": 0})
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", fake)
    monkeypatch.setattr(FakeSimpleDecoder, "streams", [])


@pytest.mark.parametrize("on_stream", [True, False])
def test_nvdec_decoder_writes_on_the_threads_stream(sample_videos, monkeypatch, fake_pynvvideocodec, on_stream):
    """The decoder is made on the thread's current stream: that stream then orders each batch's copy before the
    next batch reuses the decoder's surfaces, so the reader never waits on the host (on the default stream, where
    NVIDIA's decoder synchronises after every frame, it waits once per batch, as before). Same frames either way."""
    current = [SimpleNamespace(cuda_stream=7)]  # the decode thread's stream (handles are raw pointers)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current[0])
    waits = []
    monkeypatch.setattr(gpu_decode, "_event", lambda nv12: waits.append(1) or SimpleNamespace(synchronize=bool))
    frames = gpu_decode.PyNvVideoCodecFrames(CPU, batch=64, on_stream=on_stream)
    reader = NvdecReader(CPU, get_protocol("seed"), SMALL_PRE.size, batches=frames, fused=False)
    _, _, decoded, _ = reader.read(sample_videos["bikes"], sampler(SMALL_PRE))
    np.testing.assert_array_equal(decoded.numpy(), read_frames(sample_videos["bikes"], "seed", SMALL_PRE).frames)
    assert FakeSimpleDecoder.streams == [7 if on_stream else 0]
    batches = len(np.unique(np.unique(sampler(SMALL_PRE)(250)) // 64))  # decoder batches holding sampled frames
    assert frames.in_order() == on_stream and len(waits) == (0 if on_stream else batches) and batches > 1
    current[0] = SimpleNamespace(cuda_stream=8)  # read from another stream: no order to rely on
    assert not frames.in_order()


def test_nvdec_decoder_refusing_the_stream_decodes_on_the_default_one(
    sample_videos, monkeypatch, fake_pynvvideocodec, caplog, tmp_path
):
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(cuda_stream=7))
    monkeypatch.setattr(FakeSimpleDecoder, "refuse_streams", True)
    frames = gpu_decode.PyNvVideoCodecFrames(CPU)
    reader = NvdecReader(CPU, get_protocol("seed"), SMALL_PRE.size, batches=frames, fused=False)
    _, _, decoded, _ = reader.read(sample_videos["carphone_pristine"], sampler(SMALL_PRE))
    expected = read_frames(sample_videos["carphone_pristine"], "seed", SMALL_PRE).frames
    np.testing.assert_array_equal(decoded.numpy(), expected)
    assert FakeSimpleDecoder.streams == [7, 0] and not frames.in_order()
    assert "refused this thread's CUDA stream (cudastream input argument does not" in caplog.text
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 300)
    with pytest.raises(VideoError, match="broken.mp4: NVDEC cannot open it"):  # a bad video still fails as one
        gpu_decode.PyNvVideoCodecFrames(CPU)(str(tmp_path / "broken.mp4"))


def test_frames_are_wrapped_with_one_dlpack_call_each():
    """PyNvVideoCodec's ``__dlpack__(stream)`` takes no ``max_version``: the reader asks once, with its stream."""
    calls = []

    class Frame:  # the binding's signature
        def __dlpack__(self, stream=None):
            calls.append(stream)
            return torch.arange(6, dtype=torch.uint8).__dlpack__()

        def __dlpack_device__(self):
            return (1, 0)

    assert gpu_decode.wrap(Frame(), 5).tolist() == list(range(6)) and calls == [5]
    assert gpu_decode.consumer_stream(CPU) is None


def test_nvjpeg_reader_logic_and_errors(tmp_path, sample_videos):
    """Files of the sampled frames only, decoded in one call, resized like the CPU path; missing or broken frames
    name the file or the video."""
    count = opencv_rawframes(sample_videos["bikes"], tmp_path / "bikes", size=(96, 80))
    calls = []
    reader = NvjpegReader(CPU, get_protocol("threecrop"), SMALL_PRE.size, decode=opencv_jpeg(calls))
    _, indices, frames, table = reader.read(tmp_path / "bikes", sampler(SMALL_PRE), count)
    expected = read_frames(tmp_path / "bikes", "threecrop", SMALL_PRE, num_frames=count)
    assert calls == [len(np.unique(indices))]
    np.testing.assert_array_equal(frames.numpy(), expected.frames)
    np.testing.assert_array_equal(table, expected.table)
    first = RawframeSource(tmp_path / "bikes").frame_path(int(indices[0, 0]))
    first.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(VideoError, match=f"{tmp_path / 'bikes'}: a sampled frame is not a readable JPEG"):
        reader.read(tmp_path / "bikes", sampler(SMALL_PRE), count)
    first.unlink()
    with pytest.raises(VideoError, match=f"{first}: cannot read frame"):
        reader.read(tmp_path / "bikes", sampler(SMALL_PRE), count)


def test_coalesced_runs_the_waiting_calls_of_all_threads_as_one():
    """A group commit: the first caller runs alone; the callers that arrive meanwhile are answered by one call,
    each with its own answer or its own exception."""
    started, release, groups = threading.Event(), threading.Event(), []

    def group(items):
        groups.append(items)
        if len(groups) == 1:
            started.set()
            release.wait(10)
        return [ValueError(f"bad {i}") if i == 3 else i * 10 for i in items]

    coalesced = gpu_decode.Coalesced(group, most=8)
    answers = {}

    def call(i):
        try:
            answers[i] = coalesced(i)
        except ValueError as e:
            answers[i] = str(e)

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    assert started.wait(10)
    for i in (1, 2, 3, 4):
        threads.append(threading.Thread(target=call, args=(i,)))
        threads[-1].start()
        while len(coalesced.waiting) < i:  # queued behind the running group, in arrival order
            time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(10)
    # One group of the four that waited; whichever of them wakes first leads it with its own item first.
    assert [sorted(g) for g in groups] == [[0], [1, 2, 3, 4]] and coalesced.sizes == [1, 4]
    assert answers == {0: 0, 1: 10, 2: 20, 3: "bad 3", 4: 40}


@pytest.mark.slow
def test_nvjpeg_threads_share_calls_and_a_broken_video_fails_alone(tmp_path, rawframes):
    """Four threads on one shared reader: fewer decode calls than videos, every video's frames as the CPU path's,
    and a video with a broken file fails alone (its group is retried video by video)."""
    root = tmp_path / "frames"
    shutil.copytree(rawframes, root)
    names = [line.split()[0] for line in (root / "list.txt").read_text().splitlines()]
    count = RawframeSource(root / names[4]).frame_count_hint()
    broken = RawframeSource(root / names[4]).frame_path(int(sampler(SMALL_PRE)(count)[0, 0]))
    broken.write_bytes(b"\xff\xd8 broken")
    calls = []
    reader = NvjpegReader(CPU, get_protocol("seed"), SMALL_PRE.size, decode=opencv_jpeg(calls))
    barrier = threading.Barrier(4, timeout=30)

    def read(name):
        barrier.wait() if name in names[:4] else None  # the first four arrive together
        try:
            return reader.read(root / name, sampler(SMALL_PRE))[2].numpy()
        except VideoError as e:
            return str(e)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read, names))
    assert (
        results[4] == f"{root / names[4]}: a sampled frame is not a readable JPEG (Error while decoding JPEG "
        "images: nvjpegDecode failed)"
    )
    for name, frames in zip(names, results, strict=True):
        if name != names[4]:
            np.testing.assert_array_equal(frames, read_frames(root / name, "seed", SMALL_PRE).frames)
    assert max(reader.decoded.sizes) > 1 and len(reader.decoded.sizes) < len(names)


def test_gpu_stream_shares_one_nvjpeg_reader_between_its_threads(rawframes):
    dataset = VideoDataset(rawframes / "list.txt", rawframes, "rawframes", preprocessing=SMALL_PRE)
    made, in_gate = [], []

    def reader():
        in_gate.append(CAPTURE_GATE._active > 0)  # its first-launch checks must never meet a graph capture
        made.append(NvjpegReader(CPU, get_protocol("seed"), SMALL_PRE.size, decode=opencv_jpeg([])))
        return made[-1]

    decoding = GpuDecoding("nvjpeg", threads=3)
    samples = [
        d.sample for d in GpuDecodeStream(dataset, list(range(6)), decoding, device=CPU, batch_size=2, reader=reader)
    ]
    assert len(made) == 1 and sum(made[0].decoded.sizes) == 6 and in_gate == [True]
    assert [s.decoder for s in samples] == ["nvjpeg"] * 6
    for sample in samples:
        np.testing.assert_array_equal(sample.frames.frames.numpy(), dataset.frames(sample.index).frames.frames)


@pytest.mark.slow
def test_gpu_stream_order_decoders_and_cpu_fallback(videos):
    dataset = VideoDataset(videos / "list.txt", videos, preprocessing=SMALL_PRE)
    decoding = GpuDecoding("nvdec", threads=3)
    samples = [
        d.sample
        for d in GpuDecodeStream(
            dataset, list(range(6)), decoding, device=CPU, batch_size=2, reader=lambda: nvdec_on_cpu(probe=as_h264)
        )
    ]
    assert [s.index for s in samples] == list(range(6))
    assert [s.decoder for s in samples[:3]] == [
        "nvdec",
        "opencv (nvdec failed: width has to be even for this format)",
        "nvdec",
    ]
    assert samples[3].error.startswith(f"{videos / 'broken.mp4'}: cannot open as a video")  # the CPU's reason
    for sample in samples:
        if sample.error is None:
            expected = dataset.frames(sample.index).frames.frames
            np.testing.assert_array_equal(np.asarray(sample.frames.frames), expected)


@pytest.mark.slow
def test_cpu_share_is_a_fixed_even_assignment(videos):
    assert [on_cpu(i, 0.25) for i in range(8)] == [False, False, False, True] * 2
    assert not any(on_cpu(i, 0.0) for i in range(100)) and all(on_cpu(i, 1.0) for i in range(100))
    assert sum(on_cpu(i, 0.3) for i in range(1000)) == 300
    dataset = VideoDataset(videos / "list.txt", videos, preprocessing=SMALL_PRE)
    decoding = Decoding(workers=1, timeout=60, gpu=GpuDecoding("nvdec", 2, 0.5))
    merged = decode_stream(dataset, list(range(6)), decoding, batch_size=2, device=CPU, reader=nvdec_on_cpu)
    samples = [d.sample for d in merged]
    merged.close()
    assert [s.index for s in samples] == list(range(6))
    assert [s.decoder for s in samples[1::2]] == ["opencv"] * 3  # 1, 3, 5 on the CPU workers
    assert samples[4].decoder == "nvdec"


@pytest.fixture
def fake_gpu(monkeypatch):
    """``--decoder nvdec`` runs here: CPU tensors, FFmpeg's planes for NVDEC's."""
    monkeypatch.setattr("i3d_infer.evaluate.runner.check_gpu_decoder", lambda decoder, list_format: None)
    monkeypatch.setattr(stream, "gpu_decoding_device", lambda decoder: CPU)
    monkeypatch.setattr(gpu, "make_reader", lambda decoder, device, protocol, size: nvdec_on_cpu(protocol.name))


@pytest.mark.slow
@pytest.mark.parametrize("cpu_share", [0.0, 0.5])
def test_eval_with_nvdec_equals_the_cpu_run(videos, tmp_path, checkpoint_file, fake_gpu, cpu_share):
    config = EvalConfig(str(videos / "list.txt"), str(videos), checkpoint=str(checkpoint_file), batch_size=2)
    options = RunOptions(workers=1, gpu_decoders=2, progress=False)
    evaluate(config, tmp_path / "cpu", options, weights=SMALL)
    gpu_config = replace(config, decoder="nvdec", cpu_share=cpu_share)
    evaluate(gpu_config, tmp_path / "gpu", options, weights=SMALL)
    assert (tmp_path / "gpu" / "result.json").read_bytes() == (tmp_path / "cpu" / "result.json").read_bytes()
    lines = [json.loads(line) for line in (tmp_path / "gpu" / "results.jsonl").read_text().splitlines()]
    expected = ["opencv" if on_cpu(i, cpu_share) else "nvdec" for i in range(6)]
    handed_over = (
        "opencv (nvdec hands over: mpeg4 is not decoded bit-exactly by every decoder: the CPU's FFmpeg decodes it)"
    )
    expected[1] = "opencv" if cpu_share else handed_over
    expected[3] = "opencv"  # broken.mp4: read by neither, the CPU's reason recorded
    assert [line["decoder"] for line in lines] == expected


@pytest.mark.slow
def test_eval_with_nvjpeg_shares_decode_calls_and_equals_the_cpu_run(
    tmp_path, rawframes, checkpoint_file, fake_gpu, monkeypatch
):
    """``--decoder nvjpeg`` through the whole evaluation with OpenCV's JPEG decoder standing in for nvJPEG (so the
    pixels are libjpeg's and result.json must equal the opencv run's): one reader for the three decode threads,
    every video decoded once, every line recorded as nvjpeg."""
    readers = []

    def reader(decoder, device, protocol, size):
        readers.append(NvjpegReader(device, protocol, size, decode=opencv_jpeg([])))
        return readers[-1]

    monkeypatch.setattr(gpu, "make_reader", reader)  # in place of fake_gpu's NVDEC stand-in
    config = EvalConfig(str(rawframes / "list.txt"), str(rawframes), checkpoint=str(checkpoint_file))
    config = replace(config, batch_size=3)
    options = RunOptions(workers=1, gpu_decoders=3, progress=False)
    evaluate(config, tmp_path / "cpu", options, weights=SMALL)
    evaluate(replace(config, decoder="nvjpeg"), tmp_path / "gpu", options, weights=SMALL)
    assert (tmp_path / "gpu" / "result.json").read_bytes() == (tmp_path / "cpu" / "result.json").read_bytes()
    assert len(readers) == 1 and sum(readers[0].decoded.sizes) == 9
    results = [json.loads(line) for line in (tmp_path / "gpu" / "results.jsonl").read_text().splitlines()]
    assert [r["decoder"] for r in results] == ["nvjpeg"] * 9


def test_cli_gpu_decoder_errors(videos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "PyNvVideoCodec", None)  # not installed
    base = ["eval", "--list", str(videos / "list.txt"), "--root", str(videos), "--out-dir", str(tmp_path / "r")]
    assert main([*base, "--decoder", "nvdec"]) != 0
    assert "--decoder nvdec needs PyNvVideoCodec (pip install 'i3d-infer[gpu]')" in capsys.readouterr().err
    assert main([*base, "--decoder", "nvjpeg"]) != 0
    assert "--decoder nvjpeg reads rawframe directories, but the list is a videos list" in capsys.readouterr().err
    assert main([*base, "--decoder", "nvdec", "--cpu-share", "2"]) != 0
    assert "--cpu-share must be between 0 and 1" in capsys.readouterr().err
    bench = ["bench", "--e2e", str(videos / "list.txt"), "--root", str(videos), "--decode-only", "--decoder", "nvdec"]
    assert main(bench) != 0
    assert "--decoder nvdec needs PyNvVideoCodec" in capsys.readouterr().err


def test_capture_gate_keeps_work_out_of_captures():
    """A capture waits for the GPU work in flight, and new work waits for the capture (the H200's abort)."""
    import threading

    from i3d_infer.runtime.cuda_graphs import CaptureGate

    gate, order = CaptureGate(), []

    def capture():
        with gate.capture():
            order.append("capture starts")
            time.sleep(0.2)
            order.append("capture ends")

    def work():
        with gate.work():
            order.append("late work")

    with gate.work():
        capturing = threading.Thread(target=capture)
        capturing.start()
        time.sleep(0.2)
        order.append("work in flight ends")
    while "capture starts" not in order:
        time.sleep(0.01)
    late = threading.Thread(target=work)
    late.start()
    capturing.join()
    late.join()
    assert order == ["work in flight ends", "capture starts", "capture ends", "late work"]


@pytest.mark.parametrize("clips", ["dense", "test", "windows"])
def test_features_with_nvdec_equal_the_cpu_run(videos, tmp_path, checkpoint_file, clips):
    """``i3d features --decoder nvdec`` (FFmpeg's planes standing in for NVDEC): the CPU run's features bit for bit
    for the dense clips, the test clips and start-aligned windows; the MPEG-4 video handed over and the broken file
    failed, as the evaluation records them; the clip facts the same (no timestamps from the GPU reader)."""
    from i3d_infer.data.sampling import DenseClips, windows
    from i3d_infer.features.plan import FeaturePlan, plan_outputs
    from i3d_infer.features.run import FeatureJob, extract_features
    from i3d_infer.runtime import BackendSpec, make_backend

    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    dense = windows(8, 6) if clips == "windows" else DenseClips(8, 16, 2)
    plan = FeaturePlan(clips="test" if clips == "test" else "dense", dense=dense, batch_size=3, chunk=2)
    names = ["bikes.mp4", "odd.mp4", "carphone_pristine.mp4", "broken.mp4"]
    records = {}
    for decoder in ("opencv", "nvdec"):
        out = tmp_path / decoder
        tasks = plan_outputs([(videos / name, name) for name in names], out)
        job = FeatureJob(plan, SMALL, out, decoder=decoder, workers=1, gpu_decoders=2)
        summary = extract_features(job, tasks, backend, reader=lambda: nvdec_on_cpu("centercrop", probe=probe_video))
        assert summary.done == 3 and len(summary.failed) == 1
        records[decoder] = {r["video"]: r for r in map(json.loads, (out / "index.jsonl").read_text().splitlines())}
    for name in ("bikes.mp4", "odd.mp4", "carphone_pristine.mp4"):
        npy = name.replace(".mp4", ".npy")
        assert (tmp_path / "nvdec" / npy).read_bytes() == (tmp_path / "opencv" / npy).read_bytes(), name
        ours, cpu = records["nvdec"][name], records["opencv"][name]
        for fact in ("first", "centre", "last"):
            assert ours["clips"][fact] == cpu["clips"][fact]
    assert records["nvdec"]["bikes.mp4"]["decoder"] == "nvdec"
    assert records["nvdec"]["odd.mp4"]["decoder"].startswith("opencv (nvdec hands over: mpeg4 is not decoded")
    assert "broken.mp4" in (tmp_path / "nvdec" / "failures.jsonl").read_text()


def test_features_with_nvjpeg_equal_the_cpu_run(rawframes, tmp_path, checkpoint_file):
    """``i3d features --decoder nvjpeg`` on rawframe directories (OpenCV's decoder standing in for nvJPEG): the CPU
    run's features bit for bit; one reader for the threads, each video's frames decoded once."""
    from i3d_infer.features.plan import FeaturePlan, plan_outputs
    from i3d_infer.features.run import FeatureJob, extract_features
    from i3d_infer.runtime import BackendSpec, make_backend

    backend = make_backend(BackendSpec(checkpoint=checkpoint_file, features=True), SMALL)
    entries = [line.split() for line in (rawframes / "list.txt").read_text().splitlines()[:3]]
    readers = []

    def reader():
        readers.append(NvjpegReader(CPU, get_protocol("centercrop"), SMALL_PRE.size, decode=opencv_jpeg([])))
        return readers[-1]

    for decoder in ("opencv", "nvjpeg"):
        tasks = plan_outputs([(rawframes / d, d, int(n)) for d, n, _ in entries], tmp_path / decoder)
        job = FeatureJob(FeaturePlan(batch_size=3), SMALL, tmp_path / decoder, decoder=decoder, gpu_decoders=3)
        assert extract_features(job, tasks, backend, reader=reader).done == 3
    for directory, _, _ in entries:
        ours, cpu = (tmp_path / decoder / f"{directory}.npy" for decoder in ("nvjpeg", "opencv"))
        assert ours.read_bytes() == cpu.read_bytes(), directory
    assert len(readers) == 1 and sum(readers[0].decoded.sizes) == 3


def test_features_refuse_what_the_gpu_readers_cannot_do(tmp_path):
    from i3d_infer.data.flow import FlowMethod
    from i3d_infer.errors import I3DError
    from i3d_infer.features.plan import FeaturePlan
    from i3d_infer.features.run import FeatureJob
    from i3d_infer.transport.ray_data import RayOptions

    refusals = {"--fps": {"plan": FeaturePlan(fps=25)}, "--flow-checkpoint": {"plan": FeaturePlan(flow=FlowMethod())},
                "--cluster ray": {"plan": FeaturePlan(), "ray": RayOptions()}}  # fmt: skip
    for option, given in refusals.items():
        with pytest.raises(I3DError, match=f"^--decoder nvdec reads the sampled frames on the GPU: not with {option}$"):
            FeatureJob(weights=SMALL, out_dir=tmp_path, decoder="nvdec", **given)
