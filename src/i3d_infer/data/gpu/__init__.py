"""GPU decoding (the ``[gpu]`` extra): NVDEC and nvJPEG readers (``decode``) that leave the sampled, resized frames in
GPU memory, converted with OpenCV's arithmetic (``tensor_ops``, or one Triton kernel: ``fused_nv12``)."""
