"""A long video as a sequence of windows, each a test clip, decoded in one sequential pass.

Windows of `window` seconds start every `stride` seconds (and one ends at the video's end, so
the last seconds are covered); each samples seg_num frames of its own span as a test clip of
a video that long would (reader.sampling, 'test'). Overlapping windows share frames: every
frame any window needs is decoded once, in order, and transformed once; a window's clip is
built as soon as its last frame is read, and frames no later window needs are dropped, so the
memory held is that of the windows overlapping the current time, whatever the length.
"""
import collections
import math

import numpy as np

from .sampling import sample_indices
from .stream import frame_transform

Window = collections.namedtuple('Window', 'start end frames')  # seconds, frame indices
EPS = 1e-9  # seconds: times this close count as equal


def duration_of(times):
    """Seconds of a video whose frames are at `times`: the last frame lasts as the first."""
    return float(times[-1]) + float(times[1] - times[0])


def _starts(duration, window, stride):
    """(regular starts 0, stride, ... while a whole window fits, whether a tail window is
    added); the count is inf past 1e18, where no video has as many frames."""
    regular = (max(duration - window, 0.0) + EPS) / stride
    regular = math.ceil(regular) if regular < 1e18 else math.inf
    return regular, (regular - 1) * stride + window < duration - EPS


def count(duration, window, stride):
    """How many windows `plan` starts over `duration` seconds, found without making them."""
    regular, tail = _starts(duration, window, stride)
    return regular + int(tail)


def plan(times, window, stride, seg_num):
    """[Window] over frames at `times` (seconds, ascending): starts 0, stride, 2 stride ...
    while a whole window fits, then one ending at the last frame when the tail would be
    left out; a video shorter than a window is one window. ValueError for a stride that
    would start more windows than there are frames, and for fewer than two frames (no span).
    """
    if not (0 < window < math.inf and 0 < stride < math.inf):
        raise ValueError(f'window and stride must be positive seconds, got {window}, {stride}')
    if len(times) < 2:
        raise ValueError(f'{len(times)} frame: no span to cut into windows')
    duration = duration_of(times)
    regular, tail = _starts(duration, window, stride)
    if regular + tail > len(times):
        raise ValueError(f'{regular + tail} windows of {window} s every {stride} s, more '
                         f'than the {len(times)} frames')
    starts = np.append(np.arange(regular) * stride, [duration - window] * tail)
    ends = np.minimum(starts + window, duration)
    # a window's frames are those at times in [start, end), found by bisection
    firsts = np.searchsorted(times, starts - EPS)
    stops = np.searchsorted(times, ends - EPS)
    return [Window(round(float(start), 6), round(float(end), 6),
                   first + sample_indices(stop - first, seg_num, 'test'))
            for start, end, first, stop in zip(starts, ends, firsts, stops) if stop > first]


def clips(video, windows, data):
    """Yield (window, float32 clip [1, T, 3, H, W]) in window order, reading `video` once,
    each frame transformed once (stream.frame_transform of the DATA section)."""
    pending = collections.deque(windows)
    needed = sorted({int(i) for w in windows for i in w.frames})
    kept = {}
    for index, frame in video.stream(needed):
        kept[index] = frame_transform(frame, data)
        while pending and pending[0].frames[-1] <= index:
            w = pending.popleft()
            yield w, np.stack([kept[int(i)] for i in w.frames])[None]
            first_needed = pending[0].frames[0] if pending else index + 1
            for old in [i for i in kept if i < first_needed]:
                del kept[old]
