"""Read exactly the requested frames of a video file with PyAV: `open_video(path) -> Video`.

Frames are found by decoding forward from the first frame and keeping the requested ones;
nothing is found by seeking. On videos whose frame i carries i in its pixels (tests/videos.py)
the seek-based access of decord 0.6 (`get_batch`, `skip_frames` across a keyframe) and of
OpenCV (`CAP_PROP_POS_FRAMES`) returned wrong frames on H.264 with B-frames or open GOPs, on
mpeg4 in .avi and on variable frame rates; decoding from the start was exact on every file.
Its cost is a decode up to the last requested frame; only the requested frames are
converted to RGB. For a few frames spread over a clip this is what a keyframe seek costs
anyway when keyframes are sparse (every 250 frames is common).

PyAV, unlike decord and OpenCV, shows what exactness needs:
- the packets, so frames are counted at open without decoding: those with data that the
  container does not discard. An mp4 whose first frame an edit list trims (common with
  B-frames) announces N frames of which N-1 are shown; decord counts N and returns the
  previous frame again for the last one.
- the container's announced count (`stream.frames`, 0 in .mkv/.webm), next to the packets
  present: an mp4 cut short keeps an index announcing every frame. That is logged once per
  file, and decord and OpenCV read such a file as a shorter video without a word.
- a timestamp per packet and per frame: the i-th decoded frame must carry the i-th smallest
  packet timestamp, so a decoder that drops or invents a frame is caught. Not in .avi, whose
  packets carry no presentation time (FFmpeg's guess is out of order for H.264 B-frames).
- the decoder's end of stream, its errors, and the frames it flags as concealed damage.
A frame that is not exact stops the read with DecodeError; the frames before it are what
the file holds, `num_frames` becomes their count (logged once per file), and a caller may
sample again within it. No frame is ever substituted.
"""
import logging
import os

import av
import numpy as np

from . import packets
from .errors import DecodeError, check_indices
from .frames import FrameFolder

logger = logging.getLogger(__name__)

_warned = set()  # (path, kind) already logged by this process


def _warn_once(path, kind, message):
    """Log `message` about `path` once per process and kind: a loader reads a video at
    every epoch, and one line says all there is to say about the file."""
    if (path, kind) not in _warned:
        _warned.add((path, kind))
        logger.warning('%s: %s', path, message)


class _Stop(Exception):
    """Decoding stopped being exact at frame `index`; every earlier frame was exact."""

    def __init__(self, index, reason):
        super().__init__(reason)
        self.index, self.reason = index, reason


