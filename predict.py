"""Predict the top classes of videos with TSM.

    python predict.py --video_path x.mp4
    python predict.py --filelist videos.list --weights TSM_best.pdparams --save_dir out/
    python predict.py --online --config configs/tsm_online_demo.yaml --video_path x.mp4
"""
import json
import logging
import os
import sys

import numpy as np
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
import paddle

from configs import cli
from eval import model_source, view_scores


def read_label_names(path, num_classes):
    """Class names, line i naming label i; their count must be the model's class count."""
    try:
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise SystemExit(f'cannot read label file {path}: {e.strerror}')
    if len(names) != num_classes:
        raise SystemExit(f'label file {path} has {len(names)} names but MODEL.num_classes is '
                         f'{num_classes}; set INFER.label_file to the matching file')
    return names


def top_k(probs, names, k):
    order = np.argsort(-probs)[:k]
    return [{'label': int(i), 'name': names[i], 'prob': round(float(probs[i]), 6)}
            for i in order]


def video_list(args, cfg):
    from reader import read_list
    if args.video_path:
        return [args.video_path]
    if cfg['INFER']['filelist']:
        entries = read_list(cfg['INFER']['filelist'], cfg['DATA']['data_root'],
                            require_label=False)
        return [path for path, _ in entries]
    raise SystemExit('predict.py: give --video_path VIDEO or --filelist LIST')


@paddle.no_grad()
def predict(model, paths, cfg, names):
    """Top-k per video, batch by batch; a video that cannot be decoded is reported and skipped."""
    from reader import load_clip
    from reader.decode import DecodeError
    infer = cfg['INFER']
    results, failed = [], []
    for start in range(0, len(paths), infer['batch_size']):
        clips, done = [], []
        for path in paths[start:start + infer['batch_size']]:
            try:
                clips.append(load_clip(path, cfg, 'infer'))
                done.append(path)
            except DecodeError as e:
                logging.error('skipped %s: %s', path, e)
                failed.append(path)
        if not clips:
            continue
        probs = view_scores(model, paddle.to_tensor(np.stack(clips))).numpy()
        for path, p in zip(done, probs):
            best = top_k(p, names, infer['topk'])
            results.append({'video': path, 'top_k': best})
            print(f'{path}: ' + ', '.join(f"{c['name']} {c['prob']:.3f}" for c in best),
                  flush=True)
    return results, failed


def frame_record(index, seconds, logits, running, names):
    """One line of the online JSON: this frame's top-1 and the running prediction's."""
    probs = paddle.nn.functional.softmax(paddle.concat([logits, running]), axis=-1).numpy()
    best, run = int(probs[0].argmax()), int(probs[1].argmax())
    return {'frame': index, 'time': round(seconds, 4),
            'label': best, 'name': names[best], 'score': round(float(probs[0, best]), 6),
            'running_label': run, 'running_name': names[run],
            'running_score': round(float(probs[1, run]), 6)}


def predict_online(args, cfg, names):
    """Stream --video_path (a file, a camera index or a URL) frame by frame (every
    INFER.online_stride-th frame); prints the running prediction every --every frames and
    writes every fed frame to TSM_online.json."""
    from models import TSM
    from models.online import OnlineTSM
    from models.weights import load_for_inference
    from reader.stream import StreamError, frame_transform, stream_frames
    if cfg['MODEL']['shift_mode'] != 'online':
        raise SystemExit(f"--online needs MODEL.shift_mode: online (uni-directional shift), "
                         f"{args.config} has {cfg['MODEL']['shift_mode']!r}; use an online "
                         f"config such as configs/tsm_online_demo.yaml")
    if not args.video_path or args.every < 1:
        raise SystemExit('--online needs --video_path (file, camera index or URL), --every >= 1')
    infer = cfg['INFER']
    if infer['online_stride'] < 1 or infer['online_window'] < 0:
        raise SystemExit(f"INFER.online_stride must be >= 1 and INFER.online_window >= 0, got "
                         f"{infer['online_stride']} and {infer['online_window']}")
    if infer['infer_model']:
        raise SystemExit('--online runs the dynamic model with --weights; the exported online '
                         'step (TSM_online_step) is for paddle.inference deployments')
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
    except StreamError as e:
        raise SystemExit(f'--video_path {e}') from None
    os.makedirs(infer['save_dir'], exist_ok=True)
    out = os.path.join(infer['save_dir'], 'TSM_online.json')
    with open(out, 'w') as f:
        json.dump({'weights': infer['weights'], 'source': args.video_path,
                   'frames': records}, f, indent=2)
    logging.info('%d frame predictions written to %s', len(records), out)
    return 0


def main(argv=None):
    args, cfg = cli.parse('predict', argv)
    cli.select_device(args.use_gpu)
    from models.inference import model_for
    infer = cfg['INFER']
    names = read_label_names(infer['label_file'], cfg['MODEL']['num_classes'])
    if args.online:
        return predict_online(args, cfg, names)
    paths = video_list(args, cfg)
    try:
        model = model_for(cfg, 'INFER', args.use_gpu)
    except (ValueError, FileNotFoundError) as e:  # a wrong export folder or precision
        raise SystemExit(f'predict.py: {e}')
    results, failed = predict(model, paths, cfg, names)
    os.makedirs(infer['save_dir'], exist_ok=True)
    out = os.path.join(infer['save_dir'], 'TSM_predict.json')
    with open(out, 'w') as f:
        json.dump({**model_source(infer), 'predictions': results, 'failed': failed},
                  f, indent=2)
    logging.info('%d predictions written to %s', len(results), out)
    if failed:
        logging.error('%d of %d videos could not be decoded: %s', len(failed), len(paths),
                      ', '.join(failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
