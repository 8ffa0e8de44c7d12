"""The original PyTorch TSM exported to ONNX for benchmarks/bench_engines.py, run by an
interpreter with torch: builds the original code's TSN with the temporal shift (its
ops/models.py, from --tsm_repo), with BatchNorm statistics that are not the identity, and
writes into --folder its weights as the original's checkpoints hold them (original.pth), the
ONNX file torch.onnx.export makes of it (original.onnx: input [1, seg_num * 3, size, size],
as its test_models.py feeds a clip) and its logits for the clip in clip.npy
(original_logits.npy), so the parent can check that its own converted copy computes the same.
Where torchvision does not import, benchmarks/torchvision_resnet.py stands in for it, and
resnet.txt says which built the ResNet.
"""
import argparse
import contextlib
import os
import sys

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--tsm_repo', required=True)
    p.add_argument('--folder', required=True)
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--seg_num', type=int, default=8)
    a = p.parse_args()
    try:
        import torchvision  # noqa: F401  what the original code builds its ResNet with
        resnet = f'torchvision {torchvision.__version__}'
    except Exception:  # e.g. a wheel built for another torch: its architecture in plain torch
        from torchvision_resnet import install  # benchmarks/torchvision_resnet.py, beside
        install()
        resnet = 'benchmarks/torchvision_resnet.py'
    with open(os.path.join(a.folder, 'resnet.txt'), 'w') as f:
        f.write(resnet)
    sys.path.insert(0, a.tsm_repo)
    from ops.models import TSN  # the original code, not part of this project

    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):
        model = TSN(400, a.seg_num, 'RGB', base_model=f'resnet{a.depth}', dropout=0.5,
                    partial_bn=False, pretrain='', is_shift=True, shift_div=8,
                    shift_place='blockres', print_spec=False)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    torch.save({'state_dict': {f'module.{k}': v for k, v in model.state_dict().items()}},
               os.path.join(a.folder, 'original.pth'))
    clip = np.load(os.path.join(a.folder, 'clip.npy'))  # [1, T, 3, H, W]
    x = torch.from_numpy(clip.reshape(1, -1, *clip.shape[3:]))
    with torch.no_grad():
        np.save(os.path.join(a.folder, 'original_logits.npy'), model(x).numpy())
        with contextlib.redirect_stdout(sys.stderr):
            torch.onnx.export(model, (x,), os.path.join(a.folder, 'original.onnx'),
                              dynamo=False, opset_version=13, input_names=['clip'])


if __name__ == '__main__':
    main()
