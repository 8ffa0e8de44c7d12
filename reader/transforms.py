"""Frame transforms for a clip: resize, crop, flip, normalise (numpy + OpenCV).

Input frames are uint8 [T, H, W, 3] in RGB: reader.decode converts OpenCV's BGR frames to RGB
there, so nothing here swaps channels. Every frame of a clip gets the same crop and flip, since
the network compares frames across time and a per-frame jitter would look like motion.

A horizontal flip turns "from left to right" into "from right to left": the label of a
flipped clip goes through DATA.flip_label_map, pairs of classes a mirror exchanges (as
mmaction2's Flip takes a flip_label_map), so flipping can stay on where the labels allow it.
`mirror_pairs` finds the class names that differ only by such words.

Resizing is bilinear with one of two libraries (DATA.resize): OpenCV's INTER_LINEAR reads the
2x2 pixels around each target point, so when it shrinks it skips pixels and aliases; PIL's
BILINEAR widens its filter with the scale factor and averages every source pixel. The original
TSM code and PaddleVideo resize with PIL, so weights trained there see PIL's pixels.
"""
import re

import cv2
import numpy as np
from PIL import Image

NUM_CROPS = (1, 3)  # spatial views per test clip: the centre, or start, centre and end
RESIZE_LIBRARIES = ('cv2', 'pil')
# words a mirror image exchanges, in class names (lower case)
MIRROR_WORDS = {'left': 'right', 'right': 'left', 'clockwise': 'counterclockwise',
                'counterclockwise': 'clockwise', 'anticlockwise': 'clockwise',
                'cw': 'ccw', 'ccw': 'cw', 'leftward': 'rightward', 'rightward': 'leftward',
                'leftwards': 'rightwards', 'rightwards': 'leftwards'}
_WORD = re.compile(r'[a-z]+')


def resize_frames(frames, width, height, library):
    """Frames uint8 [T, H, W, 3] resized to width x height, bilinear with `library`."""
    if library == 'pil':
        return np.stack([np.asarray(Image.fromarray(f).resize(
            (width, height), Image.Resampling.BILINEAR)) for f in frames])
    if library != 'cv2':
        raise ValueError(f'library must be one of {RESIZE_LIBRARIES}, got {library!r}')
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
                     for f in frames])


def resize_short(frames, short_size, library='cv2'):
    """Frames resized so that the short side is `short_size`, keeping the aspect ratio (the
    long side rounded to the nearest pixel)."""
    height, width = frames.shape[1:3]
    if min(height, width) == short_size:
        return frames
    if height <= width:
        return resize_frames(frames, int(round(width * short_size / height)), short_size,
                             library)
    return resize_frames(frames, short_size, int(round(height * short_size / width)), library)


def normalize(frames, mean, std):
    """uint8 RGB [T, H, W, 3] -> float32 [T, 3, H, W] as (x / 255 - mean) / std."""
    std = np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std)).astype(np.float32)
    shift = (np.asarray(mean, dtype=np.float64) / std).astype(np.float32)
    out = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)
    out *= scale[:, None, None]  # one multiply and one subtract: this runs on every pixel
    out -= shift[:, None, None]
    return out


def crop_sizes(height, width, scales, max_distort=1):
    """Allowed (crop_h, crop_w): sides min(H, W) * scale, the two scale indices at most
    `max_distort` apart, so the aspect ratio is jittered but never extreme (TSM's recipe)."""
    sides = [int(min(height, width) * s) for s in scales]
    return [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides)
            if abs(i - j) <= max_distort]


def crop_offsets(height, width, crop_h, crop_w):
    """The 13 fixed (top, left) crop positions: 4 corners, centre, the middles of the four
    sides and the four quarter points, on a grid of quarter steps of the free space."""
    h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2),  # corners, centre
            (2, 0), (2, 4), (4, 2), (0, 2),  # centre-left, centre-right, bottom, top
            (1, 1), (1, 3), (3, 1), (3, 3)]  # quarter points
    return [(r * h_step, c * w_step) for r, c in grid]


