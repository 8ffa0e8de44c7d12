"""Data-parallel training throughput: 2 gloo processes against 1, the same global batch.

    python benchmarks/bench_parallel.py [--depth 50 --size 112 --global_batch 4 --steps 6]

Each run trains a TSM on random clips with train.py's own update (models.parallel, the
Momentum step of training.build_optimizer) and reports clips/s over the steps after the first
two; one process uses every core, each of two processes half of them (launched by
paddle.distributed.launch, gloo on the CPU). Data loading is left out: this measures what
data parallelism itself costs and gains.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = '''
import json, os, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import paddle
from models import TSM, parallel
from models.amp import Precision
from models.device import use_cpu
import training
paddle.set_device('cpu')
use_cpu({threads})
parallel.init()
paddle.seed(0)
model = TSM(num_classes=400, seg_num=8, depth={depth})
settings = {{'learning_rate': 0.01, 'lr_decay': 0.1, 'lr_decay_epochs': [], 'warmup_epochs': 0,
            'momentum': 0.9, 'l2_weight_decay': 1e-4, 'clip_norm': 20.0,
            'param_groups': 'plain'}}
optimizer, _ = training.build_optimizer(model, settings, 100, 0.01)
trained = parallel.data_parallel(model)
trained.train()
batch = {global_batch} // parallel.world_size()
rng = np.random.default_rng(parallel.rank())
clips = paddle.to_tensor(rng.standard_normal((batch, 1, 8, 3, {size}, {size}), dtype=np.float32))
labels = paddle.to_tensor(rng.integers(0, 400, batch))
group = [(clips, labels, paddle.zeros([batch], 'int64'))]
times = []
for step in range({steps}):
    start = time.perf_counter()
    training.train_update(trained, group, optimizer, Precision('off'))
    times.append(time.perf_counter() - start)
if parallel.is_main():
    with open({out!r}, 'w') as f:
        json.dump(times, f)
'''


def run(world, args, folder):
    out = os.path.join(folder, f'times{world}.json')
    cores = len(os.sched_getaffinity(0))
    script = os.path.join(folder, f'worker{world}.py')
    with open(script, 'w') as f:
        f.write(WORKER.format(root=ROOT, threads=max(cores // world, 1), depth=args.depth,
                              size=args.size, global_batch=args.global_batch,
                              steps=args.steps, out=out))
    command = [sys.executable, script] if world == 1 else [
        sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', str(world),
        '--log_dir', os.path.join(folder, 'log'), script]
    subprocess.run(command, check=True, capture_output=True, cwd=folder)
    with open(out) as f:
        times = json.load(f)[2:]  # the first steps build kernels and buffers
    return args.global_batch * len(times) / sum(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--size', type=int, default=112)
    p.add_argument('--global_batch', type=int, default=4)
    p.add_argument('--steps', type=int, default=6)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        rates = {world: run(world, args, folder) for world in (1, 2)}
    print(f'TSM-R{args.depth}, 8x{args.size}x{args.size}, global batch {args.global_batch}, '
          f'{len(os.sched_getaffinity(0))} cores, {time.strftime("%Y-%m-%d")}')
    for world, rate in rates.items():
        print(f'  {world} process(es): {rate:.2f} clips/s  x{rate / rates[1]:.2f} of 1 process')


if __name__ == '__main__':
    main()
