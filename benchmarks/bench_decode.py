"""Time reading one TSM clip (seg_num frames, uniformly sampled) from a video.

Writes a 10-second 340x256 H.264 video (25 fps, 3 B-frames, a keyframe every 250 frames,
the usual Kinetics shape) and, for contrast, the same with a keyframe every 25 frames.
Prints the median ms per clip, opening included, of:
  reader.decode           - open_video(path).read(indices), the project's reader (PyAV)
  PyAV decode to last     - PyAV decoding and converting every frame up to the last one asked
  OpenCV grab() to last   - cv2.VideoCapture decoding up to the last one asked, converting
                            only the asked ones
and, where decord is installed, as a comparison (the reader no longer uses it):
  decord next() to last   - decord decoding and converting every frame up to the last one
  decord get_batch        - decord's random access (fast, but wrong on some files: see
                            reader/decode.py)
All decode with one thread, as a loader worker does.

    python benchmarks/bench_decode.py --repeats 20
"""
import argparse
import os
import sys
import tempfile

import av  # before decord, which bundles an older libvpx whose symbols would shadow PyAV's
import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.videos import read_index, write_index_video  # noqa: E402
from benchmarks.timing import machine_line, median_seconds  # noqa: E402
from reader import decode  # noqa: E402
from reader.sampling import sample_indices  # noqa: E402

try:
    import decord
except ImportError:
    decord = None


def read_with_reader(path, indices):
    with decode.open_video(path) as video:
        return video.read(indices)


def pyav_decode_to_last(path, indices):
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format='rgb24'))
            if len(frames) > max(indices):
                break
    return np.stack([frames[i] for i in indices])


def decord_next_to_last(path, indices):
    reader = decord.VideoReader(path, num_threads=1)
    frames = [reader.next().asnumpy() for _ in range(max(indices) + 1)]
    return np.stack([frames[i] for i in indices])


def opencv_grab_to_last(path, indices):
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    frames = {}
    for index in range(max(indices) + 1):
        capture.grab()
        if index in indices:
            frames[index] = cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB)
    capture.release()
    return np.stack([frames[i] for i in indices])


def decord_get_batch(path, indices):
    return decord.VideoReader(path, num_threads=1).get_batch(indices).asnumpy()


def bench_video(path, seg_num, repeats):
    num_frames = decode.open_video(path).num_frames
    indices = sample_indices(num_frames, seg_num, 'test').tolist()  # what eval reads
    methods = [('reader.decode', lambda: read_with_reader(path, indices)),
               ('PyAV decode to last', lambda: pyav_decode_to_last(path, indices)),
               ('OpenCV grab() to last', lambda: opencv_grab_to_last(path, indices))]
    if decord is not None:
        methods += [('decord next() to last', lambda: decord_next_to_last(path, indices)),
                    ('decord get_batch', lambda: decord_get_batch(path, indices))]
    print(f'{os.path.basename(path)}: {num_frames} frames, indices {indices}')
    base = None
    for name, fn in methods:
        exact = [read_index(f) for f in fn()] == indices
        ms = 1000 * median_seconds(fn, repeats)
        base = base or ms
        print(f'  {name:24s} {ms:7.1f} ms/clip  x{ms / base:4.2f} of reader.decode'
              f'  frames {"exact" if exact else "WRONG"}')


def main():
    p = argparse.ArgumentParser(description='Time reading a sampled clip from a video.')
    p.add_argument('--repeats', type=int, default=20, help='timed reads per method (median kept)')
    p.add_argument('--seg_num', type=int, default=8, help='frames per clip')
    args = p.parse_args()
    print('machine: ' + machine_line(
        PyAV=av.__version__, OpenCV=cv2.__version__,
        decord=getattr(decord, '__version__', 'absent')))
    with tempfile.TemporaryDirectory() as tmp:
        for keyint in (250, 25):
            path = write_index_video(os.path.join(tmp, f'h264_b3_keyint{keyint}.mp4'), 250,
                                     width=340, height=256, codec='h264', bframes=3, keyint=keyint)
            bench_video(path, args.seg_num, args.repeats)


if __name__ == '__main__':
    main()
