"""What every benchmark shares: the median time of a call, and the description of the
machine its figures come from."""
import os
import platform
import statistics
import time

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
