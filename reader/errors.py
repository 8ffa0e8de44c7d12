"""What reader.decode and reader.frames share: DecodeError and the check of frame indices.

A module of its own so that decode (which returns a FrameFolder for a folder) and frames can
both import it at the top without importing each other.
"""
import numpy as np


class DecodeError(Exception):
    """A video file that is missing, unreadable, corrupt or shorter than it claims."""

    def __init__(self, path, reason):
        super().__init__(f'{path}: {reason}')
        self.path = path
        self.reason = reason

    def __reduce__(self):
        # rebuilt from (path, reason), not from the formatted message, so that it crosses
        # from a loader worker process to the main one intact
        return type(self), (self.path, self.reason)


def check_indices(path, indices, num_frames):
    """`indices` as a list of ints in [0, num_frames); errors name `path` and the index."""
    indices = [_as_index(i) for i in indices]
    if not indices:
        raise ValueError(f'{path}: read() needs at least one frame index')
    for i in indices:
        if not 0 <= i < num_frames:
            raise IndexError(f'{path}: frame index {i} is out of range [0, {num_frames})')
    return indices


def _as_index(i):
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise TypeError(f'frame indices must be integers, got {i!r}')
    return int(i)
