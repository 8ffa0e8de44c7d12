"""Predict the top classes of videos with TSM.

    python predict.py --video_path x.mp4
    python predict.py --filelist videos.list --weights output/tsm/TSM_best --save_dir out/
    python predict.py --online --config configs/tsm_online_demo.yaml --video_path x.mp4

Each prediction is appended to SAVE_DIR/TSM_predict.jsonl as it is made, so an interrupted
run keeps what it predicted; SAVE_DIR/TSM_predict.json gathers them at the end (also after
Ctrl-C, marked "interrupted").
"""
import collections
import json
import logging
import math
import os
import sys
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
import cv2
import numpy as np
import paddle

import console
import outputs
import results
from engine import fastest_engine, installed_engines, model_for, model_source
from models import TSM
from models.finite import check_scores
from models.device import usable_cores
from models.deploy.cache import exported_step
from models.deploy.engines import NAMES, engine_precision, step_runner
from models.deploy.onnx_export import MissingPackage
from models.deploy.step import STEP_NAME, ExportedStream, StepPredictor
from models.online import OnlineStep, OnlineTSM, _pair
from models.weights import load_for_inference
from reader import make_loader
from reader.listfile import read_label_names
from reader import windows
from reader.dataset import frame_template
from reader.decode import open_video
from reader.protocols import OURS
from reader.stream import frame_transform, parse_source, stream_frames
from prediction import Predictions, predict_list, predict_one, top_k
import running as running_label
from running import softmax
from scoring import view_scores


def videos(args, cfg):
    """The one video of --video_path, or a loader over INFER.filelist (its decoding in
    DATA.num_workers worker processes, as eval's): checked before any model is built or
    weights fetched."""
    if args.video_path:
        if not os.path.isfile(args.video_path) and not os.path.isdir(args.video_path):
            raise cli.UsageError(f'--video_path {args.video_path}: no such video file')
        return args.video_path
    if cfg['INFER']['filelist']:
        return make_loader(cfg, 'infer')
    raise cli.UsageError('give --video_path VIDEO or --filelist LIST')


def check_window_flags(args):
    """--window and --stride: finite positive seconds, over one --video_path."""
    for flag, value in (('--window', args.window), ('--stride', args.stride)):
        if value is not None and not 0 < value < math.inf:
            raise cli.UsageError(f'{flag} {value}: expected a positive number of seconds')
    if not args.video_path:
        raise cli.UsageError('--window needs --video_path (one long video)')


def plan_stride(args):
    return args.stride or args.window / 2


def window_plan(args, times, seg_num):
    """reader.windows.plan of --window and --stride over frames at `times`, checked first:
    a UsageError for a video of one frame, or a stride starting more windows than frames."""
    stride = plan_stride(args)
    if len(times) < 2:
        raise cli.UsageError(f'--window {args.window}: {args.video_path} has {len(times)} '
                             f'frame, shorter than any window; predict it without --window')
    count = windows.count(windows.duration_of(times), args.window, stride)
    if count > len(times):
        flag = '--stride' if args.stride else '--stride (by default half of --window)'
        raise cli.UsageError(f'{flag} {stride}: {count} windows of {args.window} s, more '
                             f'than the {len(times)} frames of {args.video_path} (the '
                             f'limit: one window a frame)')
    return windows.plan(times, args.window, stride, seg_num)


