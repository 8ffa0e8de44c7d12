"""Scores and metrics of a clip model over a list: the views of a video combined into class
probabilities, top-1/top-5/mean class accuracy, and how an online model's running
prediction grows right frame by frame. eval.py, train.py (validation) and predict.py use it.
"""
import numpy as np
import paddle
import paddle.nn.functional as F

import console
from models import parallel
from models.finite import check_scores
from reader import TooManyFailures


def average_views(logits, average):
    """View logits [B, V, K] -> class probabilities [B, K]: the mean of the views' softmax
    ('softmax', our own pipeline), or the softmax of the mean logits ('logits', what the
    published protocols rank by; the softmax keeps their order and makes them probabilities)."""
    if average == 'logits':
        return F.softmax(logits.mean(axis=1), axis=-1)
    return F.softmax(logits, axis=-1).mean(axis=1)


def view_scores(model, clips, average='softmax'):
    """Class probabilities per video, averaged over its views as `average` says:
    [B, V, T, 3, H, W] -> [B, K]."""
    b, v = clips.shape[:2]
    logits = model(clips.reshape([b * v] + list(clips.shape[2:])))
    return average_views(logits.reshape([b, v, -1]), average)


def view_frame_scores(model, clips, average='softmax'):
    """(class probabilities [B, K] as view_scores, frame logits [B, T, K] averaged over the
    views) from one forward pass of a dynamic TSM."""
    b, v = clips.shape[:2]
    frames = model.frame_scores(clips.reshape([b * v] + list(clips.shape[2:])))
    probs = average_views(frames.mean(axis=1).reshape([b, v, -1]), average)
    return probs, frames.reshape([b, v] + list(frames.shape[1:])).mean(axis=1)


def running_metrics(frame_logits, labels):
    """How the prediction of a stream grows right, for an online model fed the T frames of
    each clip one by one (models.online.OnlineTSM computes these same frame logits).

    running_top1[k-1]: top-1 of the running prediction (mean logits of frames 1..k);
    frames_to_right: over the videos right after all T frames, the mean number of frames
    after which the running prediction is right and stays right.
    """
    steps = np.arange(1, frame_logits.shape[1] + 1)[None, :, None]
    right = (np.cumsum(frame_logits, axis=1) / steps).argmax(-1) == labels[:, None]
    # stays[m, k]: right at frame k and at every later frame
    stays = np.logical_and.accumulate(right[:, ::-1], axis=1)[:, ::-1]
    first = stays.argmax(axis=1)[right[:, -1]] + 1
    return {'running_top1': [round(float(a), 4) for a in right.mean(axis=0)],
            'frames_to_right': round(float(first.mean()), 3) if len(first) else None}


def metrics(scores, labels, num_classes):
    """top-1, top-5 and mean class accuracy (each class's recall, averaged over the classes
    present) of scores [M, K] against labels [M], as fractions."""
    k = min(5, num_classes)
    top = np.argsort(-scores, axis=1)[:, :k]
    hit1 = top[:, 0] == labels
    hitk = (top == labels[:, None]).any(axis=1)
    recalls = [hit1[labels == c].mean() for c in np.unique(labels)]
    return {'top1': float(hit1.mean()), f'top{k}': float(hitk.mean()),
            'mean_class_acc': float(np.mean(recalls)), 'num_videos': int(len(labels))}


@paddle.no_grad()
def evaluate(model, loader, num_classes, progress=True, average='softmax', details=None):
    """Metrics over every decodable item of `loader`; dropped items are counted, not scored.
    `average`: how an item's views combine (average_views).

    Under paddle.distributed each rank scores its own share of the list (the loader's) and
    the shares' scores are gathered, so every rank returns the metrics of the whole list,
    exactly those of one process (no item is scored twice). `details`, a dict, receives the
    scores [M, K], labels [M] and list positions [M] of the M scored items."""
    model.eval()
    online = getattr(model, 'shift_mode', None) == 'online'  # a dynamic online TSM
    scored = {'scores': [], 'frames': [], 'labels': [], 'items': []}
    dropped = failures = 0
    # the positions of this rank's items, in the order the loader gives them (evaluation
    # neither shuffles nor drops)
    positions = iter([i for keys in loader.batch_sampler for i, _ in keys])
    bar = console.Progress(len(loader), 'eval', shown=progress and parallel.is_main(),
                           leave=False)
    for clips, labels, n_failures in bar.over(loader):
        items = np.array([next(positions) for _ in range(int(labels.shape[0]))])
        keep = labels.numpy() >= 0
        dropped += int((~keep).sum())
        failures += int(n_failures.numpy().sum())
        if not keep.any():
            continue
        if online:
            scores, frames = view_frame_scores(model, clips, average)
            scored['frames'].append(frames.numpy()[keep])
        else:
            scores = view_scores(model, clips, average)
        scored['scores'].append(scores.numpy()[keep])
        scored['labels'].append(labels.numpy()[keep])
        scored['items'].append(items[keep])
    shares = parallel.gather((scored, dropped, failures))
    merged = {key: [a for share, _, _ in shares for a in share[key]] for key in scored}
    dropped, failures = sum(s[1] for s in shares), sum(s[2] for s in shares)
    if not merged['labels']:
        raise TooManyFailures('no video of the list could be decoded; see the warnings above')
    labels = np.concatenate(merged['labels'])
    scores = check_scores(np.concatenate(merged['scores']), 'evaluation')
    result = metrics(scores, labels, num_classes)
    if details is not None:
        details.update(scores=scores, labels=labels,
                       items=np.concatenate(merged['items']))
    if online:
        result.update(running_metrics(np.concatenate(merged['frames']), labels))
    result.update(dropped=dropped, decode_failures=failures)
    return result
