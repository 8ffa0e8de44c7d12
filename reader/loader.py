"""make_loader(cfg, mode): list file -> VideoDataset -> batches from worker processes."""
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
    return paddle.io.DataLoader(dataset, batch_sampler=sampler,
                                num_workers=cfg['DATA']['num_workers'])
