"""Data-parallel training with Paddle's collective engine, on one device or many.

`python -m paddle.distributed.launch` starts one process per device (NCCL between GPUs, gloo
between CPU processes) and tells each its rank in the environment; a process started
without it is a world of one, and every function here is then a no-op that costs nothing.
Rank 0 is the one voice: it writes files and logs; `gather` and `all_sum` give every rank
the same view of what the others computed.
"""
import contextlib
import glob
import os
import re

import numpy as np
import paddle
import paddle.distributed as dist


def world_size():
    """Processes in the job, from the launcher's environment (1 without it)."""
    return int(os.environ.get('PADDLE_TRAINERS_NUM', '1'))


def rank():
    return int(os.environ.get('PADDLE_TRAINER_ID', '0'))


def is_main():
    return rank() == 0


def init():
    """Join the job's process group (once, before any collective); nothing for one process."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_parallel_env()


def sync_batchnorm(model):
    """`model` with every BatchNorm computing its statistics over all ranks' clips (the same
    parameters, so weights load and save as before). GPUs only: Paddle has no CPU kernel."""
    return paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def data_parallel(model):
    """The model as the training loop uses it: paddle.DataParallel over the job's processes
    (it broadcasts rank 0's weights, then averages gradients across ranks in backward)."""
    return paddle.DataParallel(model) if world_size() > 1 else model


def unwrapped(model):
    """The TSM inside a DataParallel wrapper (what is saved and evaluated)."""
    return getattr(model, '_layers', model)


def no_sync(model, skip):
    """A context in which backward does not average gradients across ranks (the first
    micro-batches of an accumulated step), when `skip` and the model is data-parallel."""
    if skip and isinstance(model, paddle.DataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def all_sum(values):
    """The element-wise sum of the float list `values` over all ranks."""
    if world_size() == 1:
        return list(values)
    total = paddle.to_tensor(np.asarray(values, np.float64))
    dist.all_reduce(total)
    return total.numpy().tolist()


def gather(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank (any picklable object)."""
    if world_size() == 1:
        return [obj]
    out = []
    dist.all_gather_object(out, obj)
    return out


def shared_seed(seed):
    """`seed`, or where it is None a fresh random one that every rank shares: the ranks must
    agree on each epoch's order to take disjoint shares of it."""
    if seed is not None or world_size() == 1:
        return seed
    return gather(int(np.random.SeedSequence().entropy % 2 ** 63))[0]


# The last line of a Python traceback, or one of our error log lines.
_ERROR_LINE = re.compile(r'^(\w+(\.\w+)*(Error|Exception|Failures|Interrupt)\b.*| ?\S* ERROR .*)$')


def peer_errors():
    """[(log file, its last error line)] of the other processes of this machine, from the
    launcher's log folder: when a rank fails, the others stop in a collective with a
    communication error, and the launcher may print only one of theirs; this is what to add
    to it so the cause is in the main output."""
    folder = os.environ.get('PADDLE_LOG_DIR')
    own = os.environ.get('PADDLE_LOCAL_RANK', os.environ.get('PADDLE_RANK_IN_NODE'))
    found = []
    for path in sorted(glob.glob(os.path.join(folder, 'workerlog.*')) if folder else []):
        if path.endswith(f'.{own}'):
            continue
        try:
            with open(path, errors='replace') as f:
                lines = [line.rstrip() for line in f if _ERROR_LINE.match(line.rstrip())]
        except OSError:
            continue
        if lines:
            found.append((path, lines[-1]))
    return found
