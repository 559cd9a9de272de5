"""Export to ONNX (``onnx.py``) and int8 OpenVINO (``int8.py``). The options' choices live here, free of torch."""

INPUT_KINDS = ("uint8", "float32")
OUTPUT_KINDS = ("clip-logits", "video-probs", "features")  # features: (B·V, 2048) pooled, for i3d features
DEFAULT_SHAPE = (1, 10, 3, 32, 256, 256)
DEFAULT_OPSET = 17  # the newest opset the TorchScript exporter writes natively; 11 for Ascend ATC
