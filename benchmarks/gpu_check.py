"""What only a GPU machine can show: mixed-precision training, TensorRT, GPU latency.

    python benchmarks/gpu_check.py [--out output/gpu_check.json] [--steps 8]

On one GPU, with TSM-R50 at 8x224x224 and random weights and clips (speed and agreement do
not depend on them):
- training: --steps steps of batch 4 from the same weights and clips in fp32, fp16 AMP and
  bf16 AMP (models.amp.Precision, what TRAIN.amp runs); the AMP losses must stay within
  LOSS_TOLERANCE (relative) of the fp32 losses at every step;
- export: the inference form exported and run by Paddle Inference on the GPU, plain and
  through TensorRT (fp32 and fp16), each checked against the dynamic model's logits;
- latency: median ms per clip at batch 1 of the dynamic model, the exported fp32 model, and
  TensorRT fp32 and fp16.
Writes the figures and the pass/fail of each check to --out; exits 1 when a check fails,
2 when this machine has no GPU that Paddle can use. benchmarks/gpu_check.sh runs the test
suite on the GPU build first, then this.
"""
import argparse
import json
import os
import platform
import sys
import tempfile

import numpy as np
import numpy.random  # noqa: F401  before paddle (Paddle 2.6's zlib symbols, see configs/cli.py)
import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.timing import median_seconds  # noqa: E402
from models.deploy.static import clip_spec, export_static, relative_error  # noqa: E402
from models import TSM  # noqa: E402
from models.amp import Precision  # noqa: E402
from models.device import cuda_available  # noqa: E402
from models.deploy.predictor import Predictor, tensorrt_available  # noqa: E402

MODEL = {'num_classes': 400, 'seg_num': 8, 'depth': 50}
SIZE = 224
LOSS_TOLERANCE = 0.05  # relative, per step: fp16/bf16 rounding over a few SGD steps
LOGIT_TOLERANCE = {'fp32': 1e-3, 'fp16': 5e-2}  # relative to the largest logit


def losses(mode, steps, clips, labels):
    """Training losses of `steps` steps with TRAIN.amp `mode` from seed-0 weights."""
    paddle.seed(0)
    model = TSM(dropout=0.0, **MODEL)
    model.train()
    optimizer = paddle.optimizer.Momentum(0.001, momentum=0.9, parameters=model.parameters())
    precision = Precision(mode)
    out = []
    for _ in range(steps):
        with precision.autocast():
            logits = model(clips)
        loss = paddle.nn.functional.cross_entropy(logits.astype('float32'), labels)
        precision.backward(loss)
        precision.step(optimizer)
        optimizer.clear_grad()
        out.append(float(loss))
    return out, precision.mode


def ms(fn):
    """Median milliseconds of fn() (which returns numpy, so the GPU work is finished)."""
    return round(median_seconds(fn, 20, warmup=5) * 1e3, 2)


def training_check(steps):
    rng = np.random.default_rng(0)
    clips = paddle.to_tensor(rng.standard_normal((4, 8, 3, SIZE, SIZE), dtype=np.float32))
    labels = paddle.to_tensor(rng.integers(0, 400, (4, 1)))
    fp32, _ = losses('off', steps, clips, labels)
    result = {'fp32_losses': fp32}
    for mode in ('fp16', 'bf16'):
        got, used = losses(mode, steps, clips, labels)
        worst = max(abs(a - b) / abs(b) for a, b in zip(got, fp32))
        result[mode] = {'losses': got, 'ran_as': used, 'max_relative_difference': worst,
                        'pass': used == mode and worst <= LOSS_TOLERANCE}
    return result


def inference_check(workdir):
    paddle.seed(0)
    model = TSM(**MODEL)
    model.eval()
    clips = np.random.default_rng(1).standard_normal((1, 8, 3, SIZE, SIZE), dtype=np.float32)
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips)).numpy()
    prefix = os.path.join(workdir, 'TSM')
    export_static(model, clip_spec(MODEL, {'target_size': SIZE}), prefix)

    @paddle.no_grad()
    def dynamic():
        return model(paddle.to_tensor(clips)).numpy()
    result = {'latency_ms': {'dynamic': ms(dynamic)}}
    engines = {'exported_fp32': Predictor(prefix, use_gpu=True)}
    if tensorrt_available():
        for precision in ('fp32', 'fp16'):
            engines[f'tensorrt_{precision}'] = Predictor(prefix, use_gpu=True,
                                                         precision=precision, tensorrt=True)
    else:
        result['tensorrt'] = 'this Paddle build has no TensorRT'
    for name, predictor in engines.items():
        error = relative_error(predictor(clips).numpy(), want)
        tolerance = LOGIT_TOLERANCE['fp16' if name.endswith('fp16') else 'fp32']
        result[name] = {'relative_error': error, 'pass': error <= tolerance,
                        'on_gpu': predictor.on_gpu}
        result['latency_ms'][name] = ms(lambda p=predictor: p(clips).numpy())
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description='GPU self-check of TSM (one GPU)')
    parser.add_argument('--out', default='output/gpu_check.json')
    parser.add_argument('--steps', type=int, default=8, help='training steps per precision')
    args = parser.parse_args(argv)
    if not cuda_available():
        print('gpu_check: this Paddle build sees no CUDA GPU (install paddlepaddle-gpu, '
              'bash run.sh setup does where nvidia-smi answers)', file=sys.stderr)
        return 2
    paddle.set_device('gpu')
    result = {'paddle': paddle.__version__, 'python': platform.python_version(),
              'gpu': paddle.device.cuda.get_device_name(), 'model': dict(MODEL, size=SIZE)}
    result['training'] = training_check(args.steps)
    with tempfile.TemporaryDirectory() as workdir:
        result['inference'] = inference_check(workdir)
    checks = [v['pass'] for part in (result['training'], result['inference'])
              for v in part.values() if isinstance(v, dict) and 'pass' in v]
    result['all_pass'] = all(checks)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0 if result['all_pass'] else 1


if __name__ == '__main__':
    sys.exit(main())
