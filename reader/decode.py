"""Read exactly the requested frames of a video file with PyAV: `open_video(path) -> Video`.

Frame i is the i-th frame the decoder outputs, as the ffmpeg tool and players show it: turned
as the display matrix says, at the first frame's size where the size changes mid-stream, at
the time its packets give (docs/reading-videos.md; tests/test_conformance.py compares every
frame with ffmpeg's on real and quirky files).

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
  packet timestamp, so a decoder that drops or invents a frame is caught. Where every pts
  equals its dts and the codec reorders frames, the timestamps are in decode order: each
  frame must carry one no earlier frame carried. Not in .avi, whose packets carry no
  presentation time (FFmpeg's guess is out of order for H.264 B-frames); its frame times
  are the packets' decode times, sorted.
- the decoder's end of stream, its errors, and the frames it flags as concealed damage.
A frame that is not exact stops the read with DecodeError; the frames before it are what
the file holds, `num_frames` becomes their count (logged once per file), and a caller may
sample again within it. No frame is ever substituted.
"""
import itertools
import logging
import os

import av
import numpy as np

from . import packets
from .errors import DecodeError, check_indices
from .frames import FrameFolder

logger = logging.getLogger(__name__)

# what a folder of videos is searched for: phones write .mov, recorders and joined files .ts
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.m4v', '.avi', '.mkv', '.webm', '.ts')

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
        index = packets.index(path)
        shown, problem = index.shown, index.problem
        self._feed, self.frames_in_file = index.feed, index.in_file
        self._times = packets.sorted_stamps(shown)
        # Where every packet has pts == dts the timestamps are in decode order and say
        # nothing of the order frames are shown in: a muxer that wrote no composition
        # offsets for B-frames. The decoder's output order is then the only order there is.
        ordered = packets.reordered(shown) or not index.reorders
        checked = packets.sorted_pts(shown) if index.timestamped else None
        self._pts = checked if ordered else None
        self._pts_set = None if ordered or checked is None else frozenset(checked)
        self._num_frames = len(shown)
        if index.cut and self._pts is not None:
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
        """Seconds of each frame from the first: the packets' timestamps where the container
        stores them (sorted: presentation order), else index / the stream's average rate."""
        container, stream = packets.open_container(self.path)
        with container:
            base, rate = stream.time_base, stream.average_rate or stream.guessed_rate
        if self._times is not None and base:
            times = np.asarray(self._times[:self.num_frames], np.float64)
            return (times - times[0]) * float(base)
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
        size = None
        try:
            for index, frame in enumerate(decoded):
                size = size or (frame.width, frame.height)
                if index == target:
                    yield index, self._shown(frame, index, size)
                    target = next(pending, None)
                    if target is None:
                        return
        except _Stop as stop:
            raise self._shorter(stop, target) from None
        finally:
            decoded.close()

    def _shown(self, frame, index, size):
        """The RGB frame as players show it: at the first frame's size (a stream whose size
        changes is shown in one window) and turned as its display matrix says."""
        if (frame.width, frame.height) == size:
            rgb = frame.to_ndarray(format='rgb24')
        else:
            _warn_once(self.path, 'size', f'the frame size changes from {size[0]}x{size[1]} '
                                          f'to {frame.width}x{frame.height} at frame {index}; '
                                          f'such frames are scaled to the first size')
            # bicubic, as the ffmpeg tool scales them to the size its output started with
            rgb = frame.to_ndarray(width=size[0], height=size[1], format='rgb24',
                                   interpolation='BICUBIC')
        turns = _quarter_turns(frame.rotation)
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def _decoded(self):
        """Every shown frame in presentation order, each checked; _Stop at the first frame
        that is not exact, or when the decoder has no more."""
        container, stream = packets.open_container(self.path)
        unseen = set(self._pts_set or ())
        with container:
            stream.codec_context.thread_count = self.num_threads
            stream.codec_context.thread_type = 'AUTO'  # FFmpeg picks frame or slice threads
            index = 0
            try:
                for frame in _decode(container, stream, self._feed):
                    self._check(frame, index, unseen)
                    yield frame
                    index += 1
            except av.error.FFmpegError as e:
                raise _Stop(index, f'the decoder fails ({packets.first_line(e)})') from None
        raise _Stop(index, 'the decoder outputs no more frames')

    def _check(self, frame, index, unseen):
        """_Stop unless `frame` is exactly frame `index`: the decoder concealed no damage in
        it, and it carries the index-th smallest timestamp of the shown packets (or, where
        the timestamps are in decode order, one of theirs that no earlier frame carried)."""
        if frame.is_corrupt:
            raise _Stop(index, 'the decoder flags the frame as damaged (concealed errors)')
        if self._pts_set is not None:
            if frame.pts not in unseen:
                raise _Stop(index, f'a frame with a timestamp no packet has or an earlier frame '
                                   f'had (pts {frame.pts}): the decoder invented a frame')
            unseen.discard(frame.pts)
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


def _decode(container, stream, feed):
    """Every frame the decoder outputs for the first `feed` packets with data (those before
    the ones the end of the file cuts short)."""
    for packet in itertools.islice(packets.with_data(container, stream, []), feed):
        yield from stream.decode(packet)
    yield from stream.decode(None)  # the frames still held for reordering


def _quarter_turns(degrees):
    """Counter-clockwise quarter turns (np.rot90's k) for a display matrix's rotation; as the
    ffmpeg tool does, a rotation that is not a multiple of 90 degrees is not applied."""
    turns = round(degrees / 90)
    return turns % 4 if abs(degrees - 90 * turns) < 1 else 0


def open_video(path, num_threads=1, frame_template=''):
    """Open `path` (.mp4 .avi .mkv .webm ..., or a folder of frames named by `frame_template`,
    '' = as reader.frames detects); DecodeError names the path if it cannot be read."""
    if os.path.isdir(path):
        return FrameFolder(path, frame_template)
    return Video(path, num_threads)
