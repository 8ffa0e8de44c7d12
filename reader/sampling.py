"""Which frames of a video make a clip: pure functions of (num_frames, seg_num, mode, rng).

Segment-based sampling (TSN/TSM) splits [0, num_frames) into seg_num segments, segment k being
frames [k * num_frames // seg_num, (k + 1) * num_frames // seg_num), and takes one frame from
each: a random one in training, the centre one otherwise. Integer arithmetic keeps every index
inside its segment (float centres can land one frame past a short segment's end).

Dense sampling takes seg_num frames at a fixed stride (64 // seg_num by default, a 64-frame
window as in the original TSM dense sampling) from a random window in training, a centred one
otherwise.

`source_views` gives the test frames of the published protocols (reader/protocols.py) as their
sources compute them, float formulas and short-video cases included, so a published checkpoint
sees the frames that gave its figure; the functions above stay our own rule.
"""
import numpy as np

MODES = ('train', 'valid', 'test', 'infer')
DENSE_WINDOW = 64  # frames spanned by a dense clip when the video is long enough


def segment_bounds(num_frames, seg_num):
    """(starts, ends) of the seg_num segments; segments are empty only if num_frames < seg_num."""
    k = np.arange(seg_num + 1, dtype=np.int64)
    bounds = k * num_frames // seg_num
    return bounds[:-1], bounds[1:]


def _view_offset(length, num_clips, clip_index):
    """Offset of view `clip_index` of `num_clips` inside `length` slots, at (k + 0.5) / K."""
    return (2 * clip_index + 1) * length // (2 * num_clips)


def _segment_indices(num_frames, seg_num, train, rng, num_clips, clip_index):
    starts, ends = segment_bounds(num_frames, seg_num)
    # Empty segments exist only when num_frames < seg_num; length 1 then repeats frame `start`,
    # and consecutive starts step by at most 1, so every frame is still used.
    lengths = np.maximum(ends - starts, 1)
    if train:
        return starts + rng.integers(0, lengths)
    return starts + _view_offset(lengths, num_clips, clip_index)


def _dense_indices(num_frames, seg_num, train, rng, num_clips, clip_index, stride):
    stride = stride or max(DENSE_WINDOW // seg_num, 1)
    # A video shorter than the window gets the largest stride that still fits; one shorter
    # than seg_num falls back to evenly repeated frames (no wrap-around, order is kept).
    stride = min(stride, num_frames // seg_num)
    if stride == 0:
        return np.arange(seg_num, dtype=np.int64) * num_frames // seg_num
    free = num_frames - stride * (seg_num - 1)  # number of possible start frames
    start = rng.integers(0, free) if train else _view_offset(free, num_clips, clip_index)
    return start + stride * np.arange(seg_num, dtype=np.int64)


def sample_indices(num_frames, seg_num, mode, rng=None, dense=False, num_clips=1, clip_index=0,
                   stride=None):
    """Frame indices (int64, length seg_num, non-decreasing, all in [0, num_frames)).

    mode 'train' draws from `rng` (a numpy Generator); the other modes are deterministic and
    take view `clip_index` of `num_clips` views placed at (k + 0.5) / num_clips of each segment
    (or of the range of dense window starts). `stride` applies to dense sampling only.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if num_frames < 1 or seg_num < 1:
        raise ValueError(f'need num_frames >= 1 and seg_num >= 1, got {num_frames}, {seg_num}')
    if not 0 <= clip_index < num_clips:
        raise ValueError(f'clip_index must be in [0, {num_clips}), got {clip_index}')
    train = mode == 'train'
    if train and rng is None:
        raise ValueError("mode 'train' needs rng, a numpy Generator")
    if dense:
        idx = _dense_indices(num_frames, seg_num, train, rng, num_clips, clip_index, stride)
    else:
        idx = _segment_indices(num_frames, seg_num, train, rng, num_clips, clip_index)
    return np.asarray(idx, dtype=np.int64)


def sample_views(num_frames, seg_num, mode, num_clips=1, rng=None, dense=False):
    """All num_clips views of one video, concatenated: int64 [num_clips * seg_num]."""
    return np.concatenate([
        sample_indices(num_frames, seg_num, mode, rng, dense, num_clips, k)
        for k in range(num_clips)])


# Test-time frame sampling of the published protocols, each as its source writes it. Indices
# are 0-based frames: the sources add 1 for their 1-based img_00001.jpg names.
SOURCE_SAMPLINGS = ('tick', 'tick_or_first', 'pptsm', 'dense_10', 'twice')
DENSE_CLIPS = 10  # dense test clips, at np.linspace starts


def _tick(num_frames, seg_num):
    """int(tick / 2 + tick * k), tick = num_frames / seg_num: the original TSM's
    _get_test_indices, which has no case for short videos (frames repeat)."""
    tick = num_frames / seg_num
    return (tick / 2.0 + tick * np.arange(seg_num)).astype(np.int64)


def _twice(num_frames, seg_num):
    """The original TSM's twice_sample: the 'tick' clip, then a second one at int(tick * k),
    half a tick earlier (the start of each segment)."""
    tick = num_frames / seg_num
    starts = (tick * np.arange(seg_num)).astype(np.int64)
    return np.concatenate([_tick(num_frames, seg_num), starts])


def _tick_or_first(num_frames, seg_num):
    """PaddleVideo's Sampler for TSM (select_left): the same formula when num_frames >
    seg_num, else frame 0 for every segment (its offsets are zeros)."""
    if num_frames > seg_num:
        return _tick(num_frames, seg_num)
    return np.zeros(seg_num, dtype=np.int64)


def _pptsm(num_frames, seg_num):
    """PaddleVideo's Sampler for PP-TSM (valid_mode): (d - 1) // 2 + k * d with d =
    int(num_frames / seg_num), the left one of the two middle frames of an even segment;
    k % num_frames when d is 0 (its video path; its frame path names missing files)."""
    d = int(num_frames / seg_num)
    k = np.arange(seg_num, dtype=np.int64)
    return (d - 1) // 2 + k * d if d >= 1 else k % num_frames


def _dense_10(num_frames, seg_num):
    """The dense test of the original TSM and of PP-TSM (the same code): 10 clips starting
    at np.linspace(0, num_frames - 64, 10) truncated, seg_num frames 64 // seg_num apart,
    wrapping past the end."""
    sample_pos = max(1, 1 + num_frames - DENSE_WINDOW)
    t_stride = DENSE_WINDOW // seg_num
    starts = np.linspace(0, sample_pos - 1, num=DENSE_CLIPS, dtype=int)
    return np.concatenate([(np.arange(seg_num) * t_stride + start) % num_frames
                           for start in starts]).astype(np.int64)


def source_views(num_frames, seg_num, sampling):
    """The frames of every test clip of a published protocol, clip-major: int64
    [clips * seg_num] (10 clips for 'dense_10', 2 for 'twice', else 1)."""
    formulas = {'tick': _tick, 'tick_or_first': _tick_or_first, 'pptsm': _pptsm,
                'dense_10': _dense_10, 'twice': _twice}
    if sampling not in formulas:
        raise ValueError(f'sampling must be one of {SOURCE_SAMPLINGS}, got {sampling!r}')
    if num_frames < 1 or seg_num < 1:
        raise ValueError(f'need num_frames >= 1 and seg_num >= 1, got {num_frames}, {seg_num}')
    return formulas[sampling](num_frames, seg_num)
