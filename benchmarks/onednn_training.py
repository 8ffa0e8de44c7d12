"""Whether this Paddle trains our TSM with oneDNN on the CPU, and how fast: the check behind
the README's training-speed section, to run again on a newer Paddle.

    python benchmarks/onednn_training.py [--depth 18 --size 32 --seg_num 8 --batch 16]

PyTorch's CPU convolutions are oneDNN's; Paddle's dynamic mode runs none of oneDNN's
kernels, which a Paddle program reaches from a static Program only. Each variant runs in a
child process of its own, since a failing oneDNN kernel can take its process down:

- eager: train.py's update (training.train_update with training.build_optimizer's Momentum,
  L2 decay and clipping);
- static: the same model and optimizer as one static Program (cross-entropy over the batch,
  every clip decoded), oneDNN off;
- static_onednn: that Program with FLAGS_use_mkldnn.

For each (printed, and written to --out as JSON): whether its steps ran, the oneDNN
primitives it executed a step (from oneDNN's verbose output), the median step and its ratio
to eager's; or the error's last line and the op Paddle's executor names. A static step with
oneDNN is worth building once static_onednn runs, faster than eager.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cli  # noqa: E402  first: it loads numpy.random before paddle (2.6)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.steps import TRAIN_SETTINGS, train_step  # noqa: E402
from benchmarks.timing import machine  # noqa: E402
from models import TSM  # noqa: E402
from models.device import use_cpu  # noqa: E402
import training  # noqa: E402

VARIANTS = ('eager', 'static', 'static_onednn')
SHAPE = ('depth', 'seg_num', 'size', 'batch')  # the arguments that make the step
WARMUP = 2


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--depth', type=int, default=18, help='ResNet depth')
    p.add_argument('--seg_num', type=int, default=8, help='frames per clip')
    p.add_argument('--size', type=int, default=32, help='frame side')
    p.add_argument('--batch', type=int, default=16, help='clips per step')
    p.add_argument('--steps', type=int, default=5, help='timed steps (median)')
    p.add_argument('--threads', type=int, default=2, help='CPU threads')
    p.add_argument('--out', default='output/onednn_training.json', help='the results as JSON')
    # a child's: its variant, and the file it writes its result to
    p.add_argument('--variant', choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument('--result_file', help=argparse.SUPPRESS)
    return p


def static_step(args, onednn):
    paddle.enable_static()
    paddle.set_flags({'FLAGS_use_mkldnn': onednn})
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        paddle.seed(0)
        clips = paddle.static.data('clips', [args.batch, args.seg_num, 3, args.size, args.size],
                                   'float32')
        labels = paddle.static.data('labels', [args.batch, 1], 'int64')
        model = TSM(num_classes=400, seg_num=args.seg_num, depth=args.depth)
        model.train()
        loss = paddle.nn.functional.cross_entropy(model(clips), labels).mean()
        optimizer, _ = training.build_optimizer(model, TRAIN_SETTINGS, 100,
                                                TRAIN_SETTINGS['learning_rate'])
        optimizer.minimize(loss)
    executor = paddle.static.Executor(paddle.CPUPlace())
    executor.run(startup)
    rng = np.random.default_rng(0)
    feed = {'clips': rng.standard_normal([args.batch, args.seg_num, 3, args.size, args.size],
                                         dtype=np.float32),
            'labels': rng.integers(0, 400, [args.batch, 1])}
    return lambda: executor.run(program, feed=feed, fetch_list=[loss])


def child(args):
    """One variant's steps; writes the step times, or the error, to --result_file (stdout
    carries oneDNN's verbose lines)."""
    use_cpu(args.threads)
    try:
        step = train_step(args) if args.variant == 'eager' else static_step(
            args, args.variant == 'static_onednn')
        times = []
        for _ in range(WARMUP + args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        result = {'ran': True, 'seconds': times[WARMUP:]}
    except Exception as e:  # the finding is which error, reported to the parent
        lines = str(e).strip().splitlines() or [type(e).__name__]
        result = {'ran': False, 'error': f'{type(e).__name__}: {lines[-1].strip()}'}
    with open(args.result_file, 'w') as f:
        json.dump(result, f)


def run_variant(args, variant):
    """The child's result, with the oneDNN primitives it executed per step."""
    with tempfile.TemporaryDirectory() as workdir:
        result_file = os.path.join(workdir, 'result.json')
        command = [sys.executable, os.path.abspath(__file__), '--variant', variant,
                   '--result_file', result_file] + [
            f'--{name}={getattr(args, name)}' for name in SHAPE + ('steps', 'threads')]
        env = dict(os.environ, ONEDNN_VERBOSE='1', DNNL_VERBOSE='1')  # 2.6's oneDNN: DNNL_
        proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
        if not os.path.exists(result_file):  # the process died
            tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
            return {'ran': False, 'error': f'exit code {proc.returncode}: {tail}'}
        with open(result_file) as f:
            result = json.load(f)
    if result['ran']:
        result['onednn_per_step'] = proc.stdout.count(',exec,') / (WARMUP + args.steps)
    else:  # Paddle 3's executor logs the op that raised; the exception says std::exception
        culprits = [line.split('] ', 1)[-1] for line in proc.stderr.splitlines()
                    if 'raises an exception' in line]
        result['error'] += ''.join(f' ({c})' for c in culprits[:1])
    return result


def main():
    args = build_parser().parse_args()
    if args.variant:
        return child(args)
    results = {variant: run_variant(args, variant) for variant in VARIANTS}
    m = machine()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump({'machine': m, 'model': {name: getattr(args, name) for name in SHAPE},
                   'variants': results}, f, indent=1)
    print(f"TSM-R{args.depth}, {args.batch} clips of {args.seg_num}x{args.size}x{args.size}, "
          f"{args.threads} threads, {m['cpu']}, Paddle {m['paddle']}; medians of "
          f"{args.steps} steps after {WARMUP}")
    print('| variant | ran | oneDNN primitives a step | step | / eager |\n|---|---|---|---|---|')
    eager = results['eager']
    for variant, r in results.items():
        if not r['ran']:
            print(f"| {variant} | no: {r['error']} | | | |")
            continue
        step = float(np.median(r['seconds']))
        ratio = (f"{step / float(np.median(eager['seconds'])):.2f}" if eager['ran'] else '')
        print(f"| {variant} | yes | {r['onednn_per_step']:.0f} | {step * 1000:.0f} ms | "
              f"{ratio} |")
    print(f'written to {args.out}')


if __name__ == '__main__':
    main()
