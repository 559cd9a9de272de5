"""Dataset preparation: annotations -> lists (``annotations``), videos -> rawframes (``extract``), the bundled sample
videos (``sample_videos``)."""
