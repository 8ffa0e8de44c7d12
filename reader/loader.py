"""make_loader(cfg, mode): list file -> VideoDataset -> batches from worker processes.

Two things paddle.io.DataLoader (3.3.1) does not do, measured with a script that iterates it:
- an exception raised for one item in a worker (a ValueError from a transform, say) reaches
  the loop as SystemError "Blocking queue is killed because the data reader raises an
  exception": Paddle re-raises the worker's exception in its own reader thread, where it is
  only printed. With num_workers=0 the loop waits forever instead (the reader thread dies
  and nothing wakes the loop).
- its workers outlive a run killed with SIGKILL (measured: still alive after 90 s).
The loader returned here re-raises the item's own exception in the loop, reads in the loop
itself when num_workers is 0, stops its workers when the loop ends any way, and has the
kernel kill its workers when the process that started them dies. It also forks its workers
with the garbage collector's objects frozen (see _Loader.__iter__): without that, a worker
could hang on a copy of an earlier loader's queue.
"""
import ctypes
import gc
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import traceback

import numpy as np
import paddle

from .dataset import VideoDataset
from .listfile import ListFileError, read_list


class EpochBatchSampler:
    """Batches of (index, epoch_seed) keys for VideoDataset, for process `rank` of
    `world_size` (data-parallel training runs one process per device).

    The epoch seed travels with every key because worker processes hold their own copy of the
    dataset: it is how an item's random draws depend on (seed, epoch, index) only, not on the
    worker, the number of workers or the number of processes. With `seed` None each epoch
    gets fresh OS entropy (every rank must then be given the same seed to agree on the order).
    Call `set_epoch(e)` before epoch e to replay it (e.g. when resuming); otherwise the epoch
    counter advances at every pass.

    With drop_last (training) step s of the epoch is the global batch of world_size *
    batch_size items s*G .. (s+1)*G of the epoch's order, rank r taking its r-th slice: the
    ranks' shares are disjoint and together the items of one process with the global batch.
    Without (evaluation) rank r takes items r, r + world_size, ... in order: every item once,
    none repeated to even the shares out.
    """

    def __init__(self, size, batch_size, shuffle, drop_last, seed=None, rank=0, world_size=1):
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if not 0 <= rank < world_size:
            raise ValueError(f'rank must be in [0, {world_size}), got {rank}')
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        if self.drop_last:
            return self.size // (self.batch_size * self.world_size)
        return -(-len(range(self.rank, self.size, self.world_size)) // self.batch_size)

    def _share(self, order):
        if not self.drop_last:
            return order[self.rank::self.world_size]
        step = self.batch_size * self.world_size
        start = self.rank * self.batch_size
        return np.concatenate([order[s + start:s + start + self.batch_size]
                               for s in range(0, len(self) * step, step)] or [order[:0]])

    def __iter__(self):
        entropy = None if self.seed is None else [self.seed, self.epoch]
        epoch_seed = int(np.random.default_rng(entropy).integers(2 ** 63))
        self.epoch += 1
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng([epoch_seed, self.size]).permutation(self.size)
        share = self._share(order)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield [(int(i), epoch_seed) for i in share[start:start + self.batch_size]]


class WorkerTraceback(Exception):
    """Where an exception re-raised by the loader was raised, in a worker process (as text)."""


class _Reporting(paddle.io.Dataset):
    """`dataset` whose items' exceptions are also put on `failures`, for the main process."""

    def __init__(self, dataset, failures):
        super().__init__()
        self.dataset, self.failures = dataset, failures

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except Exception as error:
            where = f'in loader worker {os.getpid()}:\n{traceback.format_exc()}'
            self.failures.put((_portable(error), where))
            raise  # Paddle then ends the iteration in the main process


def _portable(error):
    """`error` if it pickles (a Queue pickles it in a thread that would only print the
    failure), else a RuntimeError with its type and message."""
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return RuntimeError(f'{type(error).__name__}: {error}')


class _DieWithParent:
    """worker_init_fn: the kernel kills the worker when the process iterating the loader
    dies (Linux prctl PR_SET_PDEATHSIG; elsewhere nothing). `parent` is set by the loader
    before it starts the workers, which get a copy of it."""

    PR_SET_PDEATHSIG = 1

    def __init__(self):
        self.parent = None

    def __call__(self, worker_id):
        if not sys.platform.startswith('linux'):
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(self.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')
        if os.getppid() != self.parent:  # it died before the prctl, so no signal will come
            os.kill(os.getpid(), signal.SIGKILL)


class _Loader(paddle.io.DataLoader):
    """paddle.io.DataLoader whose loop gets the exception an item raised, never a hang."""

    # seconds to wait for a worker's exception once Paddle has ended the iteration: the
    # worker sends it before raising, so it is on its way already
    FAILURE_WAIT = 5.0

    def __init__(self, dataset, batch_sampler, num_workers):
        self.items = dataset
        self.failures = multiprocessing.Queue() if num_workers else None
        self.die_with_parent = _DieWithParent()
        super().__init__(_Reporting(dataset, self.failures) if num_workers else dataset,
                         batch_sampler=batch_sampler, num_workers=num_workers,
                         worker_init_fn=self.die_with_parent)

    def __iter__(self):
        if self.num_workers == 0:
            return self._in_this_process()
        self.die_with_parent.parent = os.getpid()
        # The workers are forked with a copy of every object here, including the garbage of
        # earlier loaders (a loop ended by an exception leaves Paddle's reader threads
        # waiting). A worker whose garbage collector frees such a copy waits forever in
        # pthread_cond_destroy for waiters it does not have (4 of 16 runs of test_loader.py
        # and test_dataset.py hung so, none of 20 with the freeze); frozen objects are
        # never collected by the workers.
        gc.freeze()
        try:
            batches = super().__iter__()
        finally:
            gc.unfreeze()
        return self._from_workers(batches)

    def _in_this_process(self):
        """Batches read in the loop itself (Paddle's reader thread would hang it on an error)."""
        for keys in self.batch_sampler:
            items = [self.items[key] for key in keys]
            yield [paddle.to_tensor(np.stack(field)) for field in zip(*items)]

    def _from_workers(self, batches):
        """The batches of Paddle's iterator; the exception of a failing item, not Paddle's."""
        try:
            yield from batches
        except Exception:
            failure = self._worker_failure()
            if failure is None:
                raise
            error, where = failure
            raise error from WorkerTraceback(where)
        finally:
            # the workers of a loop left by an exception or a break would otherwise wait for
            # the iterator's garbage collection; a finished iteration is already shut down
            shutdown = getattr(batches, '_try_shutdown_all', None)
            if shutdown is not None:
                shutdown()

    def _worker_failure(self):
        """(exception, traceback text) sent by the first failing item, or None; the queue
        is left empty, so a later epoch does not see this one's failures."""
        try:
            failure = self.failures.get(timeout=self.FAILURE_WAIT)
        except queue.Empty:
            return None
        while True:
            try:
                self.failures.get_nowait()
            except queue.Empty:
                return failure


def make_loader(cfg, mode, seed=None, rank=0, world_size=1):
    """paddle.io.DataLoader over cfg[MODE]['filelist'] with DATA.num_workers workers, giving
    process `rank` of `world_size` its share (see EpochBatchSampler).

    Shuffles and drops the last partial batch only in 'train'. `seed` makes the training
    order and augmentation reproducible (see EpochBatchSampler). An exception raised for an
    item ends the loop with that exception (see the module doc).
    """
    section = cfg[mode.upper()]
    train = mode == 'train'
    entries = read_list(section['filelist'], cfg['DATA']['data_root'],
                        require_label=mode != 'infer', num_classes=cfg['MODEL']['num_classes'])
    if not entries:
        raise ListFileError(f'{mode.upper()}.filelist {section["filelist"]} lists no videos')
    dataset = VideoDataset(entries, cfg, mode, seed=seed)
    sampler = EpochBatchSampler(len(dataset), section['batch_size'], shuffle=train,
                                drop_last=train, seed=seed, rank=rank, world_size=world_size)
    if train and len(sampler) == 0:
        raise ListFileError(f'{mode.upper()}.filelist has {len(dataset)} videos, fewer than '
                            f'the global batch {section["batch_size"]} x {world_size} '
                            f'processes: no full batch')
    return _Loader(dataset, sampler, cfg['DATA']['num_workers'])
