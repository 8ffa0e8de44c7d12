"""The original online demo's side of benchmarks/bench_online_mv2.py, run by an interpreter
with torch and onnxruntime: builds the demo's MobileNetV2 (online_demo/mobilenet_v2_tsm.py
from --tsm_repo, 27 classes), saves its weights for our side to convert, exports it to ONNX as
the demo deploys it (the frame and its ten shift buffers in, the logits and the next buffers
out) and times what it is asked on its standard input.

Each input line is a job, 'eager' or 'onnx': --frames frames streamed through the model from
the buffers the previous job left (PyTorch eager under torch.no_grad(), or ONNX Runtime on the
exported model); each answer line is that job's seconds. Before 'ready' it writes the eager
logits of the frames in FOLDER/frames.npy to FOLDER/original_logits.npy, from zero buffers.
"""
import argparse
import contextlib
import os
import sys

import numpy as np
import torch

from jobs import serve  # benchmarks/jobs.py, beside this script

BUFFERS = ([3, 56], [4, 28], [4, 28], [8, 14], [8, 14], [8, 14], [12, 14], [12, 14], [20, 7],
           [20, 7])  # (channels, side) at 224x224, as the demo allocates them


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--tsm_repo', required=True)
    p.add_argument('--folder', required=True)
    p.add_argument('--frames', type=int, required=True)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    sys.path.insert(0, os.path.join(a.tsm_repo, 'online_demo'))
    from mobilenet_v2_tsm import MobileNetV2  # the original code, not part of this project
    import onnxruntime

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MobileNetV2(n_class=27)
    # BatchNorm statistics that are not the identity, so a converted copy is checked for real
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    torch.save(model.state_dict(), os.path.join(a.folder, 'mobilenetv2_jester_online.pth.tar'))
    zeros = [torch.zeros([1, c, s, s]) for c, s in BUFFERS]
    frame = torch.rand(1, 3, 224, 224)
    path = os.path.join(a.folder, 'original.onnx')
    names = ['frame'] + [f'buffer{i}' for i in range(len(BUFFERS))]
    with contextlib.redirect_stdout(sys.stderr):  # standard output carries the answers
        torch.onnx.export(model, (frame, *zeros), path, dynamo=False, opset_version=13,
                          input_names=names)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    inputs = [i.name for i in session.get_inputs()]

    frames = np.load(os.path.join(a.folder, 'frames.npy'))
    with torch.no_grad():
        buffers, logits = zeros, []
        for f in frames:
            out, *buffers = model(torch.from_numpy(f), *buffers)
            logits.append(out.numpy())
    np.save(os.path.join(a.folder, 'original_logits.npy'), np.concatenate(logits))

    state = {'eager': zeros, 'onnx': [b.numpy() for b in zeros]}
    eager_frame, onnx_frame = torch.from_numpy(frames[0]), frames[0]

    def eager():
        with torch.no_grad():
            buffers = state['eager']
            for _ in range(a.frames):
                _, *buffers = model(eager_frame, *buffers)
            state['eager'] = buffers

    def onnx():
        buffers = state['onnx']
        for _ in range(a.frames):
            _, *buffers = session.run(None, dict(zip(inputs, [onnx_frame] + buffers)))
        state['onnx'] = buffers

    jobs = {'eager': eager, 'onnx': onnx}
    serve(jobs, torch.__version__, onnxruntime.__version__)


if __name__ == '__main__':
    main()
