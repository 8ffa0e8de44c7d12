"""predict.py's reading cost: a long video's windows against a plain decode, and --filelist
with DataLoader workers against one process.

    python benchmarks/bench_predict.py [--minutes 1 --window 2 --stride 1 --videos 24]

1. A generated H.264 video (340x256, 25 fps, --minutes long): seconds per minute of video of
   a plain sequential decode of every frame to RGB (PyAV), and of reader.windows.clips over
   --window/--stride windows (decode once, transform the frames the windows sample), the
   part of `predict.py --window` before the network.
2. prediction.predict_list over --videos copies of a 10 s video, TSM-R18 at 112 (random
   weights; the network's share is the same in both runs), with DATA.num_workers 2 against 0:
   videos per second.
Each figure is the median of --repeats runs.
"""
import argparse
import logging
import os
import sys
import tempfile

import av
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.media import write_video  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402
from configs.config import load_config  # noqa: E402
from models import TSM  # noqa: E402
from reader import windows  # noqa: E402
from reader.decode import open_video  # noqa: E402
import prediction  # noqa: E402
from reader import make_loader  # noqa: E402


def plain_decode(path):
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format='rgb24')


def window_reading(path, cfg, window, stride):
    video = open_video(path)
    plan = windows.plan(video.frame_times(), window, stride, cfg['MODEL']['seg_num'])
    for _ in windows.clips(video, plan, cfg['DATA']):
        pass
    return len(plan)


class Sink:
    def __init__(self):
        self.results, self.failed = [], []

    def add(self, record):
        self.results.append(record)


def list_rate(folder, cfg, model, workers, count, repeats):
    path = write_video(os.path.join(folder, 'clip.mp4'), 340, 256, 250)
    listing = os.path.join(folder, 'videos.list')
    with open(listing, 'w') as f:
        f.writelines(f'{path}\n' for _ in range(count))
    cfg = dict(cfg, DATA=dict(cfg['DATA'], num_workers=workers),
               INFER=dict(cfg['INFER'], filelist=listing, batch_size=4))
    names = [str(i) for i in range(cfg['MODEL']['num_classes'])]

    def run():
        prediction.predict_list(model, make_loader(cfg, 'infer'), cfg, names, Sink())
    return count / median_seconds(run, repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--minutes', type=float, default=1.0)
    p.add_argument('--window', type=float, default=2.0)
    p.add_argument('--stride', type=float, default=1.0)
    p.add_argument('--videos', type=int, default=24)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    cfg = load_config('configs/tsm.yaml', ['MODEL.depth=18', 'DATA.short_size=128',
                                           'DATA.target_size=112'])
    with tempfile.TemporaryDirectory() as folder:
        long_video = write_video(os.path.join(folder, 'long.mp4'), 340, 256,
                                 int(args.minutes * 60 * 25))
        plain = median_seconds(lambda: plain_decode(long_video), args.repeats)
        count = window_reading(long_video, cfg, args.window, args.stride)
        read = median_seconds(lambda: window_reading(long_video, cfg, args.window, args.stride),
                              args.repeats)
        model = TSM(**cfg['MODEL'])
        model.eval()
        rates = {w: list_rate(folder, cfg, model, w, args.videos, args.repeats) for w in (0, 2)}
    per_minute = 1 / args.minutes
    print(f'{os.cpu_count()} cores; {args.minutes:g} min of 340x256 H.264, {count} windows of '
          f'{args.window:g} s every {args.stride:g} s, seg_num {cfg["MODEL"]["seg_num"]}')
    print(f'  plain decode of every frame:   {plain * per_minute:6.2f} s per minute of video')
    print(f'  windows read (decode once):    {read * per_minute:6.2f} s per minute of video '
          f'(x{read / plain:.2f} of the plain decode)')
    print(f'--filelist, {args.videos} videos of 10 s, TSM-R18 at 112, batch 4:')
    for workers, rate in rates.items():
        print(f'  DATA.num_workers {workers}: {rate:5.2f} videos/s  x{rate / rates[0]:.2f}')


if __name__ == '__main__':
    main()