@paddle.no_grad()
def predict_windows(args, cfg, names):
    """--window: the windows of one long video (reader.windows, decoded once), each window's
    top-k, the windows merged into segments; JSON, CSV, a timeline PNG, --annotate. A
    window is one clip of our own pipeline (DATA's sizes), whatever INFER.protocol says.
    The segments are printed, the windows with --verbose. Returns (what was done, the
    written files as console.written rows)."""
    check_window_flags(args)
    infer = cfg['INFER']
    video = open_video(args.video_path)
    times = video.frame_times()
    plan = window_plan(args, times, cfg['MODEL']['seg_num'])
    ours = dict(cfg, INFER=dict(infer, protocol=OURS))
    model = model_for(ours, 'INFER', args.use_gpu, args.dynamic)  # after the video is checked
    records, batch = [], []

    def flush():
        clips = np.concatenate([c for _, c in batch])[:, None]  # [windows, 1 view, T, ...]
        probs = check_scores(view_scores(model, paddle.to_tensor(clips)).numpy(),
                             args.video_path)
        for (w, _), p in zip(batch, probs):
            records.append({'start': w.start, 'end': w.end,
                            'top_k': top_k(p, names, infer['topk'])})
            best = records[-1]['top_k'][0]
            if args.verbose:
                print(f"window {w.start:8.2f}-{w.end:8.2f}s: {best['name']} "
                      f"{best['prob']:.3f}", flush=True)
        batch.clear()
    bar = console.Progress(len(plan), 'windows', unit='window')
    for item in bar.over(windows.clips(video, plan, cfg['DATA'])):
        batch.append(item)
        if len(batch) == infer['batch_size']:
            flush()
    if batch:
        flush()
    duration = plan[-1].end
    spans = results.tiles([(r['start'] + r['end']) / 2 for r in records], duration)
    merged = results.segments([(a, b, r['top_k'][0]['label'], r['top_k'][0]['prob'])
                               for (a, b), r in zip(spans, records)], args.threshold)
    rows = write_timeline(args, cfg, names, {'windows': records}, merged, duration,
                          lambda: zip(video.iter_frames(), times))
    return (f"{console.count(len(merged), 'segment')} from "
            f"{console.count(len(records), 'window')} of {args.window:g} s "
            f"({plan_stride(args):g} s apart)", rows)


def write_timeline(args, cfg, names, detail, merged, duration, frames):
    """TSM_timeline.json (the details and the segments), TSM_segments.csv, TSM_timeline.png
    and, with --annotate, the video with its labels, `frames()` giving its (frame, seconds)
    (a second decoding pass: annotation writes every frame); returns the files as
    console.written rows."""
    out = cfg['INFER']['save_dir']
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'TSM_timeline.json')
    with outputs.replacing(path) as f:
        json.dump({'source': args.video_path, 'window': args.window, 'stride': args.stride,
                   'threshold': args.threshold, 'duration': duration, **detail,
                   'segments': merged}, f, indent=1, allow_nan=False)
    results.write_segments(os.path.join(out, 'TSM_segments.csv'), merged, names)
    if not args.no_plots:
        results.timeline(merged, duration, names, os.path.join(out, 'TSM_timeline.png'),
                         title=str(args.video_path))
    for s in merged:
        print(f"segment {s['start']:.2f}-{s['end']:.2f}s: {names[s['label']]} "
              f"{s['score']:.3f}", flush=True)
    if args.annotate:
        results.annotate(frames(), merged, names, args.annotate)
    return [('timeline', [path, os.path.join(out, 'TSM_timeline.png')]),
            ('segments', [os.path.join(out, 'TSM_segments.csv')]),
            ('annotated', [args.annotate] if args.annotate else [])]


def frame_record(index, seconds, logits, running, names):
    """One line of the online JSON: this frame's top-1 and the running label's (a
    running.RunningLabel fed this frame's logits)."""
    logits = check_scores(logits.numpy()[0], f'frame {index}')
    probs = softmax(logits.astype(np.float64))
    best = int(probs.argmax())
    run, score = running.update(logits)
    return {'frame': index, 'time': round(seconds, 4),
            'label': best, 'name': names[best], 'score': round(float(probs[best]), 6),
            'running_label': run, 'running_name': None if run is None else names[run],
            'running_score': None if score is None else round(score, 6)}


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
        raise cli.UsageError('--online runs the exported step of --weights (or, with '
                             '--dynamic, the dynamic model); INFER.infer_model is a clip model')
    parse_source(args.video_path, args.fps)  # a missing file is named now, not after weights
    if args.show:
        check_display()


