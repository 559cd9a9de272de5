"""Features and timelines: per-clip outputs of the network, for videos of any length (``i3d features``)."""
