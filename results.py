"""Results to look at: CSV tables and PNG plots of a training run, an evaluation, a long video.

train.py writes train_curves.png (loss, train and validation top-1, learning rate per epoch)
after every epoch; eval.py per-class accuracy (CSV and a bar chart sorted by accuracy), the
confusion matrix (CSV, and a PNG that stays readable for 400 classes: the matrix as an image
beside the most-confused pairs by name) and every video's top-5 (CSV); predict.py the timeline
of a long video. The tables are plain functions of scores and labels, so they are tested on
hand-made cases; the plots only draw them. matplotlib draws off-screen (the Agg backend).
"""
import csv
import fractions
import itertools
import json
import os

import av
import cv2
import matplotlib
matplotlib.use('Agg')  # no display: plots go to files
import matplotlib.pyplot as plt  # noqa: E402  after the backend is chosen
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

import outputs  # noqa: E402

MOST_CONFUSED = 20  # pairs listed beside the confusion matrix


def _write_csv(path, header, rows):
    with outputs.replacing(path, newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _save(figure, path):
    try:
        with outputs.replacing_path(path) as tmp:
            figure.savefig(tmp, dpi=100)
    finally:
        plt.close(figure)


def train_curves(rows, path, title=''):
    """PNG of the training log rows: loss, train and validation top-1, learning rate per
    epoch; `title` names the run."""
    _save(curves_figure(rows, title), path)


def curves_figure(rows, title=''):
    epochs = [r['epoch'] for r in rows]
    validated = [r for r in rows if 'valid_top1' in r]
    figure, (loss, top1, lr) = plt.subplots(1, 3, figsize=(13, 3.6))
    loss.plot(epochs, [r['train_loss'] for r in rows], 'o-', label='train')
    with_loss = [r for r in validated if 'valid_loss' in r]
    if with_loss:
        loss.plot([r['epoch'] for r in with_loss], [r['valid_loss'] for r in with_loss], 's-',
                  label='validation')
        loss.legend()
    loss.set(title='loss', xlabel='epoch', ylabel='cross-entropy')
    top1.plot(epochs, [r['train_top1'] for r in rows], 'o-', label='train')
    top1.plot([r['epoch'] for r in validated], [r['valid_top1'] for r in validated], 's-',
              label='validation')
    top1.set(title='top-1', xlabel='epoch', ylabel='top-1 accuracy', ylim=(0, 1))
    top1.legend()
    lr.plot(epochs, [r['lr'] for r in rows], 'o-')
    lr.set(title='learning rate at the epoch start', xlabel='epoch', ylabel='learning rate')
    for axis in (loss, top1, lr):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    _title(figure, title)
    return figure


def _title(figure, title):
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()  # leaves room for the suptitle


def confusion_matrix(predicted, labels, num_classes):
    """counts[true, predicted] over the videos."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def per_class(counts):
    """[(class, videos, correct, accuracy)] of the classes with videos, worst first (ties by
    class), from a confusion matrix."""
    rows = [(c, int(counts[c].sum()), int(counts[c, c])) for c in range(len(counts))
            if counts[c].sum()]
    return sorted(((c, n, k, k / n) for c, n, k in rows), key=lambda r: (r[3], r[0]))


def most_confused(counts, limit=MOST_CONFUSED):
    """[(true, predicted, videos)] of the off-diagonal cells with videos, most first."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    cells = np.argwhere(off > 0)
    order = sorted(cells.tolist(), key=lambda tp: (-off[tp[0], tp[1]], tp[0], tp[1]))
    return [(t, p, int(off[t, p])) for t, p in order[:limit]]


def write_evaluation(folder, scores, labels, videos, names, plots=True, title=''):
    """per_class.csv, confusion.csv, top5.csv (and per_class.png, confusion.png, titled
    `title`) in folder: scores [M, K] of the M scored videos, their labels and paths, the
    class names."""
    predicted = scores.argmax(axis=1)
    counts = confusion_matrix(predicted, labels, len(names))
    classes = per_class(counts)
    _write_csv(os.path.join(folder, 'per_class.csv'), ['label', 'name', 'videos', 'correct',
                                                       'accuracy'],
               [(c, names[c], n, k, f'{a:.4f}') for c, n, k, a in classes])
    _write_csv(os.path.join(folder, 'confusion.csv'), ['true \\ predicted'] + list(names),
               [[names[t]] + counts[t].tolist() for t in range(len(names))])
    top = np.argsort(-scores, axis=1)[:, :5]
    _write_csv(os.path.join(folder, 'top5.csv'),
               ['video', 'label', 'name', 'right'] + [f'top{i + 1}' for i in range(top.shape[1])]
               + [f'prob{i + 1}' for i in range(top.shape[1])],
               [[v, int(y), names[y], int(t[0] == y)] + [names[i] for i in t]
                + [f'{scores[m, i]:.4f}' for i in t]
                for m, (v, y, t) in enumerate(zip(videos, labels, top))])
    if plots:
        _save(per_class_figure(classes, names, title), os.path.join(folder, 'per_class.png'))
        _save(confusion_figure(counts, names, title), os.path.join(folder, 'confusion.png'))


def per_class_figure(classes, names, title=''):
    """Accuracy per class, worst first, each bar with its value and its videos."""
    height = max(3.0, 0.16 * len(classes) + 1)
    figure, axis = plt.subplots(figsize=(7, height))
    small = len(classes) >= 60
    bars = axis.barh(range(len(classes)), [a for _, _, _, a in classes])
    axis.set_yticks(range(len(classes)))
    axis.set_yticklabels([f'{names[c]} ({n})' for c, n, _, _ in classes],
                         fontsize=3 if small else 9)
    axis.bar_label(bars, [f'{a:.2f} ({k}/{n})' for _, n, k, a in classes], padding=2,
                   fontsize=3 if small else 8)
    axis.set(xlim=(0, 1.18), xlabel='accuracy (right / videos of the class)',
             title='per-class accuracy, worst first')
    axis.invert_yaxis()
    _title(figure, title)
    return figure


CELL_VALUES = 12  # classes up to which the confusion matrix shows each cell's count


def confusion_figure(counts, names, title=''):
    """The confusion matrix normalised per true class, with a colour bar (and each cell's
    count when the cells are large enough), beside the most-confused pairs by name."""
    confused = most_confused(counts)
    figure, (matrix, pairs) = plt.subplots(1, 2, figsize=(14, 6.5),
                                           gridspec_kw={'width_ratios': [1, 1]})
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    image = matrix.imshow(rates, cmap='viridis', interpolation='nearest', vmin=0, vmax=1)
    figure.colorbar(image, ax=matrix, fraction=0.046, pad=0.04,
                    label='fraction of the true class')
    matrix.set(title='confusion (rows: true class, normalised)', xlabel='predicted',
               ylabel='true')
    if len(names) <= 30:  # beyond that the names would not be readable; the pairs are
        matrix.set_xticks(range(len(names)))
        matrix.set_yticks(range(len(names)))
        matrix.set_xticklabels(names, rotation=90, fontsize=9)
        matrix.set_yticklabels(names, fontsize=9)
    if len(names) <= CELL_VALUES:
        for (t, p), n in np.ndenumerate(counts):
            matrix.text(p, t, str(n), ha='center', va='center', fontsize=9,
                        color='black' if rates[t, p] > 0.5 else 'white')
    if confused:
        pairs.barh(range(len(confused)), [n for _, _, n in confused])
        pairs.set_yticks(range(len(confused)))
        pairs.set_yticklabels([f'{names[t]} -> {names[p]}' for t, p, _ in confused],
                              fontsize=8)
        pairs.invert_yaxis()
        pairs.set(title=f'most confused pairs (true -> predicted), top {MOST_CONFUSED}',
                  xlabel='videos')
        pairs.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        pairs.axis('off')
        pairs.text(0.5, 0.5, 'no video is confused with another class', ha='center',
                   va='center', fontsize=12, transform=pairs.transAxes)
    _title(figure, title)
    return figure


def timeline(segments, duration, names, path, title=''):
    """PNG of a long video's segments: time across, one row per class that has one and a
    row for the time no class reaches the threshold; `title` names the video."""
    _save(timeline_figure(segments, duration, names, title), path)


NO_ACTION = (0.75, 0.75, 0.75)  # the colour of time no class reaches the threshold in


def class_colour(label):
    """One colour per class, the same in every plot of a run."""
    return plt.get_cmap('tab20')(label % 20)


def timeline_figure(segments, duration, names, title=''):
    shown = sorted({s['label'] for s in segments})
    rows = {label: k for k, label in enumerate(shown)}
    gaps = _uncovered(segments, duration)
    figure, axis = plt.subplots(figsize=(12, 1.4 + 0.35 * (len(shown) + 1)))
    for s in segments:
        width = s['end'] - s['start']
        axis.barh(rows[s['label']], width, left=s['start'], height=0.6,
                  color=class_colour(s['label']))
        if width > duration / 40:  # room for the score inside the bar
            axis.text(s['start'] + width / 2, rows[s['label']], f"{s['score']:.2f}",
                      ha='center', va='center', fontsize=7)
    for start, end in gaps:
        axis.barh(len(shown), end - start, left=start, height=0.6, color=NO_ACTION)
    axis.set_yticks(range(len(shown) + 1))
    axis.set_yticklabels([names[label] for label in shown] + ['no action'], fontsize=8)
    axis.set(xlim=(0, duration), xlabel='seconds',
             title='predicted actions (mean score of each segment)')
    axis.invert_yaxis()
    _title(figure, title)
    return figure


def _uncovered(segments, duration):
    """[(start, end)] of [0, duration] that no segment covers."""
    gaps, at = [], 0.0
    for s in sorted(segments, key=lambda s: s['start']):
        if s['start'] > at + 1e-9:
            gaps.append((at, s['start']))
        at = max(at, s['end'])
    return gaps + ([(at, duration)] if duration > at + 1e-9 else [])


def tiles(centres, duration):
    """[(start, end)] tiling [0, duration] around ascending `centres` (seconds): each point
    of time belongs to the nearest centre's tile."""
    cuts = [0.0] + [(a + b) / 2 for a, b in zip(centres, centres[1:])] + [duration]
    return list(zip(cuts[:-1], cuts[1:]))


def segments(items, threshold):
    """Runs of equal labels: items [(start, end, label, score)] in time order become
    [{'start', 'end', 'label', 'score'}] (score the mean over the run); an item whose score
    is below `threshold` is "no action" and belongs to no segment."""
    out = []
    for start, end, label, score in items:
        if score < threshold:
            label = None
        if out and out[-1]['label'] == label and out[-1]['end'] >= start - 1e-9:
            run = out[-1]
            run['end'], run['scores'] = end, run['scores'] + [score]
        else:
            out.append({'start': start, 'end': end, 'label': label, 'scores': [score]})
    return [{'start': round(s['start'], 3), 'end': round(s['end'], 3), 'label': s['label'],
             'score': round(float(np.mean(s['scores'])), 6)} for s in out
            if s['label'] is not None]


def write_segments(path, segments_, names):
    _write_csv(path, ['start', 'end', 'label', 'name', 'score'],
               [(s['start'], s['end'], s['label'], names[s['label']], s['score'])
                for s in segments_])


def annotate(frames, segments_, names, path):
    """Write `frames`, (RGB uint8 frame, seconds) in order, as a video at `path` with the
    label and score of the segment each frame falls in drawn on it ('-' outside any). Each frame keeps
    its time, so a video of variable frame rate plays at its own pace; H.264 where the
    installed PyAV encodes it, which browsers play. Written under a temporary name and
    renamed when whole: an interrupted run leaves no half video at `path`."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    with outputs.replacing_path(path) as tmp:  # the extension chooses the container
        with av.open(tmp, 'w') as container:
            stream = _video_stream(container, first[0].shape)
            last = -1
            for frame, t in itertools.chain([first], frames):
                label = next((f"{names[s['label']]} {s['score']:.2f}" for s in segments_
                              if s['start'] <= t < s['end']), '-')
                picture = av.VideoFrame.from_ndarray(_labelled(frame, label, stream),
                                                     format='rgb24')
                last = picture.pts = max(round(t * _TICKS), last + 1)
                picture.time_base = stream.codec_context.time_base
                container.mux(stream.encode(picture))
            container.mux(stream.encode())


_TICKS = 1000  # frame times of an annotated video in milliseconds


def _video_stream(container, shape):
    """An H.264 stream (MPEG-4 part 2 where PyAV has no H.264 encoder) for frames of `shape`,
    its sides rounded up to even numbers as 4:2:0 colour needs."""
    codec = 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'
    stream = container.add_stream(codec, rate=25)
    stream.height, stream.width = (side + side % 2 for side in shape[:2])
    stream.pix_fmt = 'yuv420p'
    stream.codec_context.time_base = fractions.Fraction(1, _TICKS)
    return stream


def _labelled(frame, label, stream):
    """The frame, padded to the stream's size, with `label` drawn on it (draw_label)."""
    height, width = frame.shape[:2]
    image = np.pad(frame, ((0, stream.height - height), (0, stream.width - width), (0, 0)),
                   mode='edge')
    return draw_label(image, label, height)


def draw_label(image, label, height=None):
    """`image` (drawn on in place and returned) with `label` at its top left in white on a
    dark outline, so it reads on light and dark frames alike; sized for a frame `height`
    pixels high (the image's own by default)."""
    height = height or image.shape[0]
    scale = max(height / 400, 0.35)
    thick = max(int(2 * scale), 1)
    origin = (8, int(24 * scale) + 4)
    for colour, width_ in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):
        cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width_,
                    cv2.LINE_AA)
    return image


