"""Online TSM-MobileNetV2 frame by frame against the original online demo's model, in one run.

    python benchmarks/bench_online_mv2.py --tsm_repo PATH [--torch_python PYTHON] \
        [--threads 2 --frames 10 --rounds 15 --out bench_online_mv2.json]

PATH is a checkout of mit-han-lab/temporal-shift-module (not part of this project); PYTHON an
interpreter with torch and onnxruntime (default: this one). The reference is the demo's own
model (online_demo/mobilenet_v2_tsm.py, 27 classes) in a child process
(benchmarks/torch_online_side.py): PyTorch eager, and exported to ONNX and run by ONNX Runtime
as the demo deploys it. Ours is the same network with the same weights (converted from the
file the child saves; the logits are compared first): the dynamic OnlineTSM step, the exported
step on Paddle Inference (fp32, and bf16 where the CPU has it), on ONNX Runtime and, where it
is installed, on OpenVINO (fp32, bf16). Every case
streams --frames frames of 224x224 at batch 1 from the buffers its previous job left, with the
same number of threads; the cases alternate job by job, --rounds times, each after a pause,
and the medians are reported per frame, with frames per second, the fraction of this CPU's
fp32 matmul peak and the ratios against the original model. Also timed: an offline clip of 8
frames, MobileNetV2 beside ResNet-50, on Paddle Inference fp32.
"""
import argparse
import json
import os
import sys
import tempfile
from importlib.util import find_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cli  # noqa: E402,F401  first: it loads numpy.random before paddle (2.6)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.jobs import Child  # noqa: E402
from benchmarks.timing import (clip_flops, machine, machine_line, matmul_peak,  # noqa: E402
                               paused_seconds)
from models import TSM  # noqa: E402
from models.device import use_cpu  # noqa: E402
from models.deploy.engines import step_runner  # noqa: E402
from models.deploy.onnx_export import OnnxStep, export_onnx  # noqa: E402
from models.deploy.predictor import Predictor, bf16_supported, model_files  # noqa: E402
from models.deploy.static import clip_spec, export_static, relative_error  # noqa: E402
from models.deploy.step import StepPredictor, check_step, export_online_step  # noqa: E402
from models.online import OnlineTSM  # noqa: E402
from models.weights import load_for_inference  # noqa: E402

SIZE = 224
PAUSE = 0.5  # seconds before each job: the side that ran last lets its idle threads stop spinning
REFERENCE = 'original, ONNX Runtime'


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tsm_repo', required=True, help='a checkout of the original TSM code')
    p.add_argument('--torch_python', default=sys.executable,
                   help='an interpreter with torch and onnxruntime')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--frames', type=int, default=10, help='frames streamed per timed job')
    p.add_argument('--rounds', type=int, default=15)
    p.add_argument('--out', default='bench_online_mv2.json')
    return p


def start_original(args, folder):
    """The child process streaming the demo's model (benchmarks/torch_online_side.py)."""
    return Child([args.torch_python, os.path.join(ROOT, 'benchmarks', 'torch_online_side.py'),
                  '--tsm_repo', args.tsm_repo, '--folder', folder,
                  '--frames', str(args.frames), '--threads', str(args.threads)], PAUSE)


def streamer(runner, frame, shapes, count):
    """fn() streaming `count` frames through runner.step (a StepPredictor or OnnxStep) from the
    buffers the previous call left."""
    state = {'buffers': [np.zeros(s, np.float32) for s in shapes]}

    def run():
        buffers = state['buffers']
        for _ in range(count):
            _, buffers = runner.step(frame, buffers)
        state['buffers'] = buffers
    return run


def our_cases(args, folder, frames):
    """{name: fn()} of our side, after checking that our stream of `frames` computes the
    original's logits, and the exported steps the dynamic one."""
    model = TSM(num_classes=27, seg_num=8, backbone='mobilenet_v2', shift_mode='online')
    load_for_inference(model, os.path.join(folder, 'mobilenetv2_jester_online.pth.tar'))
    model.eval()
    engine = OnlineTSM(model, SIZE)
    with paddle.no_grad():
        ours = np.concatenate([engine.step(paddle.to_tensor(f)).numpy() for f in frames])
    error = relative_error(ours, np.load(os.path.join(folder, 'original_logits.npy')))
    if error > 1e-4:
        raise RuntimeError(f'our stream differs from the original by {error:.2e} (relative)')
    step = os.path.join(folder, 'TSM_online_step')
    export_online_step(model, step, SIZE)
    onnx = export_onnx(*model_files(step), step + '.onnx', 13)
    runners = {'ours, Paddle Inference fp32': StepPredictor(step, threads=args.threads),
               'ours, ONNX Runtime': OnnxStep(onnx, threads=args.threads)}
    if bf16_supported():
        runners['ours, Paddle Inference bf16'] = StepPredictor(step, threads=args.threads,
                                                                precision='bf16')
    if find_spec('openvino'):
        for precision in ('fp32', 'bf16') if bf16_supported() else ('fp32',):
            runners[f'ours, OpenVINO {precision}'] = step_runner('openvino', onnx,
                                                                 args.threads, precision)
    for name, runner in runners.items():
        if 'bf16' not in name:  # bf16 is near, not equal
            check_step(name, runner, model, SIZE)
    frame = frames[0]
    cases = {name: streamer(r, frame, engine.shapes, args.frames) for name, r in runners.items()}
    engine.reset()
    tensor = paddle.to_tensor(frame)

    @paddle.no_grad()
    def dynamic():
        for _ in range(args.frames):
            engine.step(tensor).numpy()
    cases['ours, dynamic graph'] = dynamic
    return cases, error


