"""reader.decode returns exactly the frames asked for, with decord and with the OpenCV fallback.

Every test video carries its frame index in its pixels (tests/videos.py). Frames are also
compared with a sequential PyAV decode of the same file: decord, OpenCV and PyAV are all
FFmpeg decoders and agree exactly except for rare off-by-one roundings of decord's older
mpeg4 decoder.
"""
import logging
import os

import numpy as np
import pytest

from tests.videos import (index_frame, read_index, sequential_frames, write_corrupt_video,
                          write_index_video)
from reader import decode

# (codec, extension, writer options); B-frames in .avi and open GOPs are where seeking goes
# wrong (see SEEK_TRAPS), and the time gap in the last file makes OpenCV's count wrong.
FORMATS = [
    ('mp4v', '.mp4', {}),
    ('MJPG', '.avi', {}),
    ('h264', '.mp4', {'bframes': 3, 'keyint': 250}),
    ('h264', '.mp4', {'bframes': 0, 'keyint': 2}),
    ('h264', '.mkv', {'bframes': 3, 'keyint': 250}),
    ('vp8', '.webm', {}),
    ('vp9', '.webm', {'keyint': 10}),
    ('mpeg4', '.avi', {'bframes': 2, 'keyint': 20}),
    ('h264', '.mp4', {'bframes': 3, 'keyint': 20, 'open_gop': True}),
    ('h264', '.avi', {'bframes': 3, 'keyint': 20}),
    ('h264', '.mkv', {'bframes': 3, 'keyint': 20, 'pts_gap': 10}),
]
COUNTS = [1, 2, 7, 30, 120]
BACKENDS = ['decord', 'opencv']


def _fmt_id(fmt):
    codec, ext, opts = fmt
    return codec + ext.replace('.', '_') + ''.join(f'_{k}{int(v)}' for k, v in opts.items())


@pytest.fixture(scope='module')
def video_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('videos')


@pytest.fixture(scope='module')
def videos(video_dir):
    """(fmt_id, count) -> (path, reference frames from a sequential PyAV decode)."""
    made = {}
    for fmt in FORMATS:
        for count in COUNTS:
            path = os.path.join(video_dir, f'{_fmt_id(fmt)}_{count}{fmt[1]}')
            write_index_video(path, count, codec=fmt[0], **fmt[2])
            made[_fmt_id(fmt), count] = path, sequential_frames(path)
    return made


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    if request.param == 'opencv':
        monkeypatch.setattr(decode, 'decord', None)
    return request.param


def _index_sets(count, rng, n_random):
    sets = []
    for _ in range(n_random):
        picks = rng.integers(0, count, 8)
        sets += [sorted(picks.tolist()), picks.tolist()]
    last = count - 1
    return sets + [[0], [last], [last, 0], [0, 0, last, last], list(range(count)),
                   list(range(count))[::-1]]


def _check_read(video, reference, indices):
    backend = video.backend
    frames = video.read(indices)
    assert video.backend == backend  # read by the backend under test, not by the fallback
    assert frames.dtype == np.uint8 and frames.shape == (len(indices),) + reference.shape[1:]
    assert [read_index(f) for f in frames] == list(indices)
    # Neighbouring frames differ by a moving texture (differences of ~100), so this
    # tolerance cannot hide a wrong frame; it allows decord's older mpeg4 decoder to round
    # a few pixels differently from PyAV's.
    diff = np.abs(frames.astype(np.int16) - reference[indices])
    assert diff.max() <= 2 and diff.mean() < 0.01


@pytest.mark.parametrize('count', COUNTS)
@pytest.mark.parametrize('fmt', FORMATS, ids=_fmt_id)
def test_exact_frames(videos, backend, fmt, count):
    path, reference = videos[_fmt_id(fmt), count]
    assert len(reference) == count
    rng = np.random.default_rng(count)
    with decode.open_video(path) as video:
        assert video.backend == backend and video.num_frames == count
        for indices in _index_sets(count, rng, n_random=3):
            _check_read(video, reference, indices)


def test_bframes_sparse_keyframes_many_index_sets(video_dir, backend):
    path = write_index_video(os.path.join(video_dir, 'b3_k250_long.mp4'), 300, codec='h264',
                             bframes=3, keyint=250)
    reference = sequential_frames(path)
    rng = np.random.default_rng(7)
    with decode.open_video(path) as video:
        assert video.backend == backend and video.num_frames == 300
        for indices in _index_sets(300, rng, n_random=25):
            _check_read(video, reference, indices)


# Longer files with several keyframes: decord's seeks (get_batch, skip_frames across a
# keyframe) return wrong frames on each of these for some of the index sets below.
SEEK_TRAPS = [
    ('mpeg4', '.avi', {'bframes': 2, 'keyint': 60}),
    ('h264', '.mp4', {'bframes': 3, 'keyint': 60, 'open_gop': True}),
    ('h264', '.mkv', {'bframes': 3, 'keyint': 60, 'open_gop': True}),
    ('h264', '.avi', {'bframes': 3, 'keyint': 60}),
]


@pytest.mark.parametrize('fmt', SEEK_TRAPS, ids=_fmt_id)
def test_files_where_decord_seeking_fails_many_index_sets(video_dir, backend, fmt):
    path = os.path.join(video_dir, f'trap_{_fmt_id(fmt)}{fmt[1]}')
    if not os.path.exists(path):
        write_index_video(path, 300, codec=fmt[0], **fmt[2])
    reference = sequential_frames(path)
    rng = np.random.default_rng(11)
    with decode.open_video(path) as video:
        assert video.backend == backend and video.num_frames == 300
        for indices in _index_sets(300, rng, n_random=20):
            _check_read(video, reference, indices)


