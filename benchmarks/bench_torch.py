"""Ours against the original PyTorch TSM on this CPU, in one run: the training step and the
clip inference of eval.py's and predict.py's default path, as ratios.

    python benchmarks/bench_torch.py --tsm_repo PATH --torch_python PYTHON \
        [--depth 50 --size 224 --batch 2 --rounds 3 --out bench_torch.json]

PATH is a checkout of mit-han-lab/temporal-shift-module (not part of this project); PYTHON an
interpreter with torch and torchvision, which the original code builds its ResNet with. The
PyTorch side (benchmarks/torch_side.py) runs in a child process of that interpreter, started
once; the two sides alternate job by job, `--rounds` times, each job timed twice after one
warm-up run, with a pause before each run, medians reported. Both use the same number of
threads and random clips of the same shape. Ours: train.py's update (training.train_update
with training.build_optimizer's Momentum, L2 decay and clipping), and the exported inference
form through Paddle Inference (models.deploy.static.export_static, models.deploy.predictor.Predictor,
fp32), what eval.py and predict.py run unless told --dynamic; the dynamic model is timed
too, for reference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cli  # noqa: E402  first: it loads numpy.random before paddle (2.6)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.jobs import Child  # noqa: E402
from benchmarks.steps import train_step  # noqa: E402
from benchmarks.timing import machine, paused_seconds  # noqa: E402
from models import TSM  # noqa: E402
from models.device import use_cpu  # noqa: E402
from models.deploy.predictor import Predictor  # noqa: E402
from models.deploy.static import clip_spec, export_static  # noqa: E402

TIMED = 2  # timed runs per job and round, after one warm-up run
PAUSE = 1.0  # seconds between jobs: the side that ran last lets its idle threads stop spinning



def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tsm_repo', required=True, help='a checkout of the original TSM code')
    p.add_argument('--torch_python', required=True, help='an interpreter with torch and '
                                                          'torchvision')
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--batch', type=int, default=2, help='clips per training step')
    p.add_argument('--seg_num', type=int, default=8)
    p.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--out', default='bench_torch.json')
    return p


def start_torch_side(args):
    """The child process running torch_side.py, and the torch and torchvision versions."""
    side = Child([args.torch_python, os.path.join(ROOT, 'benchmarks', 'torch_side.py'),
                  '--tsm_repo', args.tsm_repo, '--depth', str(args.depth),
                  '--size', str(args.size), '--batch', str(args.batch),
                  '--seg_num', str(args.seg_num), '--threads', str(args.threads)], PAUSE)
    versions = subprocess.run(
        [args.torch_python, '-c', 'import torch, torchvision; '
         'print(torch.__version__, torchvision.__version__)'],
        capture_output=True, text=True, check=True).stdout.split()
    return side, versions


def our_jobs(args, workdir):
    """{job: fn()} of our side: 'train', 'infer' (the exported model), 'infer_dynamic'."""
    use_cpu(args.threads)
    shape = [args.seg_num, 3, args.size, args.size]
    one = np.random.default_rng(1).standard_normal([1] + shape, dtype=np.float32)
    prefix = os.path.join(workdir, 'TSM')
    export_static(TSM(num_classes=400, seg_num=args.seg_num, depth=args.depth),
                  clip_spec({'seg_num': args.seg_num}, {'target_size': args.size}), prefix)
    predictor = Predictor(prefix, threads=args.threads, precision='fp32')
    dynamic = TSM(num_classes=400, seg_num=args.seg_num, depth=args.depth)
    dynamic.eval()

    @paddle.no_grad()
    def infer_dynamic():
        dynamic(paddle.to_tensor(one)).numpy()

    return {'train': train_step(args), 'infer': lambda: predictor(one).numpy(),
            'infer_dynamic': infer_dynamic}


def main():
    args = build_parser().parse_args()
    theirs, versions = start_torch_side(args)
    times = {}
    with tempfile.TemporaryDirectory() as workdir:
        ours = our_jobs(args, workdir)
        for _ in range(args.rounds):
            for job in ('train', 'infer'):
                for side, run in (('pytorch', lambda j=job: theirs.run(j)),
                                  ('ours', lambda j=job: paused_seconds(ours[j], PAUSE))):
                    run()
                    times.setdefault(f'{side} {job}', []).extend(run() for _ in range(TIMED))
            ours['infer_dynamic']()
            times.setdefault('ours infer_dynamic', []).extend(
                paused_seconds(ours['infer_dynamic'], PAUSE) for _ in range(TIMED))
    theirs.close()
    medians = {name: float(np.median(values)) for name, values in times.items()}
    result = {
        'machine': dict(machine(), threads=args.threads, torch=versions[0],
                        torchvision=versions[1]),
        'model': {'depth': args.depth, 'size': args.size, 'seg_num': args.seg_num,
                  'train_batch': args.batch, 'infer_batch': 1},
        'median_seconds': medians, 'all_seconds': times,
        'ratio_ours_over_pytorch': {
            'train': medians['ours train'] / medians['pytorch train'],
            'infer': medians['ours infer'] / medians['pytorch infer'],
            'infer_dynamic': medians['ours infer_dynamic'] / medians['pytorch infer']}}
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    m = result['model']
    print(f"TSM-R{m['depth']}, {m['seg_num']}x{m['size']}x{m['size']} clips, "
          f"{args.threads} threads, {result['machine']['cpu']}; Paddle "
          f"{paddle.__version__}, torch {versions[0]}; medians of {args.rounds} "
          f"alternating rounds x {TIMED}")
    print('| job | original PyTorch TSM | ours | ours / PyTorch |\n|---|---|---|---|')
    rows = [(f'training step, batch {args.batch}', 'train', 'ours train'),
            ('clip inference, batch 1, default path (exported, Paddle Inference fp32)',
             'infer', 'ours infer'),
            ('clip inference, batch 1, dynamic model (--dynamic)', 'infer_dynamic',
             'ours infer_dynamic')]
    for label, ratio, ours_key in rows:
        reference = 'pytorch train' if ratio == 'train' else 'pytorch infer'
        print(f"| {label} | {medians[reference] * 1000:.0f} ms | "
              f"{medians[ours_key] * 1000:.0f} ms | "
              f"{result['ratio_ours_over_pytorch'][ratio]:.2f} |")
    print(f'written to {args.out}')


if __name__ == '__main__':
    main()