def demo_report(evaluations, folder, stream=None):
    """The demo's comparison: `evaluations` [(model name, its TSM_eval.json dict)], the last
    an online model with running accuracies; `stream` the TSM_online.json of its streamed
    video, whose time a frame the table shows. Writes demo_summary.json and
    demo_comparison.png in `folder`; returns the table as text."""
    os.makedirs(folder, exist_ok=True)
    online = evaluations[-1][1]
    summary = {'models': [{'model': name, 'top1': r['top1'],
                           'mean_class_acc': r['mean_class_acc']} for name, r in evaluations],
               'online_running_top1': online['running_top1'],
               'online_frames_to_right': online['frames_to_right']}
    if stream:
        summary['online_ms_per_frame'] = stream['ms_per_frame']
        summary['online_engine'] = stream['engine']
    with outputs.replacing(os.path.join(folder, 'demo_summary.json')) as f:
        json.dump(summary, f, indent=1)
    _save(demo_figure(summary), os.path.join(folder, 'demo_comparison.png'))
    lines = ['demo validation accuracy (6 classes that differ only in time order)',
             'model            top1    mean_class_acc']
    lines += [f"{m['model']:15}  {m['top1']:.3f}   {m['mean_class_acc']:.3f}"
              for m in summary['models']]
    running = summary['online_running_top1']
    lines.append(f'{evaluations[-1][0]}, running prediction after 1..{len(running)} frames: '
                 + ' '.join(f'{a:.3f}' for a in running))
    lines.append(f"frames until the running prediction is right for good: "
                 f"{summary['online_frames_to_right']:.2f}")
    if stream:
        lines.append(f"{evaluations[-1][0]}, streamed: {stream['ms_per_frame']:.1f} ms a "
                     f"frame on {stream['engine']}")
    return '\n'.join(lines)