def random_crop_box(height, width, scales, rng):
    """(top, left, crop_h, crop_w): a size from `crop_sizes`, then a position from
    `crop_offsets`, each drawn uniformly with `rng`."""
    sizes = crop_sizes(height, width, scales)
    crop_h, crop_w = sizes[rng.integers(len(sizes))]
    offsets = crop_offsets(height, width, crop_h, crop_w)
    top, left = offsets[rng.integers(len(offsets))]
    return top, left, crop_h, crop_w


def train_transform(frames, short_size, target_size, scales, flip, mean, std, rng,
                    library='cv2', label=None, flip_label_map=()):
    """Training augmentation of one clip -> (float32 [T, 3, target_size, target_size], its
    label).

    Short side to short_size, a multi-scale crop (size from `crop_sizes`, position from
    `crop_offsets`) resized to target_size, a horizontal flip with probability 0.5 when
    `flip`, then `normalize`. All draws come from `rng` (a numpy Generator), once per clip.
    Both resizes use `library` (RESIZE_LIBRARIES). A flipped clip's `label` is exchanged
    with its partner in `flip_label_map` ([[a, b], ...]); other labels are kept.
    """
    frames = resize_short(frames, short_size, library)
    top, left, crop_h, crop_w = random_crop_box(*frames.shape[1:3], scales, rng)
    crop = frames[:, top:top + crop_h, left:left + crop_w]
    crop = resize_frames(crop, target_size, target_size, library)
    if flip and rng.random() < 0.5:
        crop = crop[:, :, ::-1]
        label = flipped_label(label, flip_label_map)
    return normalize(crop, mean, std), label


def flipped_label(label, flip_label_map):
    """The label of a mirrored clip of class `label`: its partner in a pair of
    `flip_label_map`, else itself."""
    for a, b in flip_label_map:
        if label == a:
            return b
        if label == b:
            return a
    return label


def mirror_pairs(names):
    """[(i, j)], i < j, of the class names that a mirror exchanges: equal once their
    MIRROR_WORDS are swapped (`move_left` and `move_right`, "Pushing something from left to
    right" and "... from right to left"), case and separators ignored."""
    def words(name, mirrored=False):
        found = _WORD.findall(name.lower())
        return tuple(MIRROR_WORDS.get(w, w) if mirrored else w for w in found)
    index = {}
    for i, name in enumerate(names):
        index.setdefault(words(name), i)
    pairs = set()
    for i, name in enumerate(names):
        j = index.get(words(name, mirrored=True))
        if j is not None and j != i:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def eval_crop_offsets(height, width, target_size, num_crops):
    """(top, left) of the centre crop, or of the start/centre/end crops along the long side."""
    top, left = (height - target_size) // 2, (width - target_size) // 2
    if num_crops == 1:
        return [(top, left)]
    if num_crops not in NUM_CROPS:
        raise ValueError(f'num_crops must be one of {NUM_CROPS}, got {num_crops}')
    if width >= height:
        return [(top, 0), (top, left), (top, width - target_size)]
    return [(0, left), (top, left), (height - target_size, left)]


def test_transform(frames, short_size, target_size, num_crops, mean, std, library='cv2'):
    """Evaluation views of one clip -> float32 [num_crops, T, 3, target_size, target_size]."""
    if target_size > short_size:
        raise ValueError(f'target_size {target_size} is larger than short_size {short_size}: '
                         f'a test crop must fit inside the resized frame')
    frames = resize_short(frames, short_size, library)
    height, width = frames.shape[1:3]
    crops = [frames[:, top:top + target_size, left:left + target_size]
             for top, left in eval_crop_offsets(height, width, target_size, num_crops)]
    return np.stack([normalize(c, mean, std) for c in crops])


test_transform.__test__ = False  # its name starts with "test_": keep pytest from collecting it
