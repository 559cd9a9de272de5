"""``i3d eval --cluster ray``: equal to the local run bit for bit, resumable after the driver is killed, decoding
only on CPU nodes of a two-node cluster, finishing with every video once when a node is removed mid-run.

One Ray instance per module (2 CPUs, a logical GPU so the model actors are scheduled as on a GPU cluster, with
the CPU backend behind them); tiny synthetic videos and the reduced clip shape (2 clips x 8 frames at 64x64).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install 'i3d-infer[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'i3d-infer[ray]')")

from eval_launcher import holding, wait_for  # noqa: E402
from i3d_infer.evaluate import runner  # noqa: E402
from i3d_infer.evaluate.runner import EvalConfig, RunOptions, evaluate  # noqa: E402
from i3d_infer.transport.ray_data import RayOptions  # noqa: E402
from reduced import SMALL  # noqa: E402
from videos import write_video  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray instance per class, and multi-process runs

LAUNCHER = [sys.executable, str(Path(__file__).parent / "eval_launcher.py")]
RAY_QUIET = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
OBJECT_STORE = 200 * 2**20


@pytest.fixture(scope="module")
def videos(tmp_path_factory, sample_videos):
    """Small synthetic videos of several sizes and lengths, one real one, and a file that is no video."""
    root = tmp_path_factory.mktemp("ray")
    (root / "bikes.mp4").symlink_to(sample_videos["bikes"])
    for k in range(6):
        write_video(root / f"v{k}.mp4", list(range(20 + 7 * k)), width=64 + 16 * k, height=48)
    (root / "broken.mp4").write_bytes(b"\x00" * 300)
    names = ["v0.mp4", "bikes.mp4", "v1.mp4", "broken.mp4", "v2.mp4", "v3.mp4", "v4.mp4", "v5.mp4"]
    (root / "list.txt").write_text("".join(f"{name} {k}\n" for k, name in enumerate(names)))
    return root


def run(videos, out, checkpoint, batch_size, cluster: bool, resume=False, threads=2, workers=2):
    config = EvalConfig(str(videos / "list.txt"), str(videos), checkpoint=str(checkpoint), batch_size=batch_size)
    options = RunOptions(threads=threads, workers=workers, progress=False, ray=RayOptions() if cluster else None)
    return evaluate(config, out, options, resume=resume, weights=SMALL)


def features(videos, out, checkpoint, *, workers: int, cluster: bool = False):
    """``i3d features`` over the list (the reduced clips, batches of 3 clips across videos), here or on Ray."""
    from i3d_infer.data.sampling import DenseClips
    from i3d_infer.features.plan import FeaturePlan, plan_outputs
    from i3d_infer.features.run import FeatureJob, extract_features
    from i3d_infer.runtime import BackendSpec, make_backend

    backend = make_backend(BackendSpec(checkpoint=checkpoint, features=True), SMALL)
    names = [line.split()[0] for line in (videos / "list.txt").read_text().splitlines()]
    tasks = plan_outputs([(videos / name, name) for name in names], out)
    plan = FeaturePlan(dense=DenseClips(8, 16, 2), batch_size=3)
    job = FeatureJob(plan, SMALL, out, workers=workers, ray=RayOptions() if cluster else None)
    return extract_features(job, tasks, backend)


def same_features(ours: Path, local: Path) -> None:
    """The same .npy bytes, index and failures as the local run's."""
    files = sorted(p.relative_to(local) for p in local.glob("*.npy"))
    assert files == sorted(p.relative_to(ours) for p in ours.glob("*.npy")) and len(files) == 7
    for name in files:
        assert (ours / name).read_bytes() == (local / name).read_bytes(), name
    for kind in ("index.jsonl", "failures.jsonl"):
        assert (ours / kind).read_text() == (local / kind).read_text()


def decoded_by(out: Path) -> list[str]:
    return [json.loads(line)["decoder"] for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="class")
def one_instance():
    ray.init(num_cpus=2, num_gpus=1, object_store_memory=OBJECT_STORE, **RAY_QUIET)
    yield
    ray.shutdown()