def demo_figure(summary):
    """Top-1 of each demo model beside the online model's accuracy after 1..T frames."""
    figure, (bars, running) = plt.subplots(1, 2, figsize=(11, 3.8))
    models = summary['models']
    drawn = bars.bar(range(len(models)), [m['top1'] for m in models],
                     color=[class_colour(k) for k in range(len(models))])
    bars.bar_label(drawn, [f"{m['top1']:.3f}" for m in models], padding=2)
    bars.set_xticks(range(len(models)))
    bars.set_xticklabels([m['model'] for m in models])
    bars.axhline(1 / 6, color='grey', linestyle='--', label='chance (6 classes)')
    bars.set(ylim=(0, 1.1), ylabel='validation top-1', title='the same frames, with and '
                                                           'without the temporal shift')
    bars.legend(loc='upper right')
    accuracy = summary['online_running_top1']
    running.plot(range(1, len(accuracy) + 1), accuracy, 'o-',
                 color=class_colour(len(models) - 1))
    running.set(ylim=(0, 1.05), xlabel='frames seen', ylabel='top-1 of the running prediction',
                title=f"{models[-1]['model']}: accuracy as frames arrive")
    running.xaxis.set_major_locator(MaxNLocator(integer=True))
    _title(figure, 'demo: classes that differ only in time order')
    return figure
