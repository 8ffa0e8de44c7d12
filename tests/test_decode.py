"""reader.decode returns exactly the frames asked for, and says when a file holds fewer.

Every test video carries its frame index in its pixels (tests/videos.py). Frames are also
compared with a plain sequential PyAV decode of the same file, which they must equal exactly
(the same decoder, whatever the order of the requests and the decoder threads).
"""
import logging
import os
import pickle

import numpy as np
import pytest

from tests.videos import (hide_vp8_frame, index_frame, read_index, sequential_frames,
                          write_corrupt_video, write_damaged_video, write_index_video,
                          write_trimmed_start_video)
from reader import decode

# (codec, extension, writer options); B-frames in .avi and open GOPs are where seeking goes
# wrong (see SEEK_TRAPS), and the time gap in the last file made OpenCV's count wrong.
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


@pytest.fixture
def warnings(caplog):
    """The warnings reader.decode logs during the test."""
    caplog.set_level(logging.WARNING, logger=decode.__name__)
    return lambda: [r.getMessage() for r in caplog.records if r.name == decode.__name__]


def _index_sets(count, rng, n_random):
    sets = []
    for _ in range(n_random):
        picks = rng.integers(0, count, 8)
        sets += [sorted(picks.tolist()), picks.tolist()]
    last = count - 1
    return sets + [[0], [last], [last, 0], [0, 0, last, last], list(range(count)),
                   list(range(count))[::-1]]


def _check_read(video, reference, indices, first=0):
    """video.read(indices) is frames indices of `reference`, carrying index first + i."""
    frames = video.read(indices)
    assert frames.dtype == np.uint8 and frames.shape == (len(indices),) + reference.shape[1:]
    assert [read_index(f) for f in frames] == [first + i for i in indices]
    assert np.array_equal(frames, reference[list(indices)])


@pytest.mark.parametrize('count', COUNTS)
@pytest.mark.parametrize('fmt', FORMATS, ids=_fmt_id)
def test_exact_frames(videos, warnings, fmt, count):
    path, reference = videos[_fmt_id(fmt), count]
    assert len(reference) == count
    rng = np.random.default_rng(count)
    with decode.open_video(path) as video:
        assert video.backend == 'pyav' and video.num_frames == count
        for indices in _index_sets(count, rng, n_random=3):
            _check_read(video, reference, indices)
        assert video.num_frames == count
    assert warnings() == []


def test_bframes_sparse_keyframes_many_index_sets(video_dir):
    path = write_index_video(os.path.join(video_dir, 'b3_k250_long.mp4'), 300, codec='h264',
                             bframes=3, keyint=250)
    reference = sequential_frames(path)
    rng = np.random.default_rng(7)
    with decode.open_video(path) as video:
        assert video.num_frames == 300
        for indices in _index_sets(300, rng, n_random=25):
            _check_read(video, reference, indices)


# Longer files with several keyframes: decord 0.6's seeks (get_batch, skip_frames across a
# keyframe) returned wrong frames on each of these for some of the index sets below.
SEEK_TRAPS = [
    ('mpeg4', '.avi', {'bframes': 2, 'keyint': 60}),
    ('h264', '.mp4', {'bframes': 3, 'keyint': 60, 'open_gop': True}),
    ('h264', '.mkv', {'bframes': 3, 'keyint': 60, 'open_gop': True}),
    ('h264', '.avi', {'bframes': 3, 'keyint': 60}),
]


@pytest.mark.parametrize('fmt', SEEK_TRAPS, ids=_fmt_id)
def test_files_where_seeking_fails_many_index_sets(video_dir, fmt):
    path = os.path.join(video_dir, f'trap_{_fmt_id(fmt)}{fmt[1]}')
    if not os.path.exists(path):
        write_index_video(path, 300, codec=fmt[0], **fmt[2])
    reference = sequential_frames(path)
    rng = np.random.default_rng(11)
    with decode.open_video(path) as video:
        assert video.num_frames == 300
        for indices in _index_sets(300, rng, n_random=20):
            _check_read(video, reference, indices)