def clip_cases(args, folder):
    """{name: fn()} timing one 8-frame clip through Paddle Inference fp32: MobileNetV2 and
    ResNet-50 TSM (the offline, bidirectional models)."""
    cases = {}
    clip = np.random.default_rng(2).standard_normal([1, 8, 3, SIZE, SIZE], dtype=np.float32)
    for name, kwargs in (('MobileNetV2', {'backbone': 'mobilenet_v2'}), ('ResNet-50', {})):
        model = TSM(num_classes=400, seg_num=8, **kwargs)
        prefix = os.path.join(folder, name)
        export_static(model, clip_spec({'seg_num': 8}, {'target_size': SIZE}), prefix)
        predictor = Predictor(prefix, threads=args.threads)
        cases[f'clip of 8, {name}'] = lambda p=predictor: p(clip).numpy()
    return cases


def main():
    args = build_parser().parse_args()
    use_cpu(args.threads)
    paddle.set_device('cpu')
    # first, while no other runtime's threads exist: ONNX Runtime's spin after their runs
    peak = matmul_peak(2048, 3) * 1e9
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        frames = np.random.default_rng(1).standard_normal([6, 1, 3, SIZE, SIZE],
                                                          dtype=np.float32)
        np.save(os.path.join(folder, 'frames.npy'), frames)
        original = start_original(args, folder)
        versions = dict(zip(('torch', 'onnxruntime'), original.ready))
        ours, error = our_cases(args, folder, frames)
        cases = dict(ours)
        cases.update({f'original, {label}': (lambda j=job: original.run(j))
                      for job, label in (('eager', 'PyTorch eager'), ('onnx', 'ONNX Runtime'))})
        clips = clip_cases(args, folder)
        for _ in range(args.rounds):
            for name, fn in cases.items():
                if name.startswith('original'):  # the child pauses before each job
                    times.setdefault(name, []).append(fn() / args.frames)
                else:
                    times.setdefault(name, []).append(paused_seconds(fn, PAUSE) / args.frames)
            for name, fn in clips.items():
                times.setdefault(name, []).append(paused_seconds(fn, PAUSE))
        original.close()
    medians = {name: float(np.median(v)) for name, v in times.items()}
    step_model = TSM(num_classes=27, seg_num=1, backbone='mobilenet_v2', shift_mode='online')
    flops = clip_flops(step_model, [1, 3, SIZE, SIZE])
    rows = {name: {'ms': 1e3 * m, 'fps': 1 / m, 'fraction_of_peak': flops / m / peak}
            for name, m in medians.items() if not name.startswith('clip')}
    reference, eager = medians[REFERENCE], medians['original, PyTorch eager']
    default = medians['ours, Paddle Inference fp32']
    result = {
        'machine': dict(machine(), threads=args.threads, **versions),
        'frame_flops': flops, 'matmul_peak_flops': peak, 'per_frame': rows,
        'clip_ms': {n: 1e3 * m for n, m in medians.items() if n.startswith('clip')},
        'ours_over_original_onnxruntime': {n: medians[n] / reference for n in ours},
        'original_eager_over_ours_paddle_inference': eager / default,
        'stream_logits_relative_difference': error, 'all_seconds': times,
    }
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'machine: {machine_line(**versions)}, {args.threads} threads')
    print(f'per frame, 224x224, batch 1, median of {args.rounds} rounds of {args.frames} '
          f'frames ({flops / 1e9:.2f} GFLOP a frame):')
    for name, row in rows.items():
        print(f'  {name:<30} {row["ms"]:7.2f} ms  {row["fps"]:7.1f} fps  '
              f'{100 * row["fraction_of_peak"]:5.1f}% of the fp32 matmul peak')
    for name in ours:
        print(f'{name} / {REFERENCE}: {medians[name] / reference:.2f}')
    print(f'original, PyTorch eager / ours, Paddle Inference fp32: {eager / default:.1f}')
    for name, ms in result['clip_ms'].items():
        print(f'{name}, Paddle Inference fp32: {ms:.1f} ms')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
