"""One list entry -> one item `(clip, label, n_failures)` for paddle.io.DataLoader.

clip is float32 [V, T, 3, H, W] with V views: 1 in train and valid, clips x crops in test and
infer (clip-major: the crops of clip 0 first), as the section's protocol (reader/protocols.py)
or TEST.num_clips / num_crops for our own pipeline say. Only what can change is tried again:
a file that cannot be opened (missing, not a video) is not; in training a clip that cannot be
decoded is, with a new random sample each time, up to DATA.max_retries attempts; the other
modes sample deterministically, so the same read would fail the same way. Each failure is
logged with the path; if every attempt fails the item is a zero clip with label -1, so the
loop can drop and count it. Another video is never substituted: that would hide broken files
and skew the class balance.
"""
import logging

import numpy as np
import paddle

from .decode import DecodeError, open_video
from .protocols import protocol_views, reading
from .sampling import sample_views, source_views
from .transforms import test_transform, train_transform

FAILED_LABEL = -1  # the item could not be decoded; consumers drop it from loss and metrics
NO_LABEL = -2      # an inference list line without a label

logger = logging.getLogger(__name__)


def clip_shape(cfg, mode):
    """[V, T, 3, H, W] of one item."""
    how = reading(cfg, mode)
    return (how.num_clips * how.num_crops, cfg['MODEL']['seg_num'], 3, how.size, how.size)


def frame_template(cfg):
    """DATA.frame_template; '' (detected) in a config built by hand without the key."""
    return cfg['DATA'].get('frame_template', '')


def read_clip(path, cfg, mode, rng=None, frames=None):
    """float32 [V, T, 3, H, W] for the video at `path`; DecodeError if it cannot be read.

    `rng` (a numpy Generator) drives the frame sampling and the augmentation in 'train'.
    A dict `frames` receives 'decoded' and 'in_file': how many frames the clip was sampled
    from, of how many the file holds.
    """
    with open_video(path, frame_template=frame_template(cfg)) as video:
        clip, _ = _clip_of(video, cfg, mode, reading(cfg, mode), rng)
        if frames is not None:
            frames.update(decoded=video.num_frames, in_file=_in_file(video))
        return clip


def _in_file(video):
    return max(getattr(video, 'frames_in_file', 0), video.num_frames)


def _sampled_frames(video, cfg, mode, how, rng=None):
    """The frames of the views of one clip of the open `video`, uint8 [V * T, H, W, 3].

    When decoding finds fewer frames than the file holds (its last packets do not decode),
    `video.num_frames` drops to the count that does, and the views are sampled again within
    it, once; any other failure would recur on the same frames. A video of which less than
    DATA.min_decoded_fraction of its frames decodes is refused: a clip of what is left
    would not stand for the video.
    """
    num_frames = video.num_frames
    _check_decoded(video, cfg)
    try:
        return video.read(_sample(video.num_frames, cfg, mode, how, rng))
    except DecodeError:
        if not 0 < video.num_frames < num_frames:
            raise
    _check_decoded(video, cfg)
    return video.read(_sample(video.num_frames, cfg, mode, how, rng))


def _check_decoded(video, cfg):
    least, in_file = cfg['DATA']['min_decoded_fraction'], _in_file(video)
    if video.num_frames < least * in_file:
        raise DecodeError(video.path, f'only {video.num_frames} of the {in_file} frames it '
                                      f'holds decode ({video.num_frames / in_file:.0%}), below '
                                      f'DATA.min_decoded_fraction {least}: refused rather '
                                      f'than judged from a part of it')


def _sample(num_frames, cfg, mode, how, rng):
    if how.protocol is not None:
        return source_views(num_frames, cfg['MODEL']['seg_num'], how.protocol.sampling)
    return sample_views(num_frames, cfg['MODEL']['seg_num'], mode, how.num_clips, rng,
                        cfg['DATA']['dense_sample'])


