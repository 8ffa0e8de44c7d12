"""Results to look at: per-class and confusion tables on hand-made cases, plots written as
PNG, and a long video's windows merged into the segments it was made of."""
import csv
import json

import av
import cv2
import numpy as np
import paddle
import pytest
import yaml

import predict
import results
from configs import cli
from reader import windows
from reader.decode import Video

COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220]], np.float32)  # class k


def test_tables_of_a_hand_made_case(tmp_path):
    #          video: 0  1  2  3  4  5  6
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 0, 0, 0])
    counts = results.confusion_matrix(predicted, labels, 4)
    assert counts.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]]
    # class 3 has no video: not listed; worst first
    assert results.per_class(counts) == [(2, 2, 0, 0.0), (1, 2, 1, 0.5), (0, 3, 2, 2 / 3)]
    assert results.most_confused(counts) == [(2, 0, 2), (0, 1, 1), (1, 0, 1)]
    scores = np.eye(4)[predicted] * 0.7 + 0.05
    names = ['walk', 'run', 'jump', 'sit']
    results.write_evaluation(str(tmp_path), scores, labels, [f'v{i}.mp4' for i in range(7)],
                             names)
    rows = list(csv.reader(open(tmp_path / 'per_class.csv')))
    assert rows[1] == ['2', 'jump', '2', '0', '0.0000']
    top5 = list(csv.reader(open(tmp_path / 'top5.csv')))
    assert top5[3][:5] == ['v2.mp4', '0', 'walk', '0', 'run']
    confusion = list(csv.reader(open(tmp_path / 'confusion.csv')))
    assert confusion[3] == ['jump', '2', '0', '0', '0']
    for name in ('per_class.png', 'confusion.png'):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 400, name


def test_confusion_png_of_400_classes_stays_readable(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 400, 2000)
    scores = rng.random((2000, 400))
    names = [f'class_{i}' for i in range(400)]
    results.write_evaluation(str(tmp_path), scores, labels, ['v'] * 2000, names)
    image = cv2.imread(str(tmp_path / 'confusion.png'))
    assert image.shape[:2] == (650, 1400)  # a fixed size: the pairs' names are legible


def test_train_curves_png(tmp_path):
    rows = [{'epoch': e, 'train_loss': 2 - e / 4, 'train_top1': e / 5, 'lr': 0.01,
             **({'valid_top1': e / 6} if e % 2 else {})} for e in range(4)]
    results.train_curves(rows, str(tmp_path / 'train_curves.png'))
    assert cv2.imread(str(tmp_path / 'train_curves.png')).shape[:2] == (360, 1300)


def test_segments_merge_runs_and_leave_low_scores_out():
    items = [(0, 1, 2, 0.9), (1, 2, 2, 0.7), (2, 3, 0, 0.2), (3, 4, 0, 0.8), (4, 5, 1, 0.9)]
    assert results.segments(items, threshold=0.5) == [
        {'start': 0, 'end': 2, 'label': 2, 'score': 0.8},
        {'start': 3, 'end': 4, 'label': 0, 'score': 0.8},
        {'start': 4, 'end': 5, 'label': 1, 'score': 0.9}]
    assert results.tiles([0.5, 1.5, 3.0], 4.0) == [(0.0, 1.0), (1.0, 2.25), (2.25, 4.0)]


def write_long_video(path, parts, fps=25, size=(64, 48)):
    """Solid frames of class colour k for each (class, seconds) of `parts`, in order."""
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], 'yuv420p'
        for label, seconds in parts:
            for _ in range(int(seconds * fps)):
                frame = np.empty((size[1], size[0], 3), np.uint8)
                frame[:] = COLOURS[label].astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    return path


class ColourModel:
    """A stand-in network for the timeline's mechanics: it scores a clip by how close its
    mean colour is to each class colour (the clip normalised as the reader does)."""

    def __init__(self, mean, std):
        self.centres = (COLOURS / 255 - np.array(mean)) / np.array(std)

    def eval(self):
        return self

    def __call__(self, clips):
        means = clips.numpy().mean(axis=(1, 3, 4))  # [N, 3]
        return paddle.to_tensor(-10 * np.linalg.norm(means[:, None] - self.centres, axis=2))


