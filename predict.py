"""Predict the top classes of videos with TSM.

    python predict.py --video_path x.mp4
    python predict.py --filelist videos.list --weights output/tsm/TSM_best --save_dir out/
    python predict.py --online --config configs/tsm_online_demo.yaml --video_path x.mp4

Each prediction is appended to SAVE_DIR/TSM_predict.jsonl as it is made, so an interrupted
run keeps what it predicted; SAVE_DIR/TSM_predict.json gathers them at the end (also after
Ctrl-C, marked "interrupted").
"""
import json
import logging
import os

from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
import numpy as np
import paddle

from eval import model_for, model_source, view_scores
from models import TSM
from models.online import OnlineTSM
from models.weights import load_for_inference
from reader import load_clip, read_list
from reader.decode import DecodeError
from reader.stream import frame_transform, parse_source, stream_frames


def read_label_names(path, num_classes):
    """Class names, line i naming label i; their count must be the model's class count."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            names = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise cli.UsageError(f'cannot read label file {path}: {getattr(e, "strerror", e)}')
    if len(names) != num_classes:
        raise cli.UsageError(f'label file {path} has {len(names)} names but MODEL.num_classes '
                             f'is {num_classes}; set INFER.label_file to the matching file')
    return names


def top_k(probs, names, k):
    order = np.argsort(-probs)[:k]
    return [{'label': int(i), 'name': names[i], 'prob': round(float(probs[i]), 6)}
            for i in order]


def video_list(args, cfg):
    """The videos to predict, checked before any model is built or weights fetched."""
    if args.video_path:
        if not os.path.isfile(args.video_path) and not os.path.isdir(args.video_path):
            raise cli.UsageError(f'--video_path {args.video_path}: no such video file')
        return [args.video_path]
    if cfg['INFER']['filelist']:
        entries = read_list(cfg['INFER']['filelist'], cfg['DATA']['data_root'],
                            require_label=False)
        return [path for path, _ in entries]
    raise cli.UsageError('give --video_path VIDEO or --filelist LIST')


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
        self.lines.write(json.dumps(record) + '\n')
        self.lines.flush()

    def close(self, interrupted=False):
        self.lines.close()
        whole = {**self.header, 'predictions': self.results,
                 'failed': [r['video'] for r in self.failed], 'interrupted': interrupted}
        with open(self.out + '.json.tmp', 'w') as f:
            json.dump(whole, f, indent=2)
        os.replace(self.out + '.json.tmp', self.out + '.json')
        logging.info('%d predictions written to %s.json%s', len(self.results), self.out,
                     ' (interrupted: the videos done so far)' if interrupted else '')


@paddle.no_grad()
def predict(model, paths, cfg, names, sink):
    """Top-k per video, batch by batch, into `sink`; a video that cannot be decoded is
    reported and skipped."""
    infer = cfg['INFER']
    for start in range(0, len(paths), infer['batch_size']):
        clips, done = [], []
        for path in paths[start:start + infer['batch_size']]:
            try:
                clips.append(load_clip(path, cfg, 'infer'))
                done.append(path)
            except DecodeError as e:
                logging.error('skipped %s: %s', path, e)
                sink.add({'video': path, 'error': str(e)})
        if not clips:
            continue
        probs = view_scores(model, paddle.to_tensor(np.stack(clips))).numpy()
        for path, p in zip(done, probs):
            best = top_k(p, names, infer['topk'])
            sink.add({'video': path, 'top_k': best})
            print(f'{path}: ' + ', '.join(f"{c['name']} {c['prob']:.3f}" for c in best),
                  flush=True)


def frame_record(index, seconds, logits, running, names):
    """One line of the online JSON: this frame's top-1 and the running prediction's."""
    probs = paddle.nn.functional.softmax(paddle.concat([logits, running]), axis=-1).numpy()
    best, run = int(probs[0].argmax()), int(probs[1].argmax())
    return {'frame': index, 'time': round(seconds, 4),
            'label': best, 'name': names[best], 'score': round(float(probs[0, best]), 6),
            'running_label': run, 'running_name': names[run],
            'running_score': round(float(probs[1, run]), 6)}


def check_online(args, cfg):
    """The --online settings, checked before the model is built."""
    if cfg['MODEL']['shift_mode'] != 'online':
        raise cli.UsageError(f"--online needs MODEL.shift_mode: online (uni-directional "
                             f"shift), {args.config} has {cfg['MODEL']['shift_mode']!r}; use "
                             f"an online config such as configs/tsm_online_demo.yaml")
    if not args.video_path or args.every < 1:
        raise cli.UsageError('--online needs --video_path (file, camera index or URL) and '
                             '--every >= 1')
    if cfg['INFER']['infer_model']:
        raise cli.UsageError('--online runs the dynamic model with --weights; the exported '
                             'online step (TSM_online_step) is for paddle.inference '
                             'deployments')
    parse_source(args.video_path)  # a missing file is named now, not after the weights


def predict_online(args, cfg, names):
    """Stream --video_path (a file, a camera index or a URL) frame by frame (every
    INFER.online_stride-th frame); prints the running prediction every --every frames and
    writes every fed frame to TSM_online.json."""
    check_online(args, cfg)
    infer = cfg['INFER']
    model = TSM(**cfg['MODEL'])
    load_for_inference(model, infer['weights'], cfg['DATA']['weights_dir'])
    model.eval()
    engine = OnlineTSM(model, cfg['DATA']['target_size'], window=infer['online_window'] or None)
    records = []
    try:
        for index, seconds, frame in stream_frames(args.video_path):
            if index % infer['online_stride']:
                continue
            x = paddle.to_tensor(frame_transform(frame, cfg['DATA'])[None])
            records.append(frame_record(index, seconds, engine.step(x), engine.clip_scores(),
                                        names))
            if (len(records) - 1) % args.every == 0:
                r = records[-1]
                print(f"frame {index} {seconds:.2f}s: {r['running_name']} "
                      f"{r['running_score']:.3f}", flush=True)
    except KeyboardInterrupt:  # a camera never ends: Ctrl-C stops it, the JSON is still written
        logging.info('stopped after %d frames', len(records))
    os.makedirs(infer['save_dir'], exist_ok=True)
    out = os.path.join(infer['save_dir'], 'TSM_online.json')
    with open(out, 'w') as f:
        json.dump({'weights': infer['weights'], 'source': args.video_path,
                   'frames': records}, f, indent=2)
    logging.info('%d frame predictions written to %s', len(records), out)
    return 0


def main(argv=None):
    args, cfg = cli.start('predict', argv)
    infer = cfg['INFER']
    names = read_label_names(infer['label_file'], cfg['MODEL']['num_classes'])
    if args.online:
        return predict_online(args, cfg, names)
    paths = video_list(args, cfg)
    model = model_for(cfg, 'INFER', args.use_gpu, args.dynamic)
    sink = Predictions(os.path.join(infer['save_dir'], 'TSM_predict'),
                       model_source(infer, model))
    try:
        predict(model, paths, cfg, names, sink)
    except BaseException:  # Ctrl-C or an error of ours: keep what was predicted, then stop
        sink.close(interrupted=True)
        raise
    sink.close()
    if sink.failed:
        logging.error('%d of %d videos could not be decoded: %s', len(sink.failed), len(paths),
                      ', '.join(r['video'] for r in sink.failed))
    return 1 if sink.failed else 0


if __name__ == '__main__':
    cli.run('predict', main)