def test_narrow_frames_come_out_with_3_channels(video_dir):
    # decord 0.6 decoded this 48 px wide H.264 file into 4-channel frames
    path = write_index_video(os.path.join(video_dir, 'narrow.mp4'), 12, width=48, height=40,
                             codec='h264', bframes=3)
    with decode.open_video(path) as video:
        _check_read(video, sequential_frames(path), [2, 4, 7, 9])


def test_read_returns_rgb_of_the_written_pixels(video_dir):
    path = write_index_video(os.path.join(video_dir, 'rgb.avi'), 3, codec='MJPG')
    with decode.open_video(path) as video:
        frame = video.read([2])[0].astype(int)
    assert np.abs(frame - index_frame(2)).mean() < 3  # MJPG is lossy, but red stays red
    assert frame[30:40, 2:14, 0].min() > 200 and frame[30:40, 2:14, 2].max() < 60


def test_num_threads_gives_the_same_frames(videos):
    path, reference = videos[_fmt_id(FORMATS[2]), 30]
    with decode.open_video(path, num_threads=2) as video:
        _check_read(video, reference, [29, 3, 3, 0])


def test_cut_file_warns_once_with_both_counts_and_reads_what_is_complete(video_dir, warnings):
    source = write_index_video(os.path.join(video_dir, 'whole.mp4'), 120, codec='h264',
                               faststart=True)
    path = write_corrupt_video(os.path.join(video_dir, 'cut.mp4'), 'cut_tail', source)
    for _ in range(2):
        with decode.open_video(path) as video:
            n = video.num_frames
            assert 0 < n < 120  # the index still announces 120 frames
            _check_read(video, sequential_frames(path), [0, n - 1, n // 2])
            with pytest.raises(IndexError):
                video.read([n])
    (message,) = warnings()
    assert path in message and 'announces 120 frames, only ' in message and 'cut short' in message


def test_cut_file_never_puts_a_frame_after_a_missing_one_in_its_place(video_dir):
    # With B-frames a P-frame is stored before the frames shown just before it: a cut right
    # after it leaves it without them. Of cuts at 10 places, some do that.
    source = write_index_video(os.path.join(video_dir, 'whole_b3.mp4'), 120, codec='h264',
                               faststart=True)
    with open(source, 'rb') as f:
        data = f.read()
    path = os.path.join(video_dir, 'cut_at.mp4')
    gaps = 0
    for end in np.linspace(0.3, 0.95, 10):
        with open(path, 'wb') as f:
            f.write(data[:int(len(data) * end)])
        decoded = [read_index(f) for f in sequential_frames(path)]
        gaps += decoded != list(range(len(decoded)))
        with decode.open_video(path) as video:
            n = video.num_frames
            assert [read_index(f) for f in video.read(range(n))] == list(range(n))
            assert len(decoded) - 3 <= n <= len(decoded)
    assert gaps > 0  # where the plain decode shows a later frame in place of a cut one


def test_trimmed_first_frame_is_not_a_frame_of_the_video(video_dir, warnings):
    # an edit list trims the first encoded frame: 456 frames announced, 455 shown
    source = write_index_video(os.path.join(video_dir, 'untrimmed.mp4'), 456, codec='h264')
    path = write_trimmed_start_video(os.path.join(video_dir, 'trimmed.mp4'), source)
    reference = sequential_frames(path)
    assert len(reference) == 455
    with decode.open_video(path) as video:
        assert video.num_frames == 455
        _check_read(video, reference, range(455), first=1)  # frame i is encoded frame i + 1
        _check_read(video, reference, [454, 0, 454, 200], first=1)
        assert video.num_frames == 455
    assert warnings() == []


# (name, codec, extension, damage of the last two packets, frames that decode, what fails)
DAMAGED_ENDS = [
    ('hidden', 'vp8', '.webm', hide_vp8_frame, 28, 'outputs no more frames'),
    ('rejected', 'h264', '.mp4', lambda data: bytes(len(data)), 26, 'decoder fails'),
    ('concealed', 'mp4v', '.mp4', lambda data: data[:8], 28, 'flags the frame as damaged'),
]


@pytest.mark.parametrize('name,codec,ext,damage,decodes,failure', DAMAGED_ENDS,
                         ids=[d[0] for d in DAMAGED_ENDS])
def test_last_packets_that_do_not_decode_shorten_the_video_once(video_dir, warnings, name,
                                                                 codec, ext, damage, decodes,
                                                                 failure):
    source = write_index_video(os.path.join(video_dir, f'end_{name}_src{ext}'), 30, codec=codec)
    path = write_damaged_video(os.path.join(video_dir, f'end_{name}{ext}'), source, [-2, -1],
                               damage)
    reference = sequential_frames(source)
    for attempt in range(2):
        with decode.open_video(path) as video:
            assert video.num_frames == 30  # 30 packets, so far nothing says otherwise
            with pytest.raises(decode.DecodeError) as info:
                video.read([3, 29])
            assert info.value.path == path
            assert f'frame 29 cannot be read, only {decodes} of 30 frames decode' in str(info.value)
            assert failure in str(info.value)
            assert video.num_frames == decodes
            _check_read(video, reference, range(decodes))
            with pytest.raises(IndexError):
                video.read([decodes])
        (message,) = warnings()  # the second open logs nothing more
        assert path in message and f'only {decodes} of 30 frames decode' in message


def test_a_frame_the_decoder_drops_is_caught_by_its_timestamp(video_dir, warnings):
    source = write_index_video(os.path.join(video_dir, 'drop_src.webm'), 30, codec='vp8')
    path = write_damaged_video(os.path.join(video_dir, 'drop.webm'), source, [10],
                               hide_vp8_frame)
    with decode.open_video(path) as video:
        _check_read(video, sequential_frames(source), [0, 9])
        with pytest.raises(decode.DecodeError, match="frame 12 cannot be read, only 10 of 30 "
                                                     "frames decode: a frame's timestamp"):
            video.read([12])
        assert video.num_frames == 10
    assert len(warnings()) == 1


@pytest.mark.parametrize('kind', ['empty', 'random', 'truncated'])
def test_corrupt_file_raises_decode_error_naming_path(video_dir, kind):
    source = write_index_video(os.path.join(video_dir, f'src_{kind}.mp4'), 30, codec='h264')
    path = write_corrupt_video(os.path.join(video_dir, f'{kind}.mp4'), kind, source)
    with pytest.raises(decode.DecodeError) as info:
        decode.open_video(path)
    assert info.value.path == path and path in str(info.value)


def test_missing_file_raises_decode_error_saying_so(video_dir):
    path = os.path.join(video_dir, 'no_such_video.mp4')
    with pytest.raises(decode.DecodeError, match='does not exist') as info:
        decode.open_video(path)
    assert info.value.path == path and path in str(info.value)


def test_out_of_range_index_names_path_and_index(videos):
    path, _ = videos[_fmt_id(FORMATS[0]), 7]
    with decode.open_video(path) as video:
        for bad in (7, -1, 1000):
            with pytest.raises(IndexError, match=f'{path}.*index {bad}'):
                video.read([0, bad])
        with pytest.raises(TypeError):
            video.read([1.0])


def test_iter_frames_yields_every_frame_once_in_order(videos):
    path, reference = videos[_fmt_id(FORMATS[2]), 30]
    with decode.open_video(path) as video:
        frames = list(video.iter_frames())
    assert [read_index(f) for f in frames] == list(range(30))
    assert np.array_equal(np.stack(frames), reference)


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


def test_decode_error_survives_pickling_with_path_and_reason():
    # how an error crosses from a loader worker to the main process
    error = pickle.loads(pickle.dumps(decode.DecodeError('/v/a.mp4', 'frame 3 is damaged')))
    assert (error.path, error.reason, str(error)) == ('/v/a.mp4', 'frame 3 is damaged',
                                                     '/v/a.mp4: frame 3 is damaged')