def test_plan_covers_the_tail_and_samples_inside_each_window():
    times = np.arange(130) / 25  # 5.2 s
    plan = windows.plan(times, 2.0, 1.0, 4)
    assert [(w.start, w.end) for w in plan] == [(0, 2), (1, 3), (2, 4), (3, 5), (3.2, 5.2)]
    for w in plan:
        assert len(w.frames) == 4 and all(w.start <= times[i] < w.end for i in w.frames)
    assert [(w.start, w.end) for w in windows.plan(times[:20], 2.0, 1.0, 4)] == [(0, 0.8)]


def test_long_video_segments_recover_the_parts(tmp_path, monkeypatch, capsys):
    parts = [(2, 3.0), (0, 2.0), (1, 4.0)]  # (class, seconds): boundaries at 3 s and 5 s
    video = write_long_video(str(tmp_path / 'long.mp4'), parts)
    cfg = {'MODEL': {'num_classes': 3, 'seg_num': 4, 'depth': 18},
           'DATA': {'short_size': 48, 'target_size': 48},
           'INFER': {'label_file': str(tmp_path / 'labels.txt'), 'topk': 2, 'batch_size': 3,
                     'save_dir': str(tmp_path / 'out'), 'protocol': 'mit-10crop'}}
    (tmp_path / 'labels.txt').write_text('red\ngreen\nblue\n')
    (tmp_path / 'cfg.yaml').write_text(yaml.safe_dump(cfg))
    data = {'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}
    decoded = []
    stream = Video.stream

    def counting(self, indices):
        for item in stream(self, indices):
            decoded.append(item[0])
            yield item
    monkeypatch.setattr(Video, 'stream', counting)
    protocols = []  # a window is one clip of our pipeline, whatever INFER.protocol says
    monkeypatch.setattr(predict, 'model_for', lambda cfg, *a: protocols.append(
        cfg['INFER']['protocol']) or ColourModel(data['mean'], data['std']))
    stride = 0.5
    with pytest.raises(SystemExit) as exit_:
        cli.run('predict', predict.main, ['--config', str(tmp_path / 'cfg.yaml'), '--video_path',
                                          video, '--window', '1.0', '--stride', str(stride),
                                          '--annotate', str(tmp_path / 'labelled.mp4')])
    assert exit_.value.code == 0
    assert protocols == ['ours']
    assert len(decoded) == len(set(decoded))  # every frame decoded once, however the overlap
    out = json.load(open(tmp_path / 'out' / 'TSM_timeline.json'))
    found = [(s['label'], s['start'], s['end']) for s in out['segments']]
    assert [label for label, _, _ in found] == [2, 0, 1]
    truth = [(0.0, 3.0), (3.0, 5.0), (5.0, 9.0)]
    for (_, start, end), (want_start, want_end) in zip(found, truth):
        assert abs(start - want_start) <= stride and abs(end - want_end) <= stride
    assert cv2.imread(str(tmp_path / 'out' / 'TSM_timeline.png')) is not None
    rows = list(csv.reader(open(tmp_path / 'out' / 'TSM_segments.csv')))
    assert [r[3] for r in rows[1:]] == ['blue', 'red', 'green']
    with av.open(str(tmp_path / 'labelled.mp4')) as labelled:
        assert sum(1 for _ in labelled.decode(video=0)) == 9 * 25
    assert 'segment 0.00-' in capsys.readouterr().out


def test_curves_are_titled_labelled_and_counted_in_whole_epochs():
    rows = [{'epoch': e, 'train_loss': 2 - e / 4, 'train_top1': e / 5, 'lr': 0.01,
             **({'valid_top1': e / 6, 'valid_loss': 2.1 - e / 4} if e % 2 else {})}
            for e in range(1, 4)]
    figure = results.curves_figure(rows, 'tsm_demo: output/tsm_demo')
    assert figure._suptitle.get_text() == 'tsm_demo: output/tsm_demo'
    loss, top1, lr = figure.axes
    assert [a.get_ylabel() for a in figure.axes] == ['cross-entropy', 'top-1 accuracy',
                                                     'learning rate']
    assert [line.get_label() for line in loss.lines] == ['train', 'validation']
    assert loss.lines[1].get_xdata().tolist() == [1, 3]
    for axis in figure.axes:
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_confusion_shows_a_colour_bar_and_cell_counts_and_no_empty_panel():
    counts = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 4]])
    figure = results.confusion_figure(counts, ['walk', 'run', 'jump'], 'run A')
    matrix, pairs, bar = figure.axes
    assert bar.get_ylabel() == 'fraction of the true class'
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
             for t in matrix.texts}
    assert cells == {(t, p): int(counts[t, p]) for t in range(3) for p in range(3)}
    assert [t.get_text() for t in pairs.get_yticklabels()] == ['walk -> run', 'jump -> walk']
    figure = results.confusion_figure(np.diag([3, 2, 4]), ['walk', 'run', 'jump'])
    pairs = figure.axes[1]
    assert not pairs.axison
    assert [t.get_text() for t in pairs.texts] == ['no video is confused with another class']


