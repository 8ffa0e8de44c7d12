"""A long video's windows: their plan in time linear in the video's length, and predict.py's
--window / --stride checked, each problem one line before any frame is decoded."""
import time

import numpy as np
import pytest
import yaml

import predict
from configs import cli
from reader import windows
from reader.decode import Video
from tests.test_results import write_long_video

HOUR = np.arange(3600 * 25) / 25  # the frame times of an hour at 25 fps


def reference_plan(times, window, stride, seg_num):
    """The plan as its docstring defines it, window by window over every frame."""
    duration = windows.duration_of(times)
    starts = list(np.arange(0.0, max(duration - window, 0.0) + 1e-9, stride))
    if starts[-1] + window < duration - 1e-9:
        starts.append(duration - window)
    plan = []
    for start in starts:
        end = min(start + window, duration)
        inside = np.flatnonzero((times >= start - 1e-9) & (times < end - 1e-9))
        if len(inside):
            picked = inside[windows.sample_indices(len(inside), seg_num, 'test')]
            plan.append((round(float(start), 6), round(float(end), 6), picked.tolist()))
    return plan


@pytest.mark.parametrize('window, stride', [(2.0, 1.0), (2.0, 0.04), (1.0, 0.3), (0.5, 0.05),
                                            (10.0, 3.0), (3.0, 7.0)])
def test_the_plan_is_the_definition(window, stride):
    times = np.arange(130) / 25  # 5.2 s
    plan = windows.plan(times, window, stride, 8)
    assert [(w.start, w.end, w.frames.tolist()) for w in plan] == reference_plan(
        times, window, stride, 8)
    assert len(plan) == windows.count(windows.duration_of(times), window, stride)


def test_an_hour_with_a_tiny_stride_is_refused_at_once():
    began = time.perf_counter()
    with pytest.raises(ValueError, match='3598001 windows of 2.0 s every 0.001 s, more than '
                                         'the 90000 frames'):
        windows.plan(HOUR, 2.0, 0.001, 8)
    assert time.perf_counter() - began < 0.5
    assert windows.count(3600.0, 2.0, 5e-324) == float('inf')  # no overflow either
    began = time.perf_counter()
    assert len(windows.plan(HOUR, 2.0, 1.0, 8)) == 3599
    assert time.perf_counter() - began < 0.5


@pytest.fixture
def run_predict(tmp_path, monkeypatch, capsys):
    """predict.py on a 2 s video (50 frames) with the given flags, where decoding a frame or
    building the model fails the test; (exit status, the lines of stderr)."""
    cfg = {'MODEL': {'num_classes': 3, 'seg_num': 4, 'depth': 18},
           'DATA': {'short_size': 48, 'target_size': 48},
           'INFER': {'label_file': str(tmp_path / 'labels.txt'),
                     'save_dir': str(tmp_path / 'out')}}
    (tmp_path / 'labels.txt').write_text('red\ngreen\nblue\n')
    (tmp_path / 'cfg.yaml').write_text(yaml.safe_dump(cfg))
    video = write_long_video(str(tmp_path / 'two.mp4'), [(0, 2.0)])

    def fail(*args, **kwargs):
        raise AssertionError('a frame decoded or a model built before the flags were checked')
    monkeypatch.setattr(Video, 'stream', fail)
    monkeypatch.setattr(Video, 'iter_frames', fail)
    monkeypatch.setattr(predict, 'model_for', fail)

    def run(*flags, video=video):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            cli.run('predict', predict.main, ['--config', str(tmp_path / 'cfg.yaml'),
                                              '--video_path', video, *flags])
        return exit_.value.code, capsys.readouterr().err.splitlines()
    return run


@pytest.mark.parametrize('flags, words', [
    (['--window', 'nan'], '--window nan: expected a positive number of seconds'),
    (['--window', 'inf'], '--window inf: expected a positive number of seconds'),
    (['--window', '-1'], '--window -1.0: expected a positive number of seconds'),
    (['--window', '0'], '--window 0.0: expected a positive number of seconds'),
    (['--window', '1', '--stride', 'nan'], '--stride nan: expected a positive number'),
    (['--window', '1', '--stride', '0'], '--stride 0.0: expected a positive number'),
    (['--window', '0.001'], '--stride (by default half of --window) 0.0005: 3999 windows of '
                            '0.001 s, more than the 50 frames of'),
    (['--window', '1', '--stride', '0.001'],
     '--stride 0.001: 1001 windows of 1.0 s, more than the 50 frames of'),
])
def test_window_flags_that_cannot_work_are_one_line(run_predict, flags, words):
    status, errors = run_predict(*flags)
    assert status == 1 and [line for line in errors if 'ERROR' in line] == errors[-1:]
    assert words in errors[-1]


def test_a_video_of_one_frame_is_shorter_than_a_window(run_predict, tmp_path):
    video = write_long_video(str(tmp_path / 'one.mp4'), [(0, 0.04)])
    assert Video(video).num_frames == 1
    status, errors = run_predict('--window', '2', video=video)
    assert status == 1 and [line for line in errors if 'ERROR' in line] == errors[-1:]
    assert f'{video} has 1 frame, shorter than any window' in errors[-1]
