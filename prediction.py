"""Predictions of a clip model over videos: the top-k classes of each video, kept as they are
made (a JSON line per video, flushed) and gathered at the end. predict.py runs them; the
benchmarks time them.
"""
import contextlib
import json
import logging
import os

import numpy as np
import paddle

import console
import outputs
from models.finite import check_scores
from reader import FAILED_LABEL, load_clip
from reader.decode import DecodeError
from reader.protocols import view_average
from scoring import view_scores


def top_k(probs, names, k):
    order = np.argsort(-probs)[:k]
    return [{'label': int(i), 'name': names[i], 'prob': round(float(probs[i]), 6)}
            for i in order]


class Predictions:
    """Predictions kept as they are made: one JSON line per video in `<out>.jsonl`, flushed,
    and the whole list in `<out>.json` (written through a temporary file) at `close`."""

    def __init__(self, out, header):
        self.out, self.header = out, header
        self.results, self.failed = [], []
        os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
        self.lines = open(out + '.jsonl', 'w')

    def add(self, record):
        (self.failed if 'error' in record else self.results).append(record)
        with outputs.writing(self.out + '.jsonl'):  # a full disk: named, the lines so far kept
            self.lines.write(json.dumps(record, allow_nan=False) + '\n')
            self.lines.flush()

    def close(self, interrupted=False):
        with contextlib.suppress(OSError):  # the lines are flushed: only a failed add's is lost
            self.lines.close()
        whole = {**self.header, 'predictions': self.results,
                 'failed': [r['video'] for r in self.failed], 'interrupted': interrupted}
        try:
            with outputs.replacing(self.out + '.json') as f:
                json.dump(whole, f, indent=2, allow_nan=False)
        except outputs.OutputError as e:
            if not interrupted:
                raise
            logging.warning('%s; %s.jsonl holds the predictions made', e, self.out)
            return
        if interrupted:
            logging.info('%d predictions written to %s.json (interrupted: the videos done so '
                         'far)', len(self.results), self.out)

    def written(self):
        return [('predictions', [self.out + '.json', self.out + '.jsonl'])]


def record(sink, path, probs, names, k, frames=None):
    """Add the top-k of `path` to `sink` and print it; `frames` ({'decoded', 'in_file'}) is
    recorded, and said when the clip was sampled from fewer frames than the file holds."""
    best = top_k(check_scores(probs, path), names, k)
    sink.add({'video': path, 'top_k': best, **({'frames': frames} if frames else {})})
    partial = (f" (from the {frames['decoded']} of {frames['in_file']} frames that decode)"
               if frames and frames['decoded'] < frames['in_file'] else '')
    print(f'{path}: ' + ', '.join(f"{c['name']} {c['prob']:.3f}" for c in best) + partial,
          flush=True)


@paddle.no_grad()
def predict_one(model, path, cfg, names, sink):
    frames = {}
    try:
        clip = load_clip(path, cfg, 'infer', frames)
    except DecodeError as e:
        logging.error('skipped %s: %s', path, e)
        sink.add({'video': path, 'error': str(e)})
        return
    probs = view_scores(model, paddle.to_tensor(clip[None]), view_average(cfg, 'infer'))
    record(sink, path, probs.numpy()[0], names, cfg['INFER']['topk'], frames)


@paddle.no_grad()
def predict_list(model, loader, cfg, names, sink):
    """Top-k of every video of the loader's list, batch by batch, into `sink`; a video that
    cannot be decoded is reported (the reader's warnings name why) and skipped."""
    paths = iter([path for path, _ in loader.items.entries])  # the loader keeps list order
    for clips, labels, _ in console.Progress(len(loader), 'predict', unit='batch').over(loader):
        batch = [next(paths) for _ in range(int(labels.shape[0]))]
        failed = labels.numpy() == FAILED_LABEL
        for path in np.asarray(batch)[failed]:
            sink.add({'video': str(path), 'error': 'could not be decoded'})
        if failed.all():
            continue
        probs = view_scores(model, clips[paddle.to_tensor(~failed)],
                            view_average(cfg, 'infer')).numpy()
        for path, p in zip(np.asarray(batch)[~failed], probs):
            record(sink, str(path), p, names, cfg['INFER']['topk'])