def test_per_class_bars_carry_their_accuracy_and_videos():
    counts = np.array([[4, 1], [4, 1]])  # class 1: 1 right of 5
    figure = results.per_class_figure(results.per_class(counts), ['walk', 'run'])
    (axis,) = figure.axes
    assert [t.get_text() for t in axis.get_yticklabels()] == ['run (5)', 'walk (5)']
    assert [t.get_text() for t in axis.texts] == ['0.20 (1/5)', '0.80 (4/5)']


def test_timeline_colours_each_class_alike_and_shows_scores_and_no_action():
    segments = [{'start': 0.0, 'end': 2.0, 'label': 1, 'score': 0.9},
                {'start': 2.0, 'end': 3.0, 'label': 0, 'score': 0.7},
                {'start': 4.0, 'end': 6.0, 'label': 1, 'score': 0.8}]
    figure = results.timeline_figure(segments, 8.0, ['walk', 'run'], 'long.mp4')
    (axis,) = figure.axes
    assert figure._suptitle.get_text() == 'long.mp4'
    assert [t.get_text() for t in axis.get_yticklabels()] == ['walk', 'run', 'no action']
    bars = {(p.get_x(), p.get_y() + p.get_height() / 2): p.get_facecolor() for p in axis.patches}
    assert bars[(0.0, 1)] == bars[(4.0, 1)] != bars[(2.0, 0)]
    assert {x for x, row in bars if row == 2} == {3.0, 6.0}  # 3-4 s and 6-8 s
    assert [t.get_text() for t in axis.texts] == ['0.90', '0.70', '0.80']


def test_demo_report_saves_the_table_and_a_comparison_plot(tmp_path):
    evaluations = [('TSM', {'top1': 0.856, 'mean_class_acc': 0.85}),
                   ('TSN (no shift)', {'top1': 0.361, 'mean_class_acc': 0.36}),
                   ('TSM online', {'top1': 0.85, 'mean_class_acc': 0.84,
                                   'running_top1': [0.411, 0.5, 0.789, 0.85],
                                   'frames_to_right': 2.01})]
    stream = {'engine': 'Paddle Inference (CPU, fp32)', 'ms_per_frame': 3.14159}
    text = results.demo_report(evaluations, str(tmp_path), stream)
    assert text.splitlines()[2:] == [
        'TSM              0.856   0.850', 'TSN (no shift)   0.361   0.360',
        'TSM online       0.850   0.840',
        'TSM online, running prediction after 1..4 frames: 0.411 0.500 0.789 0.850',
        'frames until the running prediction is right for good: 2.01',
        'TSM online, streamed: 3.1 ms a frame on Paddle Inference (CPU, fp32)']
    saved = json.load(open(tmp_path / 'demo_summary.json'))
    assert saved['online_ms_per_frame'] == 3.14159
    assert [m['top1'] for m in saved['models']] == [0.856, 0.361, 0.85]
    assert saved['online_running_top1'] == [0.411, 0.5, 0.789, 0.85]
    assert cv2.imread(str(tmp_path / 'demo_comparison.png')) is not None
    bars, running = results.demo_figure(saved).axes
    assert [t.get_text() for t in bars.texts] == ['0.856', '0.361', '0.850']
    assert running.lines[0].get_ydata().tolist() == [0.411, 0.5, 0.789, 0.85]
