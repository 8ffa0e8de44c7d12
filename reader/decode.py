"""Read exactly the requested frames of a video file: `open_video(path) -> Video`.

Frames are found by decoding forward from the first frame and keeping the requested ones;
nothing is found by seeking. Measured on videos whose frame i carries i in its pixels
(tests/videos.py), the seek-based access of both libraries returns wrong frames:
- decord 0.6 `get_batch`, `vr[i]` and `skip_frames` across a keyframe (they seek to the
  keyframe, then count decoded frames): off by the number of B-frames for mpeg4
  (Xvid-style) with B-frames in .avi and .mp4, off by one frame (.mp4) or a whole keyframe
  interval (.mkv) for H.264 with open GOPs, and off by a keyframe interval (frame 255
  returned as frame 5) for H.264 with B-frames in .avi;
- decord 0.6 `skip_frames` even between keyframes in .avi files with B-frames (mpeg4 or
  H.264): it lands one frame early, so in .avi every frame is decoded with `next()`;
- OpenCV `CAP_PROP_POS_FRAMES` lands a few frames early on variable-frame-rate H.264.
Decoding from the start (decord `next()`, OpenCV `grab()`) was exact on every file. Its
cost is a sequential decode up to the last requested frame; skipped frames are decoded but
not converted to RGB (one conversion per keyframe passed, to keep decord from seeking).
For a few frames spread over a clip this is what a keyframe seek costs anyway when
keyframes are sparse (every 250 frames is common).

The frame count is not trusted blindly either: OpenCV's CAP_PROP_FRAME_COUNT is a
duration * fps estimate in .mkv/.webm (320 for 300 frames with a time gap), so there the
frames are counted by decoding; in .mp4/.avi it counts frames whose data is missing from a
cut file, so it is checked by decoding the last frame, and counted when that fails.
decord counts the packets at open (exact for intact files) and refuses files whose data
stops early, which then go to OpenCV. A frame that cannot be decoded raises DecodeError;
no frame is ever substituted.
"""
import logging
import os

import cv2
import numpy as np

try:
    import decord
except ImportError:  # OpenCV alone reads every supported container, only slower to open
    decord = None

from .errors import DecodeError, check_indices
from .frames import FrameFolder

logger = logging.getLogger(__name__)

# Containers that store one index entry per frame, so OpenCV's frame count is exact unless
# frame data is missing (which the last-frame check catches). Elsewhere (.mkv .webm ...) the
# count is duration * fps, wrong for variable frame rates, so the frames are counted.
_INDEXED_CONTAINERS = ('.mp4', '.m4v', '.mov', '.avi')


class _DecordFrames:
    """Sequential decoding with decord; raises decord's own errors (the caller falls back)."""

    name = 'decord'

    def __init__(self, path, num_threads):
        self.path, self.num_threads = path, num_threads
        self.can_skip = os.path.splitext(path)[1].lower() != '.avi'  # see the module doc
        reader = decord.VideoReader(path, num_threads=num_threads)
        self.num_frames = len(reader)
        self.keyframes = sorted(int(k) for k in reader.get_key_indices())

    def _skip(self, reader, count):
        """Decode `count` frames, without converting them where skip_frames is exact."""
        if not self.can_skip:
            for _ in range(count):
                reader.next()
        elif count > 0:  # decord asserts count > 0
            reader.skip_frames(count)

    def _advance(self, reader, pos, index):
        """Decode frames pos..index-1 without converting them; returns index.

        decord's skip_frames seeks (and lands on the wrong frame, see the module doc) when
        the skipped span ends at or after a keyframe beyond the current frame, so the span
        is cut before each such keyframe and the frame before it is read with next().
        """
        for key in self.keyframes:
            if key <= pos:
                continue
            if key > index:
                break
            self._skip(reader, key - 1 - pos)
            reader.next()
            pos = key
        self._skip(reader, index - pos)
        return index

    def frames(self, wanted):
        """Yield (index, RGB frame) for the sorted unique indices `wanted`, in order."""
        reader = decord.VideoReader(self.path, num_threads=self.num_threads)
        pos = 0
        for index in wanted:
            pos = self._advance(reader, pos, index)
            try:
                frame = reader.next().asnumpy()
            except StopIteration:
                raise DecodeError(self.path, f'frame {index} of {self.num_frames} announced '
                                             f'frames cannot be decoded (the file ends early)')
            if frame.ndim != 3 or frame.shape[2] != 3:
                # decord 0.6 returns 4 channels for some narrow frames (48 px wide H.264):
                # not RGB, so the caller reads the file with OpenCV instead
                raise ValueError(f'decord returned a frame of shape {frame.shape}, not H x W x 3')
            pos = index + 1
            yield index, frame


