"""A long video as a sequence of windows, each a test clip, decoded in one sequential pass.

Windows of `window` seconds start every `stride` seconds (and one ends at the video's end, so
the last seconds are covered); each samples seg_num frames of its own span as a test clip of
a video that long would (reader.sampling, 'test'). Overlapping windows share frames: every
frame any window needs is decoded once, in order, and transformed once; a window's clip is
built as soon as its last frame is read, and frames no later window needs are dropped, so the
memory held is that of the windows overlapping the current time, whatever the length.
"""
import collections

import numpy as np

from .sampling import sample_indices
from .stream import frame_transform

Window = collections.namedtuple('Window', 'start end frames')  # seconds, frame indices


def plan(times, window, stride, seg_num):
    """[Window] over frames at `times` (seconds, ascending): starts 0, stride, 2 stride ...
    while a whole window fits, then one ending at the last frame when the tail would be
    left out; a video shorter than a window is one window."""
    if window <= 0 or stride <= 0:
        raise ValueError(f'window and stride must be positive seconds, got {window}, {stride}')
    duration = float(times[-1]) + (float(times[1] - times[0]) if len(times) > 1 else 0.0)
    starts = list(np.arange(0.0, max(duration - window, 0.0) + 1e-9, stride))
    if starts[-1] + window < duration - 1e-9:
        starts.append(duration - window)
    windows = []
    for start in starts:
        end = min(start + window, duration)
        inside = np.flatnonzero((times >= start - 1e-9) & (times < end - 1e-9))
        if len(inside):
            picked = inside[sample_indices(len(inside), seg_num, 'test')]
            windows.append(Window(round(float(start), 6), round(float(end), 6), picked))
    return windows


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