def predict_online(args, cfg, names):
    """Stream --video_path (a file, a frame folder, a camera index or a URL) frame by frame (every
    INFER.online_stride-th frame); prints the running prediction every --every frames and
    writes every fed frame to TSM_online.json. Returns (what was done, the written files as
    console.written rows)."""
    check_online(args, cfg)
    infer = cfg['INFER']
    try:
        running = running_label.from_settings(infer, names)
    except ValueError as e:  # a class the label file does not have
        raise cli.UsageError(str(e)) from None
    engine, ran_on = online_engine(args, cfg)
    window = LiveWindow() if args.show else None
    records, stepping = [], 0.0
    try:
        for index, seconds, frame in stream_frames(args.video_path, args.fps,
                                                         frame_template(cfg)):
            if index % infer['online_stride']:
                continue
            x = paddle.to_tensor(frame_transform(frame, cfg['DATA'])[None])
            started = time.perf_counter()
            logits = engine.step(x)
            stepping += time.perf_counter() - started
            records.append(frame_record(index, seconds, logits, running, names))
            if window and not window.show(frame, records[-1]):
                break
            if (len(records) - 1) % args.every == 0:
                print(f"frame {index} {seconds:.2f}s: {running_text(records[-1], 3)}",
                      flush=True)
    except KeyboardInterrupt:  # a camera never ends: Ctrl-C stops it, the JSON is still written
        logging.info('stopped after %d frames', len(records))
    finally:
        if window:
            window.close()
    per_frame = 1e3 * stepping / max(len(records), 1)
    os.makedirs(infer['save_dir'], exist_ok=True)
    out = os.path.join(infer['save_dir'], 'TSM_online.json')
    with outputs.replacing(out) as f:
        json.dump({'weights': infer['weights'], 'source': args.video_path, 'engine': ran_on,
                   'ms_per_frame': round(per_frame, 3), 'frames': records}, f, indent=2,
                  allow_nan=False)
    rows = [('frames', [out])]
    if records:  # the frames' running labels as a timeline, as --window gives for clips
        times = [r['time'] for r in records]
        step = times[1] - times[0] if len(times) > 1 else 0.04
        spans = list(zip(times, times[1:] + [times[-1] + step]))
        merged = results.segments([(a, b, r['running_label'], r['running_score'] or 0.0)
                                   for (a, b), r in zip(spans, records)], args.threshold)

        rows += write_timeline(args, cfg, names, {}, merged, spans[-1][1],
                               lambda: ((f, t) for _, t, f in stream_frames(
                                   args.video_path, args.fps, frame_template(cfg))))
    return (f"{console.count(len(records), 'frame')} streamed, {per_frame:.1f} ms a frame on "
            f"{ran_on}"), rows


def running_text(record, digits):
    """A frame record's running label and score as shown ('-' before there is one)."""
    if record['running_label'] is None:
        return '-'
    return f"{record['running_name']} {record['running_score']:.{digits}f}"


class LiveWindow:
    """--show: each fed frame in a window with the running label, its score and the frames per
    second (over the last second); q or Esc closes it, ending the stream."""
    NAME = 'TSM online'

    def __init__(self):
        self.times = collections.deque()
        cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL)

    def show(self, frame, record):
        """Draw and show `frame` (RGB) with `record`'s running label; False once closed."""
        now = time.perf_counter()
        self.times.append(now)
        while now - self.times[0] > 1.0:
            self.times.popleft()
        fps = (len(self.times) - 1) / (now - self.times[0]) if len(self.times) > 1 else 0.0
        image = results.draw_label(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   f'{running_text(record, 2)}  {fps:.1f} fps')
        cv2.imshow(self.NAME, image)
        return cv2.waitKey(1) & 0xFF not in (ord('q'), 27)

    def close(self):
        cv2.destroyWindow(self.NAME)


def check_display():
    """--show needs a window: OpenCV built with a GUI (opencv-python, not the headless wheel
    the requirements install) and a display; UsageError naming what is missing."""
    if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY')
                                                 or os.environ.get('WAYLAND_DISPLAY')):
        raise cli.UsageError('--show needs a display (DISPLAY is not set); --annotate OUT.mp4 '
                             'writes the same overlay into a video')
    try:
        cv2.namedWindow(LiveWindow.NAME, cv2.WINDOW_NORMAL)
        cv2.destroyWindow(LiveWindow.NAME)
    except cv2.error:
        raise cli.UsageError('--show needs OpenCV with a GUI: pip install opencv-python (in '
                             'place of opencv-python-headless); --annotate OUT.mp4 writes the '
                             'same overlay into a video') from None


