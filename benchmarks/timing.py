"""What every benchmark shares: the median time of a call, the description of the machine its
figures come from, its fp32 matmul peak, and the FLOPs a model spends on an input."""
import os
import platform
import statistics
import time

import numpy as np

from models.workarounds.mkl import cpu_info


def median_seconds(fn, repeats, warmup=1):
    """Median seconds of fn() over `repeats` calls after `warmup` untimed ones (first calls
    pay for allocation, the page cache and library set-up); fn must block until its result
    is computed (return numpy)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paused_seconds(fn, pause):
    """Seconds of one fn() after `pause` seconds of sleep, in which the threads of what ran
    before (another runtime's, which spin after their work) go idle."""
    time.sleep(pause)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine():
    """The CPU, cores, Python, Paddle (when imported), bf16 support, MKL's code path and the
    load average at the time of the run."""
    import paddle  # here: a decoding benchmark describes its machine without building models
    from models.deploy.predictor import bf16_supported
    return {'cpu': cpu_info()['model'] or platform.processor() or platform.machine(),
            'cores': os.cpu_count(), 'paddle': paddle.__version__,
            'python': platform.python_version(), 'bf16': bf16_supported(),
            'mkl_code_path': os.environ.get('MKL_DEBUG_CPU_TYPE', ''),
            'load_average': [round(v, 2) for v in os.getloadavg()]}


def machine_line(**versions):
    """machine() in one line, with the `versions` of the libraries a benchmark compares."""
    m = machine()
    extra = ''.join(f', {name} {version}' for name, version in versions.items())
    return (f"{m['cpu']}, {m['cores']} cores, Paddle {m['paddle']}, bf16 "
            f"{'yes' if m['bf16'] else 'no'}{extra}, load {m['load_average'][0]}")


def matmul_peak(n, repeats):
    """Best fp32 GFLOP/s of an n x n matmul (2 n^3 FLOPs)."""
    import paddle  # here, as in machine()
    a, b = paddle.randn([n, n]), paddle.randn([n, n])
    paddle.matmul(a, b).numpy()
    best = min(median_seconds(lambda: paddle.matmul(a, b).numpy(), 1, 0) for _ in range(max(repeats, 3)))
    return 2 * n ** 3 / best / 1e9


def clip_flops(model, clip_shape):
    """FLOPs (2 x multiply-adds) of the convolutions and linear layers for one clip, read from
    the output shapes of one forward pass; BatchNorm, ReLU and adds are not counted."""
    import paddle
    import paddle.nn as nn
    macs = []

    def count(layer, inputs, output):
        per_output = int(np.prod(layer.weight.shape[1:] if isinstance(layer, nn.Conv2D)
                                 else layer.weight.shape[:1]))
        macs.append(int(np.prod(output.shape)) * per_output)

    hooks = [layer.register_forward_post_hook(count) for layer in model.sublayers()
             if isinstance(layer, (nn.Conv2D, nn.Linear))]
    with paddle.no_grad():
        model(paddle.zeros([1] + list(clip_shape)))
    for hook in hooks:
        hook.remove()
    return 2 * sum(macs)