class _OpenCVFrames:
    """Sequential decoding with cv2.VideoCapture; the frame count is checked, see module doc."""

    name = 'opencv'

    def __init__(self, path, num_threads):
        self.path, self.num_threads = path, num_threads
        capture = self._open()
        try:
            claimed = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            trusted = (os.path.splitext(path)[1].lower() in _INDEXED_CONTAINERS
                       and self._last_frame_decodes(capture, claimed))
        finally:
            capture.release()
        self.num_frames = claimed if trusted else self._count()
        if self.num_frames < 1:
            raise DecodeError(path, 'OpenCV decodes no frame from this file')

    def _open(self):
        params = [cv2.CAP_PROP_N_THREADS, self.num_threads] if hasattr(cv2, 'CAP_PROP_N_THREADS') else []
        capture = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise DecodeError(self.path, 'OpenCV cannot open the file (not a video, or corrupt)')
        return capture

    @staticmethod
    def _last_frame_decodes(capture, claimed):
        """True when the claimed count's last frame decodes and nothing follows it.

        Not proof on its own: the seek may land early (variable frame rate) on the true
        last frame; hence only used for containers with a per-frame index.
        """
        if claimed < 1:
            return False
        capture.set(cv2.CAP_PROP_POS_FRAMES, claimed - 1)
        return capture.grab() and not capture.grab()

    def _count(self):
        capture = self._open()
        count = 0
        while capture.grab():
            count += 1
        capture.release()
        return count

    def frames(self, wanted):
        """Yield (index, RGB frame) for the sorted unique indices `wanted`, in order."""
        capture = self._open()
        try:
            pos = 0
            for index in wanted:
                while pos <= index:
                    if not capture.grab():  # decodes without converting
                        raise DecodeError(self.path, f'OpenCV cannot decode frame {pos} of '
                                                     f'{self.num_frames}')
                    pos += 1
                ok, frame = capture.retrieve()
                if not ok:
                    raise DecodeError(self.path, f'OpenCV cannot convert frame {index}')
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


class Video:
    """An open video file: `num_frames` decodable frames, `read(indices)` returns them exactly.

    Use `open_video(path)`; `num_threads` is the decoder threads per video (1 suits
    DataLoader worker processes that already fill the cores).
    """

    def __init__(self, path, num_threads=1):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DecodeError(path, 'file does not exist' if not os.path.exists(path)
                              else 'not a regular file')
        self.path, self.num_threads = path, num_threads
        self._source, decord_error = None, None
        if decord is not None:
            try:
                self._source = _DecordFrames(path, num_threads)
            except Exception as e:  # decord's errors have no public type; any means "use OpenCV"
                decord_error = _first_line(e)
        if self._source is None:
            try:
                self._source = _OpenCVFrames(path, num_threads)
            except DecodeError as e:
                if decord_error is None:
                    raise
                raise DecodeError(path, f'{e.reason}; decord: {decord_error}') from None
            if decord_error is not None:  # logged only here: an unreadable file is one error
                logger.warning('decord cannot open %s (%s); reading it with OpenCV',
                               path, decord_error)

    @property
    def num_frames(self):
        return self._source.num_frames

    @property
    def backend(self):
        """'decord' or 'opencv': the library that decodes this file."""
        return self._source.name

    def read(self, indices):
        """uint8 [len(indices), H, W, 3] RGB, frame k being frame indices[k] of the file."""
        indices = check_indices(self.path, indices, self.num_frames)
        try:
            frames = dict(self._source.frames(sorted(set(indices))))
        except DecodeError:
            raise
        except Exception as e:
            self._fall_back(e)
            return self.read(indices)
        return np.stack([frames[i] for i in indices])

    def _fall_back(self, error):
        """After decord raised `error`: continue with OpenCV (one log line); an OpenCV
        error becomes a DecodeError naming the file."""
        if self.backend != 'decord':
            raise DecodeError(self.path, f'OpenCV failed: {_first_line(error)}') from error
        logger.warning('decord failed while decoding %s (%s); reading it with OpenCV',
                       self.path, _first_line(error))
        self._source = _OpenCVFrames(self.path, self.num_threads)

    def iter_frames(self):
        """Yield every frame in order, uint8 [H, W, 3] RGB, decoding the file once (for
        frame extraction; clips use `read`). decord failing midway hands over to OpenCV,
        which continues from the next frame."""
        done = 0
        try:
            for _, frame in self._source.frames(range(self.num_frames)):
                yield frame
                done += 1
            return
        except DecodeError:
            raise
        except Exception as e:
            self._fall_back(e)
        for _, frame in self._source.frames(range(done, self.num_frames)):
            yield frame

    def close(self):
        self._source = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_video(path, num_threads=1):
    """Open `path` (.mp4 .avi .mkv .webm ..., or a folder of frames written by
    data/extract_frames.py); DecodeError names the path if it cannot be read."""
    if os.path.isdir(path):
        return FrameFolder(path)
    return Video(path, num_threads)


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