def online_engine(args, cfg):
    """(what steps the stream, its description): the exported per-frame step of the weights
    (built once and cached, checked against the dynamic stream) on INFER.engine (Paddle
    Inference, ONNX Runtime, OpenVINO, or auto: the fastest of them here, measured once);
    the dynamic model with --dynamic."""
    infer, size = cfg['INFER'], cfg['DATA']['target_size']
    model = TSM(**cfg['MODEL'])
    if args.dynamic:
        load_for_inference(model, infer['weights'], cfg['DATA']['weights_dir'])
        model.eval()
        return OnlineTSM(model, size), 'the dynamic graph'
    threads = infer['threads'] or usable_cores()
    shapes = OnlineStep(model).buffer_shapes(size)  # the network's, weights aside
    made = {}

    def step_on(engine):
        if engine in made:
            return made[engine]
        folder = exported_step(cfg, infer['weights'], cfg['DATA']['weights_dir'], engine)
        step = os.path.join(folder, STEP_NAME)
        if engine != 'paddle':
            runner = step_runner(engine, step + '.onnx', threads, infer['precision'])
            precision = engine_precision(engine, infer['precision'])
            ran_on = f'{NAMES[engine]} (CPU, {precision})'
        else:
            runner = StepPredictor(step, args.use_gpu, threads, infer['precision'])
            where = 'GPU' if runner.on_gpu else 'CPU'
            ran_on = f'Paddle Inference ({where}, {runner.precision})'
        made[engine] = runner, ran_on
        return made[engine]

    def timed(engine):  # a stream of 4 frames from empty buffers
        runner, frame = step_on(engine)[0], np.zeros([1, 3] + list(_pair(size)), np.float32)

        def stream():
            buffers = [np.zeros(s, np.float32) for s in shapes]
            for _ in range(4):
                _, buffers = runner.step(frame, buffers)
        return stream

    try:
        engine = infer['engine']
        if engine == 'auto':
            engines = installed_engines(args.use_gpu, infer['precision'])
            key = [os.path.basename(exported_step(cfg, infer['weights'],
                                                  cfg['DATA']['weights_dir'])),
                   infer['precision'], threads]
            engine = fastest_engine(key, engines, timed, cfg['DATA']['weights_dir'])
        runner, ran_on = step_on(engine)
    except (ValueError, MissingPackage) as e:  # a precision or package this machine lacks
        raise cli.UsageError(f'INFER: {e}') from None
    return ExportedStream(runner, shapes), ran_on


def check_outputs(args, infer):
    """Where predict writes, checked before any model is loaded or video decoded; --annotate
    never names the input, which its own copy would overwrite."""
    outputs.writable_folder(infer['save_dir'], 'INFER.save_dir')
    if not args.annotate:
        return
    if (args.video_path and os.path.exists(args.annotate)
            and os.path.samefile(args.annotate, args.video_path)):
        raise cli.UsageError(f'--annotate {args.annotate} is the input video; give a new path '
                             f'for the annotated copy')
    outputs.writable_file(args.annotate, '--annotate')


def summary(head, rows, started):
    console.log_lines([f'{head} in {console.duration(time.time() - started)}']
                      + console.written(rows))


def main(argv=None):
    started = time.time()
    args, cfg = cli.start('predict', argv)
    infer = cfg['INFER']
    if args.show and not args.online:
        raise cli.UsageError('--show goes with --online: it shows the stream as it is '
                             'classified')
    if args.fps is not None and not (args.online and args.video_path
                                     and os.path.isdir(args.video_path)):
        raise cli.UsageError('--fps goes with --online and a frame folder as --video_path: '
                             'a video file has its own frame times')
    check_outputs(args, infer)
    names = read_label_names(infer['label_file'], cfg['MODEL']['num_classes'])
    if args.online or args.window is not None:
        summary(*(predict_online if args.online else predict_windows)(args, cfg, names),
                started)
        return 0
    source = videos(args, cfg)
    model = model_for(cfg, 'INFER', args.use_gpu, args.dynamic)
    sink = Predictions(os.path.join(infer['save_dir'], 'TSM_predict'),
                       model_source(infer, model))
    try:
        if isinstance(source, str):
            predict_one(model, source, cfg, names, sink)
        else:
            predict_list(model, source, cfg, names, sink)
    except BaseException:  # Ctrl-C or an error of ours: keep what was predicted, then stop
        sink.close(interrupted=True)
        raise
    sink.close()
    summary(f"{console.count(len(sink.results), 'video')} predicted", sink.written(), started)
    if sink.failed:
        done = len(sink.failed) + len(sink.results)
        logging.error('%d of %d videos could not be decoded: %s', len(sink.failed), done,
                      ', '.join(r['video'] for r in sink.failed))
    return 1 if sink.failed else 0


if __name__ == '__main__':
    cli.run('predict', main)
