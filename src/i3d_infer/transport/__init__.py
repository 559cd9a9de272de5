"""Transport: decoded frames from worker processes to where the model runs, batched, overlapped with the model.

``slots``: shared-memory slots the workers write each video's distinct frames into (the pipe carries metadata);
``batches``: a batch's views gathered from those frames, on the host or on the GPU (pinned staging, side stream);
``stream``: the threads that keep decoding, copying, the model and the result writer busy at once.
"""
