"""Per-frame cost of online TSM against offline clips and a plain 2D ResNet.

Times, at batch 1 and 224x224 with ResNet-50 (dynamic graph, no gradients):
  stream   OnlineTSM.step on one frame (shift buffers read and written),
  offline  an online-mode TSM on a whole 8-frame clip, divided by 8,
  2d       the same network without shift (shift_mode none) on one frame,
and the same step and 2D network exported and run by Paddle Inference (oneDNN,
fp32), each the median over rounds taken in turn, so a change of machine load
hits all alike. Also prints the shift-buffer memory of R50 at 224.

    python benchmarks/bench_online.py --rounds 30
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import numpy.random  # noqa: F401  before paddle (Paddle 2.6's zlib symbols, see train.py)
import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.timing import machine_line  # noqa: E402
from models.device import use_cpu, usable_cores  # noqa: E402
from models import TSM  # noqa: E402
from models.deploy.static import export_static  # noqa: E402
from models.deploy.predictor import Predictor, make_config  # noqa: E402
from models.deploy.step import export_online_step  # noqa: E402
from models.online import OnlineTSM  # noqa: E402

SEG_NUM = 8


def seconds(fn):
    start = time.perf_counter()
    fn()  # CPU kernels run eagerly: the result is ready when fn returns
    return time.perf_counter() - start


def build(depth, shift_mode, seg_num):
    model = TSM(num_classes=400, seg_num=seg_num, depth=depth, shift_mode=shift_mode)
    model.eval()
    return model


def exported_cases(step_model, plain, size, folder):
    """{name: fn} running the exported online step (buffers fed back) and the exported
    plain network on one frame, through Paddle Inference on oneDNN."""
    program = export_online_step(step_model, os.path.join(folder, 'step'), size)
    predictor = paddle.inference.create_predictor(make_config(os.path.splitext(program)[0]))
    names = predictor.get_input_names()
    frame = np.random.default_rng(0).standard_normal([1, 3, size, size], dtype=np.float32)
    shapes = OnlineTSM(step_model, size).shapes
    state = {'buffers': [np.zeros(s, np.float32) for s in shapes]}

    def step():
        for name, value in zip(names, [frame] + state['buffers']):
            predictor.get_input_handle(name).copy_from_cpu(value)
        predictor.run()
        outputs = [predictor.get_output_handle(n).copy_to_cpu()
                   for n in predictor.get_output_names()]
        state['buffers'] = outputs[1:]

    spec = paddle.static.InputSpec([None, 1, 3, size, size], 'float32', 'clips')
    export_static(plain, spec, os.path.join(folder, 'TSM'))
    plain_predictor = Predictor(os.path.join(folder, 'TSM'))
    return {'exported step': step,
            'exported 2D frame': lambda: plain_predictor(frame[:, None])}


def timed_in_turn(cases, warmup, rounds):
    """{name: [seconds per frame]}: each round runs every case once, so a change of machine
    load hits all alike."""
    times = {name: [] for name in cases}
    for r in range(warmup + rounds):
        for name, fn in cases.items():
            t = seconds(fn) / (SEG_NUM if name.startswith('offline') else 1)
            if r >= warmup:
                times[name].append(t)
    return times


def describe_machine():
    print(f'machine: {machine_line()}, device {paddle.get_device()}')


@paddle.no_grad()
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--rounds', type=int, default=30, help='timed rounds after warm-up')
    p.add_argument('--warmup', type=int, default=3)
    args = p.parse_args(argv)
    paddle.set_device('cpu')
    use_cpu(usable_cores())
    describe_machine()

    engine = OnlineTSM(build(args.depth, 'online', SEG_NUM), args.size)
    offline = build(args.depth, 'online', SEG_NUM)
    plain = build(args.depth, 'none', 1)
    frame = paddle.randn([1, 3, args.size, args.size])
    clip = paddle.randn([1, SEG_NUM, 3, args.size, args.size])
    cases = {
        'stream step': lambda: engine.step(frame),
        f'offline clip / {SEG_NUM}': lambda: offline(clip),
        '2D ResNet frame': lambda: plain.frame_scores(frame[:, None]),
    }
    times = timed_in_turn(cases, args.warmup, args.rounds)
    # The exported group runs after the dynamic one, not interleaved: oneDNN's worker
    # threads keep spinning after a run and made the eager kernels 1.5x slower.
    folder = tempfile.TemporaryDirectory()
    times.update(timed_in_turn(exported_cases(build(args.depth, 'online', SEG_NUM), plain,
                                              args.size, folder.name),
                               args.warmup, args.rounds))

    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f'R{args.depth} {args.size}x{args.size} batch 1, median of {args.rounds} rounds '
          f'after {args.warmup} warm-up:')
    for name, value in ms.items():
        spread = 1e3 * (max(times[name]) - min(times[name]))
        print(f'  {name:>18}: {value:8.2f} ms per frame (max-min {spread:.2f} ms)')
    stream = ms['stream step']
    print(f'  stream / 2D ResNet frame: {stream / ms["2D ResNet frame"]:.3f}')
    print(f'  stream / (offline clip / {SEG_NUM}): '
          f'{stream / ms[f"offline clip / {SEG_NUM}"]:.3f}')
    print(f'  exported step / exported 2D frame: '
          f'{ms["exported step"] / ms["exported 2D frame"]:.3f}')
    size = engine.buffer_bytes()
    print(f'shift buffers R{args.depth} at {args.size}: {len(engine.shapes)} buffers, '
          f'{size} bytes = {size / 1e6:.2f} MB ({size / 2 ** 20:.2f} MiB) fp32, batch 1')


if __name__ == '__main__':
    main()
