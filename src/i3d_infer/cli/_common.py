"""What several commands share: the model and sampling options, the weights they pick, where they run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.flow import IMPLEMENTATIONS, FlowMethod
from ..errors import I3DError
from ..machine import Placement, decide_placement
from ..model.weights import SAMPLING_MODES, Weights, choose_weights, find_weights
from ..runtime import BACKENDS
from ..runtime.base import ENGINES, PRECISION_CHOICES


def model_arguments(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="runtime (default: torch)")
    parser.add_argument("--checkpoint", help=checkpoint_help)
    parser.add_argument("--model", help="exported .onnx file, for the onnxruntime and openvino backends")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="torch: fast (2D-factored, BN folded, CUDA graphs; the default) or eager (the 3D reference model)",
    )
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES, help="torch (default: fp16 on a GPU with the fast engine, else fp32)"
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when torch sees a GPU, else cpu)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for the model (default: all cores)")


def ray_options(args: argparse.Namespace):
    """``--cluster ray`` (with ``--ray-address``, ``--gpus`` where the command has it) as ``RayOptions``; None
    locally."""
    gpus = getattr(args, "gpus", None)
    if args.cluster == "ray":
        from ..transport.ray_data import RayOptions

        return RayOptions(args.ray_address, gpus)
    if args.ray_address or gpus is not None:
        raise I3DError(f"--ray-address{' and --gpus are' if hasattr(args, 'gpus') else ' is'} for --cluster ray")
    return None


def flow_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--flow-checkpoint",
        help=f"two streams: a flow-stream checkpoint (Inception flow_imagenet, either layout) beside --checkpoint's "
        f"RGB one; {what}. Flow: TV-L1 computed from each video (--flow), or a rawframe directory's flow images "
        "(i3d extract --task both, either layout: u8/255*2-1)",
    )
    flow_method_argument(parser)


def flow_method_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--flow",
        choices=IMPLEMENTATIONS,
        help="which TV-L1: opencv (OpenCV's own, on CPU cores: a few frame pairs/s a core at 176x144, minutes per "
        "10-second video at 256p) or torch (the same algorithm batched over frame pairs, on --device; within the "
        "spread between OpenCV versions of opencv's; see the README) (default: torch on a GPU, else opencv)",
    )


def flow_method(
    args: argparse.Namespace, device: str, *, wanted: bool, needs: str = "two streams (--flow-checkpoint)"
) -> FlowMethod | None:
    """``--flow`` on ``device`` where the command computes flow (``wanted``), else None: torch where the device is a
    GPU and nothing was asked (said once, stderr).

    Raises:
        I3DError: ``--flow`` given where no flow is computed (it is for ``needs``).
    """
    if not wanted:
        if args.flow is not None:
            raise I3DError(f"--flow is for {needs}")
        return None
    implementation = args.flow
    if implementation is None:
        implementation = "torch" if device.startswith("cuda") else "opencv"
        if implementation == "torch":
            print(f"i3d: TV-L1 flow in torch on {device} (--flow opencv: OpenCV's, on the CPU)", file=sys.stderr)
    return FlowMethod(implementation, device)


def sampling_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sampling",
        choices=SAMPLING_MODES,
        help="test clip offsets: 0.x (mmaction2 0.x, the seed's), 1.x (mmaction2 >= 1.0.0rc2) or dense "
        "(DenseSampleFrames) (default: the checkpoint's, recognised by its file name; else 0.x)",
    )


def chosen_weights(args: argparse.Namespace) -> Weights:
    """The checkpoint's description with --sampling applied; says once (stderr) what a given file was taken for.
    A command's unset ``--protocol`` becomes the checkpoint's own (mmaction2's: seed; Inception: centercrop)."""
    sampling = getattr(args, "sampling", None)  # the commands without --sampling have none
    try:
        weights, note = choose_weights(args.checkpoint, sampling)
        exported = exported_from(args)
        if exported is not None:
            weights = find_weights(exported).with_sampling(sampling)
            note = f"{Path(args.model).name} was exported from {weights.describe()}"
    except ValueError as e:
        raise I3DError(str(e)) from None
    if weights.stream != "rgb":  # every command here reads RGB frames
        raise I3DError(
            f"{args.checkpoint or args.model}: {weights.name} is the {weights.stream} stream (2-channel optical flow "
            "in): give it as --flow-checkpoint beside an RGB one (predict, eval, features), or run it on a flow tensor "
            "from Python"
        )
    if getattr(args, "protocol", "") is None:
        args.protocol = weights.preprocessing.protocol
    if note:
        print(f"i3d: {note}{'' if sampling is None else f' (--sampling {sampling})'}", file=sys.stderr)
    return weights


def exported_from(args: argparse.Namespace) -> str | None:
    """The checkpoint description an ``--model`` ONNX graph names in its metadata (``i3d export`` writes it), when
    no ``--checkpoint`` says otherwise."""
    model = getattr(args, "model", None)
    if args.checkpoint is not None or model is None or Path(model).suffix != ".onnx" or not Path(model).is_file():
        return None
    from ..export.onnx import weights_of

    return weights_of(model)


def placement(args: argparse.Namespace, *, batch_size: int | None = None, batched: bool = True) -> Placement:
    """Where the command runs, from the machine and its flags; what was chosen for a GPU is said once (stderr)."""
    where = decide_placement(
        backend=args.backend,
        device=args.device,
        engine=args.engine,
        precision=args.precision,
        batch_size=batch_size,
        workers=getattr(args, "workers", None),
        batched=batched,
    )
    if where.note:
        print(f"i3d: {where.note}", file=sys.stderr)
    return where
