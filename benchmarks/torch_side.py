"""The original PyTorch TSM's side of benchmarks/bench_torch.py, run by an interpreter with
torch and torchvision: builds the original code's TSN with the temporal shift (its
ops/models.py, from --tsm_repo) and times what it is asked on its standard input.

Each input line is a job, 'train' or 'infer'; each answer line is that job's seconds. Jobs
are the original code's own: a training step as its main.py takes one (SGD with momentum 0.9
and weight decay, gradients clipped to norm 20, every BatchNorm training as its TSM recipes
ask with --npb) and a clip through the model in eval mode under torch.no_grad(), as its
test_models.py scores one.
"""
import argparse
import contextlib
import sys

import torch

from jobs import serve  # benchmarks/jobs.py, beside this script


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--tsm_repo', required=True)
    p.add_argument('--depth', type=int, required=True)
    p.add_argument('--size', type=int, required=True)
    p.add_argument('--batch', type=int, required=True)
    p.add_argument('--seg_num', type=int, default=8)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    sys.path.insert(0, a.tsm_repo)
    from ops.models import TSN  # the original code, not part of this project

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):  # standard output carries the answers
        model = TSN(400, a.seg_num, 'RGB', base_model=f'resnet{a.depth}', dropout=0.5,
                    partial_bn=False, pretrain='', is_shift=True, shift_div=8,
                    shift_place='blockres', print_spec=False)
    optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=1e-4)
    clips = torch.randn(a.batch, a.seg_num * 3, a.size, a.size)
    labels = torch.randint(0, 400, (a.batch,))
    one = clips[:1].clone()

    def train():
        model.train()
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20)
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(one)

    jobs = {'train': train, 'infer': infer}
    serve(jobs)


if __name__ == '__main__':
    main()
