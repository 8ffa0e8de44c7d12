"""make_loader(cfg, mode): list file -> VideoDataset -> batches from worker processes."""
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


def make_loader(cfg, mode, seed=None, rank=0, world_size=1):
    """paddle.io.DataLoader over cfg[MODE]['filelist'] with DATA.num_workers workers, giving
    process `rank` of `world_size` its share (see EpochBatchSampler).

    Shuffles and drops the last partial batch only in 'train'. `seed` makes the training
    order and augmentation reproducible (see EpochBatchSampler).
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
    return paddle.io.DataLoader(dataset, batch_sampler=sampler,
                                num_workers=cfg['DATA']['num_workers'])
