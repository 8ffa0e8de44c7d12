"""Time reading one TSM clip (seg_num frames, uniformly sampled) from a video.

Writes a 10-second 340x256 H.264 video (25 fps, 3 B-frames, a keyframe every 250 frames,
the usual Kinetics shape) and, for contrast, the same with a keyframe every 25 frames.
Prints the median ms per clip, opening included, of:
  reader.decode (decord)  - open_video(path).read(indices), the project's reader
  reader.decode (OpenCV)  - the same with decord unavailable (the fallback)
  decord next() to last   - decord decoding and converting every frame up to the last one asked
  OpenCV read() to last   - the same with cv2.VideoCapture.read()
  decord get_batch        - decord's random access (fast, but wrong on some files: see
                            reader/decode.py)

    python benchmarks/bench_decode.py --repeats 20
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.videos import read_index, write_index_video  # noqa: E402  (loads PyAV before decord)
from reader import decode  # noqa: E402
from reader.sampling import sample_indices  # noqa: E402

try:
    import decord
except ImportError:
    decord = None


def median_ms(fn, repeats):
    fn()  # warm-up: page cache, library initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def read_with_reader(path, indices, use_decord):
    saved = decode.decord
    decode.decord = saved if use_decord else None
    try:
        with decode.open_video(path) as video:
            return video.read(indices)
    finally:
        decode.decord = saved


def decord_next_to_last(path, indices):
    reader = decord.VideoReader(path, num_threads=1)
    frames = [reader.next().asnumpy() for _ in range(max(indices) + 1)]
    return np.stack([frames[i] for i in indices])


def opencv_read_to_last(path, indices):
    capture = cv2.VideoCapture(path)
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(max(indices) + 1)]
    capture.release()
    return np.stack([frames[i] for i in indices])


def decord_get_batch(path, indices):
    return decord.VideoReader(path, num_threads=1).get_batch(indices).asnumpy()


def machine():
    model = platform.processor() or platform.machine()
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        model = names[0] if names else model
    return f'{model}, {os.cpu_count()} cores, decord {getattr(decord, "__version__", "absent")}, ' \
           f'OpenCV {cv2.__version__}'


def bench_video(path, seg_num, repeats):
    num_frames = decode.open_video(path).num_frames
    indices = sample_indices(num_frames, seg_num, 'test').tolist()  # what eval reads
    methods = [('reader.decode (decord)', lambda: read_with_reader(path, indices, True)),
               ('reader.decode (OpenCV)', lambda: read_with_reader(path, indices, False)),
               ('OpenCV read() to last', lambda: opencv_read_to_last(path, indices))]
    if decord is not None:
        methods[2:2] = [('decord next() to last', lambda: decord_next_to_last(path, indices))]
        methods.append(('decord get_batch', lambda: decord_get_batch(path, indices)))
    print(f'{os.path.basename(path)}: {num_frames} frames, indices {indices}')
    base = None
    for name, fn in methods:
        exact = [read_index(f) for f in fn()] == indices
        ms = median_ms(fn, repeats)
        base = base or ms
        print(f'  {name:24s} {ms:7.1f} ms/clip  x{ms / base:4.2f} of reader.decode (decord)'
              f'  frames {"exact" if exact else "WRONG"}')


def main():
    p = argparse.ArgumentParser(description='Time reading a sampled clip from a video.')
    p.add_argument('--repeats', type=int, default=20, help='timed reads per method (median kept)')
    p.add_argument('--seg_num', type=int, default=8, help='frames per clip')
    args = p.parse_args()
    print(f'machine: {machine()}')
    with tempfile.TemporaryDirectory() as tmp:
        for keyint in (250, 25):
            path = write_index_video(os.path.join(tmp, f'h264_b3_keyint{keyint}.mp4'), 250,
                                     width=340, height=256, codec='h264', bframes=3, keyint=keyint)
            bench_video(path, args.seg_num, args.repeats)


if __name__ == '__main__':
    main()
