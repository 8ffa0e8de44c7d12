"""A folder of pre-extracted frames read like a video: `FrameFolder(path)`, as `Video` does.

The folder holds img_00001.jpg ... img_<n>.jpg, frame i of the video being img_<i+1>.jpg, as
written by data/extract_frames.py (and by the original TSN/TSM extraction scripts).
`reader.decode.open_video` returns a FrameFolder when given a folder, so a list file may name
frame folders instead of video files and nothing downstream changes.

Nothing is guessed: the frames must be numbered 1..n without a gap or a duplicate (a gap
would shift every later frame index), and a JPEG that is unreadable or cut short raises
DecodeError naming the file instead of yielding a partial or substituted frame.
"""
import os
import re

import cv2
import numpy as np

from .errors import DecodeError, check_indices

_FRAME_NAME = re.compile(r'img_(.*)\.jpg')
_NUMBER = re.compile(r'[0-9]+')
# Every complete JPEG ends with the End Of Image marker. cv2.imread decodes a file cut short
# without an error (the missing rows come out gray); cv2.imdecode refuses it in OpenCV 5.0,
# and checking the marker keeps that so whatever the OpenCV version.
_JPEG_END = b'\xff\xd9'


class FrameFolder:
    """Frames img_00001.jpg .. of a folder: `num_frames`, `read(indices)` like `Video`."""

    backend = 'frames'

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise DecodeError(self.path, 'folder does not exist' if not os.path.exists(self.path)
                              else 'not a folder')
        self._files = _numbered_frames(self.path)

    @property
    def num_frames(self):
        return len(self._files)

    def read(self, indices):
        """uint8 [len(indices), H, W, 3] RGB, frame k being frame indices[k] (0-based)."""
        indices = check_indices(self.path, indices, self.num_frames)
        frames = {i: self._read_one(i) for i in set(indices)}  # a repeated index is read once
        shapes = {frame.shape for frame in frames.values()}
        if len(shapes) > 1:
            raise DecodeError(self.path, f'frames differ in size: {sorted(shapes)}')
        return np.stack([frames[i] for i in indices])

    def _read_one(self, index):
        path = os.path.join(self.path, self._files[index])
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise DecodeError(path, f'cannot read the file: {e.strerror}') from None
        if data[-2:].tobytes() != _JPEG_END:
            raise DecodeError(path, 'not a complete JPEG (no end marker: cut short or corrupt)')
        frame = cv2.imdecode(data, cv2.IMREAD_COLOR)  # cv2.imread's decoder, on the bytes read
        if frame is None:
            raise DecodeError(path, 'OpenCV cannot decode this JPEG (corrupt or not a JPEG)')
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self):
        pass  # nothing is held open between reads; here for the Video interface

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _numbered_frames(folder):
    """File names of frames 1..n of `folder` in order; DecodeError naming it otherwise."""
    try:
        names = [n for n in os.listdir(folder) if _FRAME_NAME.fullmatch(n)]
    except OSError as e:
        raise DecodeError(folder, f'cannot list the folder: {e.strerror}') from None
    if not names:
        raise DecodeError(folder, 'no img_*.jpg frames in this folder')
    numbered = {}
    for name in names:
        number = _FRAME_NAME.fullmatch(name).group(1)
        if not _NUMBER.fullmatch(number):
            raise DecodeError(folder, f'{name} is not numbered like img_00001.jpg')
        if int(number) in numbered:
            raise DecodeError(folder, f'{name} and {numbered[int(number)]} are the same frame')
        numbered[int(number)] = name
    missing = sorted(set(range(1, len(names) + 1)) - set(numbered))
    if missing:
        raise DecodeError(folder, f'{len(names)} frames must be numbered 1..{len(names)} '
                                  f'without gaps; img_{missing[0]:05d}.jpg is missing')
    return [numbered[i] for i in range(1, len(names) + 1)]
