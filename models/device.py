"""Where the model runs: the GPU when Paddle has CUDA, else the CPU with every usable core."""
import logging
import os

import paddle

from .workarounds import mkl
from .workarounds.memory import keep_freed_memory

log = logging.getLogger(__name__)


def cuda_available():
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def select_device(use_gpu):
    """The GPU when asked for and Paddle has CUDA, else the CPU (all usable cores) with a
    one-line notice. 'gpu' is the GPU paddle.distributed.launch gave this process
    (ParallelEnv().dev_id), so each rank of a multi-GPU run takes its own."""
    if use_gpu and cuda_available():
        return paddle.set_device('gpu')
    if use_gpu:
        log.info('this Paddle build has no usable CUDA device: running on the CPU')
    use_cpu(usable_cores())
    return paddle.set_device('cpu')


def usable_cores():
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_cpu_threads(threads):
    """CPU math threads of dynamic-mode kernels. Paddle's default is one thread: a ResNet-18
    training step on 2 cores takes 2.33 s with it and 1.99 s with two."""
    core = paddle.base.core if hasattr(paddle, 'base') else paddle.fluid.core
    core.set_num_threads(threads)


def use_cpu(threads):
    """The CPU as the scripts run on it: `threads` math threads, freed memory kept, and MKL's
    code path for this CPU's instructions (models/workarounds/mkl.py), logged where it is set."""
    set_cpu_threads(threads)
    keep_freed_memory()
    path = mkl.use_best_code_path()
    if path is not None:
        log.info('MKL code path: MKL_DEBUG_CPU_TYPE=%s (%s)', path,
                 mkl.PATH_NAMES.get(path, 'set by the user'))
