"""Frames one at a time from a video file, a camera or a stream URL, for online inference.

Unlike reader.decode, which decodes a file up to the frames a clip samples and knows its frame
count, a stream is read frame by frame and never held in memory: a camera has no end and no
frame count.
"""
import os
import time

import cv2
import numpy as np

from reader.transforms import test_transform


class StreamError(OSError):
    """A frame source that cannot be opened."""

    def __init__(self, source, reason):
        super().__init__(f'{source}: {reason}')
        self.source = source
        self.reason = reason


def parse_source(text):
    """'0' -> camera index 0; a URL or a path stays a string (a path must exist)."""
    text = str(text)
    if text.isdigit():
        return int(text)
    if '://' in text:
        return text
    if not os.path.isfile(text):
        raise StreamError(text, 'no such video file (give a file, a camera index or a URL)')
    return text


def stream_frames(source):
    """Yield (frame_index, time_seconds, RGB uint8 [H, W, 3]) in order until the source ends.

    `source` is a video path, a camera index (int or digit string) or a URL. A file's
    times are frame_index / fps, its nominal constant frame rate; a camera's or a URL's
    are seconds since the first frame was read, since a live source's rate is not fixed.
    """
    source = parse_source(source)
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise StreamError(source, 'OpenCV cannot open this source')
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        live = not isinstance(source, str) or '://' in source
        if not live and not fps > 0:
            raise StreamError(source, f'the file reports no frame rate (fps {fps})')
        start = None
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            now = time.monotonic()
            start = now if start is None else start
            seconds = now - start if live else index / fps
            yield index, seconds, np.ascontiguousarray(bgr[:, :, ::-1])
            index += 1
    finally:
        capture.release()


def frame_transform(frame, data_cfg):
    """One RGB uint8 frame [H, W, 3] -> float32 [3, target_size, target_size], the
    centre view of the test transform (DATA section: short_size, target_size, mean, std,
    resize), as our own pipeline tests a clip."""
    views = test_transform(frame[None], data_cfg['short_size'], data_cfg['target_size'], 1,
                           data_cfg['mean'], data_cfg['std'], data_cfg['resize'])
    return views[0, 0]