@pytest.fixture(scope="class")
def cluster():
    """Two simulated nodes: a 'GPU' head without CPUs (decode tasks cannot run there) and a CPU node."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "num_gpus": 1, "object_store_memory": OBJECT_STORE},
    )
    cpu_node = cluster.add_node(num_cpus=2, object_store_memory=OBJECT_STORE)
    ray.init(address=cluster.address, **RAY_QUIET)
    yield cluster, cpu_node
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.usefixtures("one_instance")
class TestOneInstance:
    @pytest.mark.parametrize("batch_size", [1, 3])
    def test_equals_the_local_run(self, videos, tmp_path, checkpoint_file, batch_size):
        local = run(videos, tmp_path / "local", checkpoint_file, batch_size, cluster=False)
        record = run(videos, tmp_path / "ray", checkpoint_file, batch_size, cluster=True)
        assert (tmp_path / "ray" / "result.json").read_bytes() == (tmp_path / "local" / "result.json").read_bytes()
        local_lines = (tmp_path / "local" / "results.jsonl").read_text()
        assert (tmp_path / "ray" / "results.jsonl").read_text() == local_lines  # failures and decoders too
        timing = record.metrics.timing.to_json()
        assert timing["cluster"] == "ray" and sum(timing["decode_tasks_per_node"].values()) == 8
        assert record.metrics.counts == local.metrics.counts

    def test_features_equal_the_local_run(self, videos, tmp_path, checkpoint_file):
        """``i3d features --cluster ray``: the decoding as Ray Data tasks, the same files as a local run."""
        local = features(videos, tmp_path / "local", checkpoint_file, workers=1)
        summary = features(videos, tmp_path / "ray", checkpoint_file, workers=2, cluster=True)
        assert summary.done == local.done == 7 and len(summary.failed) == 1
        same_features(tmp_path / "ray", tmp_path / "local")

    def test_killed_driver_then_resume(self, videos, tmp_path, checkpoint_file):
        run(videos, tmp_path / "local", checkpoint_file, 2, cluster=False)
        out = tmp_path / "killed"
        command = [*LAUNCHER, "eval", "--list", str(videos / "list.txt"), "--root", str(videos)]
        command += ["--checkpoint", str(checkpoint_file), "--batch-size", "2", "--workers", "2", "--threads", "2"]
        command += ["--device", "cpu", "--out-dir", str(out), "--cluster", "ray"]
        address = ray.get_runtime_context().gcs_address  # the driver joins this instance: killing it kills no node
        held = tmp_path / "held"  # the driver holds after 2 batches (eval_launcher.holding): killed part-way
        process = subprocess.Popen(
            [*command, "--ray-address", address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, "I3D_TEST_HOLD": f"2:{held}"},
        )
        wait_for(held, process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert (out / "results.jsonl").read_text().count("\n") == 4  # two batches of two
        run(videos, out, checkpoint_file, 2, cluster=True, resume=True)
        assert (out / "result.json").read_bytes() == (tmp_path / "local" / "result.json").read_bytes()
        assert (out / "results.jsonl").read_text().count("\n") == 8


class TestCluster:
    """A two-node cluster (the ``cluster`` fixture), then a third node that is removed mid-run."""

    def test_decode_runs_only_on_the_cpu_node(self, cluster, videos, tmp_path, checkpoint_file):
        cluster, cpu_node = cluster
        record = run(videos, tmp_path / "ray", checkpoint_file, 2, cluster=True)
        run(videos, tmp_path / "local", checkpoint_file, 2, cluster=False)
        assert record.metrics.timing.cluster["decode_tasks_per_node"] == {cpu_node.node_id: 8}
        assert (tmp_path / "ray" / "result.json").read_bytes() == (tmp_path / "local" / "result.json").read_bytes()

    def test_a_node_removed_mid_run(self, cluster, videos, tmp_path, checkpoint_file, monkeypatch):
        cluster, _ = cluster
        doomed = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes()
        run(videos, tmp_path / "local", checkpoint_file, 1, cluster=False)
        out = tmp_path / "ray"
        outcome = {}

        def evaluate_on_ray():
            try:
                outcome["record"] = run(videos, out, checkpoint_file, 1, cluster=True, workers=3)
            except BaseException as e:  # raised in the test below
                outcome["error"] = e

        release = threading.Event()
        # the run waits after its first batch until the node is gone
        monkeypatch.setattr(runner._Recorder, "record", holding(runner._Recorder.record, 1, tmp_path / "held", release))
        thread = threading.Thread(target=evaluate_on_ray)
        thread.start()
        while not (tmp_path / "held").exists() and thread.is_alive():
            time.sleep(0.02)
        written = (out / "results.jsonl").read_text().count("\n")
        cluster.remove_node(doomed)
        release.set()
        thread.join(timeout=300)
        assert written == 1, "the run did not hold after its first batch"
        assert "error" not in outcome, outcome.get("error")
        lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert sorted(line["index"] for line in lines) == list(range(8))  # every video once
        assert (out / "result.json").read_bytes() == (tmp_path / "local" / "result.json").read_bytes()

    def test_features_lose_only_what_a_removed_node_held(self, cluster, videos, tmp_path, checkpoint_file, monkeypatch):
        """``i3d features --cluster ray`` with a node removed while the run holds after its first video: its decode
        tasks run again elsewhere, every video once, the local run's files."""
        from i3d_infer.features import run as feature_run

        cluster, _ = cluster
        doomed = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes()
        features(videos, tmp_path / "local", checkpoint_file, workers=1)
        outcome, release = {}, threading.Event()

        def extract():
            try:
                outcome["summary"] = features(videos, tmp_path / "ray", checkpoint_file, workers=3, cluster=True)
            except BaseException as e:  # raised in the test below
                outcome["error"] = e

        monkeypatch.setattr(
            feature_run.FileSink, "video", holding(feature_run.FileSink.video, 1, tmp_path / "held", release)
        )
        thread = threading.Thread(target=extract)
        thread.start()
        while not (tmp_path / "held").exists() and thread.is_alive():
            time.sleep(0.02)
        assert len(list((tmp_path / "ray").glob("*.npy"))) == 1, "the run did not hold after its first video"
        cluster.remove_node(doomed)
        release.set()
        thread.join(timeout=300)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["summary"].done == 7
        same_features(tmp_path / "ray", tmp_path / "local")


def test_a_hung_decode_is_timed_out():
    """A decode task's --timeout (SIGALRM in the task's worker): a recorded failure naming the file."""
    from i3d_infer.errors import VideoError
    from i3d_infer.transport.ray_data import _deadline

    start = time.monotonic()
    with (
        pytest.raises(VideoError, match=r"^v\.mp4: decoding took longer than 0\.3 s \(--timeout\)$"),
        _deadline(0.3, "v.mp4"),
    ):
        time.sleep(10)
    assert time.monotonic() - start < 5


def test_cli_ray_errors(videos, tmp_path, capsys, monkeypatch):
    from i3d_infer.cli import main

    base = ["eval", "--list", str(videos / "list.txt"), "--root", str(videos), "--out-dir", str(tmp_path / "r")]
    assert main([*base, "--ray-address", "auto"]) != 0
    assert "--ray-address and --gpus are for --cluster ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # the extra not installed
    assert main([*base, "--cluster", "ray", "--device", "cpu"]) != 0
    assert "--cluster ray needs Ray Data (pip install 'i3d-infer[ray]')" in capsys.readouterr().err
