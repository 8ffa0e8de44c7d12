"""Frames one at a time from a video file, a frame folder, a camera or a stream URL, for
online inference.

A stream is read frame by frame and never held in memory: a camera has no end and no frame
count. A file is read by reader.decode, as clips are, so the online model sees the frames
the clip models see (turned as the file's display matrix says, at the times its packets
give); a frame folder (Jester's <id>/00001.jpg ...) by reader.frames, at the rate the caller
states, since its frames carry no times; cameras and URLs are read by OpenCV.
"""
import logging
import os
import time

import cv2
import numpy as np

from reader.decode import DecodeError, open_video
from reader.frames import FrameFolder
from reader.transforms import test_transform

logger = logging.getLogger(__name__)


class StreamError(OSError):
    """A frame source that cannot be opened."""

    def __init__(self, source, reason):
        super().__init__(f'{source}: {reason}')
        self.source = source
        self.reason = reason


def parse_source(text, fps=None):
    """'0' -> camera index 0; a URL or a path stays a string (a path must exist; a frame
    folder needs its frame rate `fps`)."""
    text = str(text)
    if text.isdigit():
        return int(text)
    if '://' in text:
        return text
    if os.path.isdir(text):
        if fps is None or not fps > 0 or fps == float('inf'):
            raise StreamError(text, 'a frame folder, whose frames carry no times: give its '
                                    'frames per second with --fps (Jester and '
                                    'Something-Something V1: 12)')
        return text
    if not os.path.isfile(text):
        raise StreamError(text, 'no such video file (give a file, a frame folder, a camera '
                                'index or a URL)')
    return text


def stream_frames(source, fps=None, frame_template=''):
    """Yield (frame_index, time_seconds, RGB uint8 [H, W, 3]) in order until the source ends.

    `source` is a video path, a frame folder (its frames named by `frame_template`, '' =
    detected, at `fps` frames a second), a camera index (int or digit string) or a URL. A
    file's times are its frames' timestamps from the first; a camera's or a URL's are
    seconds since the first frame was read, since a live source's rate is not fixed.
    """
    source = parse_source(source, fps)
    if isinstance(source, str) and os.path.isdir(source):
        with FrameFolder(source, frame_template) as folder:
            for index in range(folder.num_frames):
                yield index, index / fps, folder.read([index])[0]
        return
    if isinstance(source, str) and '://' not in source:
        yield from _file_frames(source)
        return
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise StreamError(source, 'OpenCV cannot open this source')
    try:
        start = None
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            now = time.monotonic()
            start = now if start is None else start
            yield index, now - start, np.ascontiguousarray(bgr[:, :, ::-1])
            index += 1
    finally:
        capture.release()


def _file_frames(path):
    """A file's frames as reader.decode reads them. Where decoding stops early the stream
    ends there, as a camera's may: reader.decode has logged how many frames decode."""
    with open_video(path) as video:
        times = video.frame_times()
        try:
            for index, frame in enumerate(video.iter_frames()):
                yield index, float(times[index]), frame
        except DecodeError:
            if video.num_frames == 0:
                raise
            logger.warning('%s: the stream ends after frame %d, the last that decodes',
                           path, video.num_frames - 1)


def frame_transform(frame, data_cfg):
    """One RGB uint8 frame [H, W, 3] -> float32 [3, target_size, target_size], the
    centre view of the test transform (DATA section: short_size, target_size, mean, std,
    resize), as our own pipeline tests a clip."""
    views = test_transform(frame[None], data_cfg['short_size'], data_cfg['target_size'], 1,
                           data_cfg['mean'], data_cfg['std'], data_cfg['resize'])
    return views[0, 0]