def _clip_of(video, cfg, mode, how, rng=None, label=None):
    """(float32 [V, T, 3, H, W] from the open `video`, read as `how` (a protocols.Reading)
    says, as read_clip; `label`, mapped by DATA.flip_label_map when the training clip was
    flipped)."""
    data, seg_num = cfg['DATA'], cfg['MODEL']['seg_num']
    frames = _sampled_frames(video, cfg, mode, how, rng)
    if mode == 'train':
        clip, label = train_transform(frames, data['short_size'], data['target_size'],
                                      data['scales'], data['flip'], data['mean'], data['std'],
                                      rng, data['resize'], label,
                                      data.get('flip_label_map', ()))
        return clip[None], label
    if how.protocol is not None:
        return protocol_views(frames, seg_num, how.protocol), label
    views = [test_transform(frames[k * seg_num:(k + 1) * seg_num], data['short_size'],
                            data['target_size'], how.num_crops, data['mean'], data['std'],
                            data['resize'])
             for k in range(how.num_clips)]
    return np.concatenate(views), label


def load_clip(path, cfg, mode='test', frames=None):
    """The views of one video for prediction, float32 [V, T, 3, H, W]; DecodeError propagates;
    `frames` as for read_clip."""
    if mode == 'train':
        raise ValueError("load_clip is for evaluation modes, not 'train'")
    return read_clip(path, cfg, mode, frames=frames)


class VideoDataset(paddle.io.Dataset):
    """Items of a list file read with `read_list`, for `mode` in train/valid/test/infer.

    A key is an index, or (index, epoch_seed) as given by `reader.loader.EpochBatchSampler`:
    in training the random draws of item i come from numpy Generator([epoch_seed, i]), so
    they do not depend on which worker process reads the item. With an integer key the
    epoch seed is `seed` (None: fresh OS entropy, not reproducible).
    """

    def __init__(self, entries, cfg, mode, seed=None):
        super().__init__()
        self.entries = list(entries)
        self.cfg = cfg
        self.mode = mode
        self.seed = seed
        self.reading = reading(cfg, mode)  # resolved once, for every item
        self.max_retries = cfg['DATA']['max_retries']
        if self.max_retries < 1:
            raise ValueError(f'DATA.max_retries must be >= 1, got {self.max_retries}')

    def __len__(self):
        return len(self.entries)

    def _rng(self, index, epoch_seed):
        if self.mode != 'train':
            return None
        if epoch_seed is None:
            return np.random.default_rng()
        return np.random.default_rng([epoch_seed, index])

    def __getitem__(self, key):
        index, epoch_seed = key if isinstance(key, tuple) else (key, self.seed)
        path, label = self.entries[index]
        label = NO_LABEL if label is None else label
        try:
            video = open_video(path, frame_template=frame_template(self.cfg))
        except DecodeError as e:  # opening it again would fail again
            logger.warning('cannot open %s (not retried): %s', path, e)
            return self._dropped(path, 1)
        # a new attempt draws a new sample in training; elsewhere it would read the same frames
        attempts = self.max_retries if self.mode == 'train' else 1
        rng = self._rng(index, epoch_seed)
        with video:
            for attempt in range(1, attempts + 1):
                try:
                    clip, seen = _clip_of(video, self.cfg, self.mode, self.reading, rng,
                                          label)
                    return clip, np.int64(seen), np.int64(attempt - 1)
                except DecodeError as e:
                    logger.warning('cannot decode %s (attempt %d of %d): %s',
                                   path, attempt, attempts, e)
        return self._dropped(path, attempts)

    def _dropped(self, path, failures):
        """The item of a video that could not be read: a zero clip with FAILED_LABEL."""
        logger.error('dropped %s after %d failed attempt%s', path, failures,
                     's' if failures > 1 else '')
        clip = np.zeros(clip_shape(self.cfg, self.mode), dtype=np.float32)
        return clip, np.int64(FAILED_LABEL), np.int64(failures)


class TooManyFailures(RuntimeError):
    """More of a list's videos failed to decode than DATA.max_failure_ratio allows."""


def check_failures(dropped, seen, max_failure_ratio):
    """Raise TooManyFailures when dropped / seen items exceeds max_failure_ratio.

    Meant for whole epochs or evaluations: early in an epoch one broken video is a large ratio.
    """
    ratio = dropped / seen if seen else 0.0
    if ratio > max_failure_ratio:
        raise TooManyFailures(
            f'{dropped} of {seen} videos could not be decoded (ratio {ratio:.3f} > '
            f'DATA.max_failure_ratio {max_failure_ratio}); the warnings above name the files: '
            f'fix or remove them from the list, or raise DATA.max_failure_ratio')