def test_narrow_frames_that_decord_returns_with_4_channels_are_read_with_opencv(video_dir, caplog):
    # decord 0.6 decodes this 48 px wide H.264 file into 4-channel frames
    path = write_index_video(os.path.join(video_dir, 'narrow.mp4'), 12, width=48, height=40,
                             codec='h264', bframes=3)
    reference = sequential_frames(path)
    with caplog.at_level(logging.WARNING, logger=decode.__name__):
        with decode.open_video(path) as video:
            frames = video.read([2, 4, 7, 9])
            backend = video.backend
    assert frames.shape == (4, 40, 48, 3)
    assert np.abs(frames.astype(np.int16) - reference[[2, 4, 7, 9]]).max() <= 2
    if decode.decord is not None:
        assert backend == 'opencv' and 'not H x W x 3' in caplog.text


def test_read_returns_rgb_of_the_written_pixels(video_dir, backend):
    path = write_index_video(os.path.join(video_dir, 'rgb.avi'), 3, codec='MJPG')
    with decode.open_video(path) as video:
        frame = video.read([2])[0].astype(int)
    assert np.abs(frame - index_frame(2)).mean() < 3  # MJPG is lossy, but red stays red
    assert frame[30:40, 2:14, 0].min() > 200 and frame[30:40, 2:14, 2].max() < 60


def test_num_threads_gives_the_same_frames(videos):
    path, reference = videos[_fmt_id(FORMATS[2]), 30]
    with decode.open_video(path, num_threads=2) as video:
        _check_read(video, reference, [29, 3, 3, 0])


def test_cut_file_reports_only_decodable_frames(video_dir, backend):
    source = write_index_video(os.path.join(video_dir, 'whole.mp4'), 120, codec='h264',
                               faststart=True)
    path = write_corrupt_video(os.path.join(video_dir, 'cut.mp4'), 'cut_tail', source)
    with decode.open_video(path) as video:
        n = video.num_frames
        assert 0 < n < 120  # the index still announces 120 frames
        frames = video.read([0, n - 1])
        assert [read_index(f) for f in frames] == [0, n - 1]
        with pytest.raises(IndexError):
            video.read([n])


@pytest.mark.parametrize('kind', ['empty', 'random', 'truncated'])
def test_corrupt_file_raises_decode_error_naming_path(video_dir, backend, kind):
    source = write_index_video(os.path.join(video_dir, f'src_{kind}.mp4'), 30, codec='h264')
    path = write_corrupt_video(os.path.join(video_dir, f'{kind}.mp4'), kind, source)
    with pytest.raises(decode.DecodeError) as info:
        decode.open_video(path)
    assert info.value.path == path and path in str(info.value)


def test_missing_file_raises_decode_error_saying_so(video_dir, backend):
    path = os.path.join(video_dir, 'no_such_video.mp4')
    with pytest.raises(decode.DecodeError, match='does not exist') as info:
        decode.open_video(path)
    assert info.value.path == path and path in str(info.value)


def test_out_of_range_index_names_path_and_index(videos, backend):
    path, _ = videos[_fmt_id(FORMATS[0]), 7]
    with decode.open_video(path) as video:
        for bad in (7, -1, 1000):
            with pytest.raises(IndexError, match=f'{path}.*index {bad}'):
                video.read([0, bad])
        with pytest.raises(TypeError):
            video.read([1.0])


def test_decord_failure_falls_back_to_opencv_with_one_log_line(videos, monkeypatch, caplog):
    class BrokenDecord:
        @staticmethod
        def VideoReader(path, num_threads):
            raise RuntimeError('cannot find video stream\nsecond line')

    monkeypatch.setattr(decode, 'decord', BrokenDecord)
    path, reference = videos[_fmt_id(FORMATS[2]), 30]
    with caplog.at_level(logging.WARNING, logger=decode.__name__):
        with decode.open_video(path) as video:
            _check_read(video, reference, [5, 29, 0])
    assert len(caplog.records) == 1
    assert path in caplog.text and 'cannot find video stream' in caplog.text


def test_iter_frames_yields_every_frame_once_in_order(videos, backend):
    path, reference = videos[_fmt_id(FORMATS[2]), 30]
    with decode.open_video(path) as video:
        frames = list(video.iter_frames())
        assert video.backend == backend
    assert [read_index(f) for f in frames] == list(range(30))
    assert np.abs(np.stack(frames).astype(np.int16) - reference).max() <= 2


def test_iter_frames_continues_with_opencv_when_decord_fails_midway(videos, monkeypatch):
    path, _ = videos[_fmt_id(FORMATS[0]), 30]
    frames_of = decode._DecordFrames.frames

    def failing(self, wanted):
        for k, item in enumerate(frames_of(self, wanted)):
            if k == 12:
                raise RuntimeError('decoder error')
            yield item

    monkeypatch.setattr(decode._DecordFrames, 'frames', failing)
    with decode.open_video(path) as video:
        indices = [read_index(f) for f in video.iter_frames()]
        assert video.backend == 'opencv'
    assert indices == list(range(30))


def test_read_index_rejects_bgr_and_unreadable_frames():
    for i in (0, 1, 4660, 2 ** 16 - 1):
        assert read_index(index_frame(i)) == i
        assert read_index(index_frame(i, 340, 256)) == i
    with pytest.raises(ValueError, match='red'):
        read_index(index_frame(5)[:, :, ::-1])
    gray = index_frame(5)
    gray[:24] = 128
    with pytest.raises(ValueError, match='neither black nor white'):
        read_index(gray)
