"""``i3d demo``: the seed's whole flow on the bundled sample videos, in one directory.

annotations -> lists -> rawframes -> ONNX export (verified) -> evaluation with torch and onnxruntime on rawframes
and on videos -> benchmark. Uses the official checkpoint when it is in the cache or can be downloaded; otherwise
seeded random weights, said plainly, so that the pipeline and the speed are shown but not the accuracy.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DownloadError
from .model.checkpoint import load_model, random_model, resolve_checkpoint
from .model.i3d import Recognizer
from .model.weights import DEFAULT_WEIGHTS, Weights, read_labels
from .prepare.annotations import make_lists
from .prepare.extract import ExtractOptions, extract_all
from .prepare.sample_videos import sample_videos

# Sample video -> (YouTube-like id, Kinetics-400 class it roughly shows).
DEMO_VIDEOS = {
    "bigbuckbunny": ("bigbuckbun1", "feeding birds"),
    "bikes": ("bikesample2", "riding a bike"),
    "carphone_pristine": ("carphone003", "driving car"),
}


def write_annotations(directory: Path) -> tuple[Path, Path]:
    """A train CSV naming all 400 classes (so class indices are Kinetics-400's) and a val CSV of the samples."""
    directory.mkdir(parents=True, exist_ok=True)
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    classes = [name.replace("_", " ") for name in read_labels()]
    train = header + "".join(f'"{name}",train{i:06d},0,10,train,0\n' for i, name in enumerate(classes))
    val = header + "".join(f'"{label}",{vid},0,10,val,0\n' for vid, label in DEMO_VIDEOS.values())
    (directory / "kinetics_train.csv").write_text(train, encoding="utf-8")
    (directory / "kinetics_val.csv").write_text(val, encoding="utf-8")
    return directory / "kinetics_train.csv", directory / "kinetics_val.csv"


def run_demo(
    directory: str | Path | None = None,
    checkpoint: str | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    log=print,
) -> Path:
    """Run the whole flow in ``directory`` (default: a new temporary directory, kept); returns it."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="i3d-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    log(f"i3d demo in {root} (about 7 minutes on a 2-core CPU, where one video, 10 clips of 32x256x256, takes 10-25 s)")
    demo = _Demo(root, weights, log, *_checkpoint(checkpoint, weights, log))
    lists = demo.prepare()
    demo.export()
    demo.evaluate(lists)
    demo.bench()
    demo.features()
    demo.two_stream()
    log(
        f"[9/9] artefacts: videos {root / 'videos'}, annotations {root / 'annotations'}, lists {root / 'lists'}, "
        f"rawframes {root / 'rawframes'}, model {demo.onnx}, runs {root / 'runs'}, benchmark {root / 'bench.json'}, "
        f"features {root / 'features'}, flow {root / 'flow'}"
    )
    log(f"report (opens offline in any browser): {(root / 'runs' / 'torch_videos' / 'report.html').as_uri()}")
    return root


def _checkpoint(checkpoint: str | None, weights: Weights, log) -> tuple[str | None, Recognizer]:
    """The checkpoint's local path and its model; without the official file, seeded random weights (said loudly)."""
    try:
        checkpoint = str(resolve_checkpoint(checkpoint or weights.url))
        recognizer = load_model(checkpoint, weights)
        log(f"[1/9] checkpoint: {checkpoint}")
        return checkpoint, recognizer
    except DownloadError as e:
        log(f"[1/9] the official checkpoint is not available ({e}).")
        log(
            "      USING RANDOMLY INITIALISED WEIGHTS: the accuracy figures below are meaningless; only the pipeline "
            "and the speed are real. Pass --checkpoint PATH or put the file in the cache for real predictions."
        )
        return None, random_model(weights)


@dataclass
class _Demo:
    """The demo's steps over one directory."""

    root: Path
    weights: Weights
    log: Callable[[str], None]
    checkpoint: str | None  # None: random weights
    recognizer: Recognizer

    @property
    def onnx(self) -> Path:
        return self.root / "i3d.onnx"

    @property
    def view_shape(self) -> tuple[int, ...]:
        pre = self.weights.preprocessing
        return (pre.num_clips, 3, pre.clip_len, pre.size, pre.size)

    def prepare(self):
        """Sample videos named as the official crawler names them, annotations, rawframes, lists."""
        videos = self.root / "videos"
        videos.mkdir(exist_ok=True)
        for path in sample_videos():
            target = videos / f"{DEMO_VIDEOS[path.stem][0]}_000000_000010.mp4"
            if not target.exists():
                shutil.copyfile(path, target)
        train_csv, val_csv = write_annotations(self.root / "annotations")
        frames = self.root / "rawframes"
        report = extract_all(videos, frames, ExtractOptions(), progress=False, log=lambda _: None)
        self.log(f"[2/9] rawframes: {report.summary()} -> {frames}")
        lists = make_lists(train_csv, val_csv, self.root / "lists", videos=videos, rawframes=frames)
        self.log(f"[3/9] lists: {lists.reports['videos'].summary()} -> {self.root / 'lists'}")
        return lists

    def export(self) -> None:
        from .export.onnx import ExportOptions, example_input, export_onnx, verify_onnx

        options = ExportOptions(shape=(1, *self.view_shape), dynamic_batch=True)
        start = time.perf_counter()
        export_onnx(self.recognizer, self.onnx, options)
        example = example_input(options, self.weights.preprocessing, None)
        check = verify_onnx(self.onnx, self.recognizer, options, example=example)
        self.log(
            f"[4/9] ONNX export {self.onnx}: max rel error vs PyTorch {check.max_rel:.2g} on a real video "
            f"({'OK' if check.passed else 'FAILED'}, {time.perf_counter() - start:.0f} s)"
        )

    def evaluate(self, lists) -> None:
        from .evaluate.runner import EvalConfig, RunOptions, evaluate

        results = {}
        self.log("[5/9] evaluation (torch and onnxruntime, on rawframes and on videos):")
        for backend in ("torch", "onnxruntime"):
            for kind in ("rawframes", "videos"):
                config = EvalConfig(
                    list_file=str(lists.lists[kind]),
                    root=str(self.root / kind),
                    backend=backend,
                    checkpoint=self.checkpoint if backend == "torch" else None,
                    model=str(self.onnx) if backend == "onnxruntime" else None,
                    random_weights=self.checkpoint is None and backend == "torch",
                )
                run_dir = self.root / "runs" / f"{backend}_{kind}"
                start = time.perf_counter()
                options = RunOptions(workers=1, progress=False)
                m = evaluate(config, run_dir, options, resume=run_dir.exists(), weights=self.weights).metrics.all_videos
                results[(backend, kind)] = np.array(json.loads((run_dir / "result.json").read_text()))
                self.log(
                    f"      {backend:<11} {kind:<9} top1 {m.top1_acc:.4f} top5 {m.top5_acc:.4f} "
                    f"mean class {m.mean_class_accuracy:.4f}  ({time.perf_counter() - start:.0f} s) -> {run_dir}"
                )
        for kind in ("rawframes", "videos"):
            diff = np.abs(results[("torch", kind)] - results[("onnxruntime", kind)]).max()
            self.log(f"      torch vs onnxruntime on {kind}: max |difference| of fused probabilities {diff:.2g}")

    def bench(self) -> None:
        from .bench import HEADER, bench_inference, to_json
        from .runtime import BackendSpec, make_backend

        self.log("[6/9] benchmark (pure inference, batch 1, random uint8 input):")
        self.log("      " + HEADER)
        records = []
        for backend in ("torch", "onnxruntime"):
            model = self.onnx if backend == "onnxruntime" else None
            spec = BackendSpec(backend, self.checkpoint, model, random_weights=self.checkpoint is None)
            runner = make_backend(spec, self.weights)
            records.append(bench_inference(runner, 1, self.view_shape, warmup=1, iters=2, progress=False))
            self.log("      " + records[-1].row())
        (self.root / "bench.json").write_text(json.dumps(to_json(records), indent=1) + "\n", encoding="utf-8")

    def features(self) -> None:
        from .data.sampling import DenseClips
        from .features.plan import FeaturePlan, plan_outputs
        from .features.run import FeatureJob, extract_features
        from .runtime import BackendSpec, make_backend

        pre = self.weights.preprocessing
        spec = BackendSpec(checkpoint=self.checkpoint, random_weights=self.checkpoint is None, features=True)
        backend = make_backend(spec, self.weights)
        videos = sorted((self.root / "videos").iterdir())
        out = self.root / "features"
        tasks = plan_outputs([(v, v.name) for v in videos], out)
        plan = FeaturePlan(dense=DenseClips(pre.clip_len, 64, pre.frame_interval), batch_size=2)  # a clip / 64 frames
        start = time.perf_counter()
        summary = extract_features(FeatureJob(plan, self.weights, out, workers=1), tasks, backend)
        shapes = ", ".join(f"{t.out.name} {np.load(t.out).shape}" for t in tasks if t.out.exists())
        self.log(
            f"[7/9] features (i3d features, a clip every 64 frames): {summary.clips} clips of {len(tasks)} videos, "
            f"{time.perf_counter() - start:.0f} s -> {out}: {shapes}"
        )

    def two_stream(self) -> None:
        """TV-L1 flow images of one sample video (denseflow's layout, beside its RGB frames), then the paper's
        two-stream I3D reading them back (seeded random Inception weights: the pipeline, not the accuracy)."""
        from .model.weights import find_weights
        from .predict import Predictor
        from .runtime import BackendSpec, make_backend

        name = DEMO_VIDEOS["carphone_pristine"][0]  # 176x144, 120 frames: TV-L1 at its size, a few pairs/s a core
        source = next(p for p in (self.root / "videos").iterdir() if p.stem.startswith(name))
        videos, out = self.root / "flow_video", self.root / "flow"
        videos.mkdir(exist_ok=True)
        shutil.copyfile(source, videos / source.name)
        options = ExtractOptions(short_side=256, task="both")  # RGB short side 256; flow at 176x144 (never up)
        start = time.perf_counter()
        report = extract_all(videos, out, options, progress=False, log=lambda _: None)
        seconds = time.perf_counter() - start
        self.log(f"[8/9] optical flow (TV-L1, OpenCV's CPU one): {report.summary()}, {seconds:.0f} s -> {out}")
        rgb, flow = (find_weights(name) for name in ("rgb_imagenet", "flow_imagenet"))
        nets = [(make_backend(BackendSpec(random_weights=True), w), w) for w in (rgb, flow)]
        predictor = Predictor(nets[0][0], read_labels(None, rgb), rgb, flow=nets[1])  # flow images: read back
        start = time.perf_counter()
        prediction = predictor.predict(out / source.stem, "centercrop", topk=1)
        self.log(
            f"      two-stream I3D (Inception RGB + flow, random weights) on {source.stem}: {prediction.num_frames} "
            f"frames, {prediction.decoder}, top-1 {prediction.topk[0].label!r} ({time.perf_counter() - start:.0f} s)"
        )
