"""Errors a user can act on: the CLI prints their message as one line (no traceback unless ``--debug``)."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries raise multi-line ones), or its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class I3DError(Exception):
    """A problem with the user's input or environment, described in one line that names the file and the problem."""


class CheckpointError(I3DError):
    """A checkpoint that cannot be read, or that does not fit the network."""


class DownloadError(I3DError):
    """A download that failed, was cut short, or does not match its expected hash."""


class VideoError(I3DError):
    """A video file or rawframe directory that cannot be read."""


class HandOver(VideoError):
    """A GPU decoder does not take this video (it would not give the reference's pixels): a CPU worker decodes it,
    the message saying why."""


class InputError(I3DError):
    """An input the network cannot take (too few frames, too small, wrong channels): the message says its minimum."""
