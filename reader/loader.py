"""make_loader(cfg, mode): list file -> VideoDataset -> batches from worker processes.

The workers of a paddle.io.DataLoader (3.3.1) outlive a run killed with SIGKILL (measured:
still alive after 90 s, about 440 MB each); the loader returned here has the kernel kill
its workers when the process that started them dies.
"""
import ctypes
import os
import signal
import sys

import numpy as np
import paddle

from .dataset import VideoDataset
from .listfile import read_list


class EpochBatchSampler:
    """Batches of (index, epoch_seed) keys for VideoDataset.

    The epoch seed travels with every key because worker processes hold their own copy of the
    dataset: it is how an item's random draws depend on (seed, epoch, index) only, not on the
    worker or the number of workers. With `seed` None each epoch gets fresh OS entropy.
    Call `set_epoch(e)` before epoch e to replay it (e.g. when resuming); otherwise the epoch
    counter advances at every pass.
    """

    def __init__(self, size, batch_size, shuffle, drop_last, seed=None):
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        if self.drop_last:
            return self.size // self.batch_size
        return -(-self.size // self.batch_size)

    def __iter__(self):
        entropy = None if self.seed is None else [self.seed, self.epoch]
        epoch_seed = int(np.random.default_rng(entropy).integers(2 ** 63))
        self.epoch += 1
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng([epoch_seed, self.size]).permutation(self.size)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield [(int(i), epoch_seed) for i in order[start:start + self.batch_size]]


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
    """paddle.io.DataLoader whose workers die with the process that iterates it."""

    def __init__(self, dataset, batch_sampler, num_workers):
        self.die_with_parent = _DieWithParent()
        super().__init__(dataset, batch_sampler=batch_sampler, num_workers=num_workers,
                         worker_init_fn=self.die_with_parent)

    def __iter__(self):
        self.die_with_parent.parent = os.getpid()
        return super().__iter__()


def make_loader(cfg, mode, seed=None):
    """paddle.io.DataLoader over cfg[MODE]['filelist'] with DATA.num_workers workers.

    Shuffles and drops the last partial batch only in 'train'. `seed` makes the training
    order and augmentation reproducible (see EpochBatchSampler).
    """
    section = cfg[mode.upper()]
    train = mode == 'train'
    entries = read_list(section['filelist'], cfg['DATA']['data_root'],
                        require_label=mode != 'infer', num_classes=cfg['MODEL']['num_classes'])
    if not entries:
        raise ValueError(f'{mode.upper()}.filelist {section["filelist"]} lists no videos')
    dataset = VideoDataset(entries, cfg, mode, seed=seed)
    sampler = EpochBatchSampler(len(dataset), section['batch_size'], shuffle=train,
                                drop_last=train, seed=seed)
    if len(sampler) == 0:
        raise ValueError(f'{mode.upper()}.filelist has {len(dataset)} videos, fewer than '
                         f'{mode.upper()}.batch_size {section["batch_size"]}: no full batch')
    return _Loader(dataset, sampler, cfg['DATA']['num_workers'])
