"""Our Inception I3D against TensorFlow's own ops: DeepMind's ``i3d.py`` graph rebuilt with ``tf.nn`` (conv3d,
max_pool3d SAME, avg_pool3d VALID, batch norm without gamma, eps 1e-3), its weights read by TensorFlow's own
checkpoint reader from a bundle our tests' writer made, run on random inputs of odd and even sizes.

Needs ``tensorflow-cpu`` (not a dependency of i3d-infer): ``pip install tensorflow-cpu`` in a separate environment
with i3d-infer, then ``python benchmarks/tf_crosscheck.py``. Prints one JSON line per input shape.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from i3d_infer.model.checkpoint import load_model
from i3d_infer.model.weights import find_weights
from inception_reference import MIXED, random_variables, write_bundle


def tf_forward(reader, video: np.ndarray, prefix: str = "RGB/inception_i3d/") -> np.ndarray:
    """DeepMind's InceptionI3d (``i3d.py``) with tf.nn ops, the variables read through TensorFlow's reader."""

    def unit(x, scope, stride=(1, 1, 1)):
        w = reader.get_tensor(f"{prefix}{scope}/conv_3d/w")
        x = tf.nn.conv3d(x, w, strides=[1, *stride, 1], padding="SAME")
        mean, var, beta = (reader.get_tensor(f"{prefix}{scope}/batch_norm/{n}")
                           for n in ("moving_mean", "moving_variance", "beta"))  # fmt: skip
        return tf.nn.relu((x - mean) / tf.sqrt(var + 1e-3) + beta)

    def pool(x, kernel, stride):
        return tf.nn.max_pool3d(x, ksize=[1, *kernel, 1], strides=[1, *stride, 1], padding="SAME")

    x = unit(tf.constant(video), "Conv3d_1a_7x7", (2, 2, 2))
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = unit(unit(x, "Conv3d_2b_1x1"), "Conv3d_2c_3x3")
    x = pool(x, (1, 3, 3), (1, 2, 2))
    for block in MIXED:
        if block == "Mixed_4b":
            x = pool(x, (3, 3, 3), (2, 2, 2))
        if block == "Mixed_5b":
            x = pool(x, (2, 2, 2), (2, 2, 2))
        second = "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"
        b0 = unit(x, f"{block}/Branch_0/Conv3d_0a_1x1")
        b1 = unit(unit(x, f"{block}/Branch_1/Conv3d_0a_1x1"), f"{block}/Branch_1/Conv3d_0b_3x3")
        b2 = unit(unit(x, f"{block}/Branch_2/Conv3d_0a_1x1"), f"{block}/Branch_2/{second}")
        b3 = unit(pool(x, (3, 3, 3), (1, 1, 1)), f"{block}/Branch_3/Conv3d_0b_1x1")
        x = tf.concat([b0, b1, b2, b3], 4)
    x = tf.nn.avg_pool3d(x, ksize=[1, 2, 7, 7, 1], strides=[1, 1, 1, 1, 1], padding="VALID")
    w = reader.get_tensor(f"{prefix}Logits/Conv3d_0c_1x1/conv_3d/w")
    logits = tf.nn.conv3d(x, w, strides=[1] * 5, padding="SAME") + reader.get_tensor(
        f"{prefix}Logits/Conv3d_0c_1x1/conv_3d/b"
    )
    return tf.reduce_mean(tf.squeeze(logits, [2, 3]), axis=1).numpy()


def main() -> None:
    variables = random_variables(seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(Path(tmp) / "rgb_imagenet" / "model.ckpt", variables, checksums=True)
        reader = tf.train.load_checkpoint(str(bundle))  # TensorFlow's own reader: our writer's format is TF's
        model = load_model(bundle, find_weights("rgb_imagenet")).network
        for shape in ((9, 193, 193), (10, 224, 224), (13, 200, 211), (64, 224, 224), (79, 224, 224)):
            video = np.random.default_rng(sum(shape)).uniform(-1, 1, (1, *shape, 3)).astype(np.float32)
            expected = tf_forward(reader, video)
            with torch.inference_mode():
                ours = model(torch.from_numpy(video).permute(0, 4, 1, 2, 3)).numpy()
            error = float(np.abs(ours - expected).max() / np.abs(expected).max())
            print(json.dumps({"shape": shape, "max_relative_error": error, "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
