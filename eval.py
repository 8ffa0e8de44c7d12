"""Evaluate TSM on a list of videos: top-1, top-5 and mean class accuracy.

    bash run.sh eval TSM ./configs/tsm.yaml [--weights FILE] [--filelist LIST]
"""
import json
import logging
import os
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
import numpy as np
import paddle
import paddle.nn.functional as F

import console
import outputs
import results
from models import TSM, parallel
from models.device import usable_cores
from models.finite import check_scores
from models.inference import Predictor, check_matches, model_files
from models.weights import load_for_inference
from models.weights.exported import exported_model
from reader import ListFileError, TooManyFailures, check_failures, make_loader
from reader.listfile import read_label_names
from reader.protocols import input_size, view_average


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


def model_for(cfg, section, use_gpu, dynamic=False):
    """What eval.py and predict.py run for cfg[section] (TEST or INFER): the exported model
    in `infer_model` through paddle.inference when set; else the exported model of `weights`
    (built once, cached: models.weights.exported); the dynamic TSM with `weights` when
    `dynamic`, or for an online model (its per-frame scores come from the dynamic graph).
    An exported model takes frames of the section's input size: the protocol's crop
    (reader.protocols.input_size), else DATA.target_size."""
    settings = cfg[section]
    sized = dict(cfg, DATA=dict(cfg['DATA'], target_size=input_size(cfg, section.lower())))
    if settings['infer_model']:
        return _predictor(settings['infer_model'], sized, section, use_gpu)
    if dynamic or cfg['MODEL']['shift_mode'] == 'online':
        if settings['precision'] not in ('fp32', 'auto'):
            raise cli.UsageError(f'{section}.precision {settings["precision"]}: the dynamic '
                                 f'model computes in fp32; drop --dynamic to run it exported')
        model = TSM(**cfg['MODEL'])
        load_for_inference(model, settings['weights'], cfg['DATA']['weights_dir'])
        model.eval()  # returns None under Paddle 2.6
        return model
    folder = exported_model(sized, settings['weights'], cfg['DATA']['weights_dir'])
    return _predictor(folder, sized, section, use_gpu)


def _predictor(folder, cfg, section, use_gpu):
    settings = cfg[section]
    try:
        check_matches(model_files(folder)[0], cfg)
        predictor = Predictor(folder, use_gpu, settings['threads'] or usable_cores(),
                              settings['precision'])
    except (ValueError, FileNotFoundError) as e:  # a wrong export folder or precision
        raise cli.UsageError(f'{section}: {e}') from None
    logging.info('running %s with Paddle Inference (%s, %s)', folder,
                 'GPU' if predictor.on_gpu else 'CPU', predictor.precision)
    return predictor


def class_names(cfg):
    """The names of INFER.label_file when it has one per class, else the label numbers."""
    path, count = cfg['INFER']['label_file'], cfg['MODEL']['num_classes']
    if os.path.isfile(path):
        try:
            return read_label_names(path, count)
        except ListFileError as e:
            logging.warning('class names: %s; using the label numbers', e)
    return [str(i) for i in range(count)]


def model_source(settings, model):
    """What a TEST or INFER section ran, for the JSON outputs."""
    source = {'infer_model': settings['infer_model']} if settings['infer_model'] else {
        'weights': settings['weights']}
    if isinstance(model, Predictor):
        return dict(source, engine='paddle.inference', exported=model.files[0],
                    precision=model.precision)
    return dict(source, engine='dynamic', precision='fp32')


def report(result):
    text = '  '.join(f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in result.items() if not isinstance(v, list) and k != 'seconds')
    logging.info('eval: %s', text)
    if 'running_top1' in result:
        logging.info('online running top-1 after 1..%d frames: %s', len(result['running_top1']),
                     ' '.join(f'{a:.3f}' for a in result['running_top1']))


def summary(folder, result, seconds):
    """The closing lines of eval.py: how long it took, and the files it wrote."""
    def beside(*names):
        return [os.path.join(folder, name) for name in names]
    return ([f"scored {console.count(result['num_videos'], 'video')} in "
             f"{console.duration(result['seconds'])} "
             f"({console.duration(seconds)} in all)"]
            + console.written([('metrics', beside('TSM_eval.json')),
                               ('per class', beside('per_class.csv', 'per_class.png')),
                               ('confusion', beside('confusion.csv', 'confusion.png')),
                               ('top-5', beside('top5.csv'))]))


def main(argv=None):
    started = time.time()
    args, cfg = cli.start('eval', argv)
    test = cfg['TEST']
    parallel.init()  # under paddle.distributed.launch each process scores a share
    if parallel.is_main():  # the writing rank; before any video or weights are read
        outputs.writable_folder(test['save_dir'], 'TEST.save_dir')
    # the list is checked before any weights are fetched
    loader = make_loader(cfg, 'test', rank=parallel.rank(), world_size=parallel.world_size())
    model = model_for(cfg, 'TEST', args.use_gpu, args.dynamic)
    start = time.time()
    details = {}
    result = evaluate(model, loader, cfg['MODEL']['num_classes'],
                      average=view_average(cfg, 'test'), details=details)
    result['seconds'] = round(time.time() - start, 2)
    report(result)
    if parallel.is_main():
        os.makedirs(test['save_dir'], exist_ok=True)
        out = os.path.join(test['save_dir'], 'TSM_eval.json')
        with outputs.replacing(out) as f:
            json.dump({'filelist': test['filelist'], **model_source(test, model), **result},
                      f, indent=2, allow_nan=False)
        videos = [loader.items.entries[i][0] for i in details['items']]
        results.write_evaluation(test['save_dir'], details['scores'], details['labels'],
                                 videos, class_names(cfg), plots=not args.no_plots,
                                 title=f"{os.path.basename(args.config)}: {test['save_dir']}")
        console.log_lines(summary(test['save_dir'], result, time.time() - started))
    check_failures(result['dropped'], result['dropped'] + result['num_videos'],
                   cfg['DATA']['max_failure_ratio'])
    return 0


if __name__ == '__main__':
    cli.run('eval', main)