class Video:
    """An open video file: `num_frames` exact frames, `read(indices)` returns them.

    Use `open_video(path)`; `num_threads` is the decoder threads per video (1 suits
    DataLoader worker processes that already fill the cores). `num_frames` may shrink when
    a read finds that fewer frames decode than the file holds.
    """

    backend = 'pyav'

    def __init__(self, path, num_threads=1):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DecodeError(path, 'file does not exist' if not os.path.exists(path)
                              else 'not a regular file')
        self.path, self.num_threads = path, num_threads
        shown, timestamped, cut, problem = packets.index(path)
        self._pts = packets.sorted_pts(shown) if timestamped else None
        self._num_frames = len(shown)
        if cut and self._pts is not None:
            self._num_frames = packets.before_missing(shown, self._pts)
            if self._num_frames < len(shown):
                problem += (f'; the last {len(shown) - self._num_frames} in time are not read, '
                            f'missing frames may precede them')
        if self._num_frames < 1:  # an error, not also a warning
            raise DecodeError(path, problem or 'the video stream holds no frame')
        if problem is not None:
            _warn_once(path, 'index', problem)

    @property
    def num_frames(self):
        return self._num_frames

    def read(self, indices):
        """uint8 [len(indices), H, W, 3] RGB, frame k being frame indices[k] of the file."""
        indices = check_indices(self.path, indices, self.num_frames)
        frames = dict(self._frames(sorted(set(indices))))
        shapes = {frame.shape for frame in frames.values()}
        if len(shapes) > 1:
            raise DecodeError(self.path, f'frames differ in size: {sorted(shapes)}')
        return np.stack([frames[i] for i in indices])

    def iter_frames(self):
        """Yield every frame in order, uint8 [H, W, 3] RGB, decoding the file once (for
        frame extraction; clips use `read`)."""
        for _, frame in self._frames(range(self.num_frames)):
            yield frame

    def stream(self, indices):
        """Yield (index, uint8 [H, W, 3] RGB) for the frames `indices`, in order, decoding
        the file once: a long video's overlapping windows read each frame once."""
        return self._frames(sorted(set(check_indices(self.path, indices, self.num_frames))))

    def frame_times(self):
        """Seconds of each frame from the first: its timestamp where the container stores
        them, else index / the stream's average frame rate."""
        container, stream = packets.open_container(self.path)
        with container:
            base, rate = stream.time_base, stream.average_rate or stream.guessed_rate
        if self._pts is not None and base:
            pts = np.asarray(self._pts[:self.num_frames], np.float64)
            return (pts - pts[0]) * float(base)
        if not rate:
            raise DecodeError(self.path, 'the stream states no frame rate and no timestamps')
        return np.arange(self.num_frames) / float(rate)

    def _frames(self, wanted):
        """Yield (index, RGB frame) for the sorted unique indices `wanted`, in order."""
        pending = iter(wanted)
        target = next(pending, None)
        if target is None:
            return
        decoded = self._decoded()
        try:
            for index, frame in enumerate(decoded):
                if index == target:
                    yield index, frame.to_ndarray(format='rgb24')
                    target = next(pending, None)
                    if target is None:
                        return
        except _Stop as stop:
            raise self._shorter(stop, target) from None
        finally:
            decoded.close()

    def _decoded(self):
        """Every shown frame in presentation order, each checked; _Stop at the first frame
        that is not exact, or when the decoder has no more."""
        container, stream = packets.open_container(self.path)
        with container:
            stream.codec_context.thread_count = self.num_threads
            stream.codec_context.thread_type = 'AUTO'  # FFmpeg picks frame or slice threads
            index = 0
            try:
                for frame in _decode(container, stream):
                    self._check(frame, index)
                    yield frame
                    index += 1
            except av.error.FFmpegError as e:
                raise _Stop(index, f'the decoder fails ({packets.first_line(e)})') from None
        raise _Stop(index, 'the decoder outputs no more frames')

    def _check(self, frame, index):
        """_Stop unless `frame` is exactly frame `index`: the decoder concealed no damage in
        it, and it carries the index-th smallest timestamp of the shown packets."""
        if frame.is_corrupt:
            raise _Stop(index, 'the decoder flags the frame as damaged (concealed errors)')
        if self._pts is None:
            return
        expected = self._pts[index] if index < len(self._pts) else None
        if frame.pts != expected:
            raise _Stop(index, f"a frame's timestamp not advancing as the packets' do (pts "
                               f'{frame.pts}, expected {expected}): the decoder dropped or '
                               f'invented a frame')

    def _shorter(self, stop, target):
        """After `stop` while looking for frame `target`: the frames before stop.index are
        all that decode, so num_frames becomes their count; the DecodeError to raise."""
        before = self._num_frames
        self._num_frames = min(before, stop.index)
        reason = (f'only {stop.index} of {before} frames decode: {stop.reason} at frame '
                  f'{stop.index}')
        _warn_once(self.path, 'decode', reason)
        return DecodeError(self.path, f'frame {target} cannot be read, {reason}')

    def close(self):
        pass  # each read opens the file anew (decoding from the start); nothing is held

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode(container, stream):
    """Every frame the decoder outputs for the packets present, cut-short ones left out."""
    for packet in packets.with_data(container, stream, []):
        if not packet.is_corrupt:
            yield from stream.decode(packet)
    yield from stream.decode(None)  # the frames still held for reordering


def open_video(path, num_threads=1):
    """Open `path` (.mp4 .avi .mkv .webm ..., or a folder of frames written by
    data/extract_frames.py); DecodeError names the path if it cannot be read."""
    if os.path.isdir(path):
        return FrameFolder(path)
    return Video(path, num_threads)
