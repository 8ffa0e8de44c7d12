import numpy as np
import pytest

# Imported as a module: pytest would collect a bare `test_transform` as a test.
from reader import transforms as T

MEAN0, STD1 = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def coordinate_frames(num, height, width):
    """uint8 [num, H, W, 3]: channel 0 = row, channel 1 = column, channel 2 = frame index."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1)
    frames = np.repeat(frame[None], num, axis=0)
    frames[..., 2] = np.arange(num)[:, None, None]
    return frames.astype(np.uint8)


def pixels(out):
    """Back from mean 0 / std 1 normalisation to integer pixel values, [..., 3, H, W]."""
    return np.rint(out * 255).astype(np.int64)


def test_normalize_constant_frame():
    frames = np.full((2, 4, 5, 3), 128, dtype=np.uint8)
    out = T.normalize(frames, *IMAGENET)
    assert out.dtype == np.float32 and out.shape == (2, 3, 4, 5)
    expected = [(128 / 255 - m) / s for m, s in zip(*IMAGENET)]
    assert np.allclose(expected, [0.0740646, 0.2051821, 0.4264924], atol=1e-6)
    for c in range(3):
        assert np.allclose(out[:, c], expected[c], atol=1e-6)


@pytest.mark.parametrize('shape,short,expected', [
    ((48, 64), 32, (32, 43)), ((64, 48), 32, (43, 32)), ((240, 320), 256, (256, 341)),
    ((48, 64), 48, (48, 64)), ((30, 30), 60, (60, 60))])
def test_resize_short_keeps_aspect(shape, short, expected):
    frames = np.zeros((3,) + shape + (3,), dtype=np.uint8)
    assert T.resize_short(frames, short).shape == (3,) + expected + (3,)


def test_centre_crop_picks_the_exact_centre():
    frames = coordinate_frames(4, 40, 60)
    out = T.test_transform(frames, 40, 32, 1, MEAN0, STD1)
    assert out.shape == (1, 4, 3, 32, 32) and out.dtype == np.float32
    px = pixels(out[0])
    assert np.array_equal(px[:, 0], np.broadcast_to(np.arange(4, 36)[:, None], (4, 32, 32)))
    assert np.array_equal(px[:, 1], np.broadcast_to(np.arange(14, 46)[None, :], (4, 32, 32)))
    assert np.array_equal(px[:, 2, 0, 0], [0, 1, 2, 3])


@pytest.mark.parametrize('height,width,expected', [
    (40, 60, [(4, 0), (4, 14), (4, 28)]),   # landscape: along the width
    (60, 40, [(0, 4), (14, 4), (28, 4)]),   # portrait: along the height
    (40, 40, [(4, 0), (4, 4), (4, 8)])])    # square: along the width
def test_three_crop_positions(height, width, expected):
    frames = coordinate_frames(2, height, width)
    out = T.test_transform(frames, 40, 32, 3, MEAN0, STD1)
    assert out.shape == (3, 2, 3, 32, 32)
    corners = [(pixels(view)[0, 0, 0, 0], pixels(view)[0, 1, 0, 0]) for view in out]
    assert corners == expected


def test_test_transform_resizes_then_crops():
    out = T.test_transform(np.zeros((5, 48, 64, 3), np.uint8), 32, 24, 3, *IMAGENET)
    assert out.shape == (3, 5, 3, 24, 24) and out.dtype == np.float32
    with pytest.raises(ValueError, match='target_size 40 is larger than short_size 32'):
        T.test_transform(np.zeros((1, 48, 64, 3), np.uint8), 32, 40, 1, *IMAGENET)
    with pytest.raises(ValueError, match=r'num_crops must be one of \(1, 3\)'):
        T.test_transform(np.zeros((1, 48, 64, 3), np.uint8), 32, 24, 2, *IMAGENET)


def test_train_transform_shape():
    rng = np.random.default_rng(0)
    out, label = T.train_transform(np.zeros((6, 48, 64, 3), np.uint8), 40, 32,
                                   [1.0, 0.875, 0.75, 0.66], True, *IMAGENET, rng)
    assert label is None  # none given, none returned
    assert out.shape == (6, 3, 32, 32) and out.dtype == np.float32


def expected_boxes(height, width, scales):
    """Every allowed (top, left, crop_h, crop_w), spelled out from the TSM recipe."""
    sides = [int(min(height, width) * s) for s in scales]
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2), (0, 2),
            (1, 1), (1, 3), (3, 1), (3, 3)]
    boxes = set()
    for i, h in enumerate(sides):
        for j, w in enumerate(sides):
            if abs(i - j) <= 1:
                boxes |= {(r * ((height - h) // 4), c * ((width - w) // 4), h, w) for r, c in grid}
    return boxes


def test_crop_boxes_drawn_are_exactly_the_allowed_set():
    scales = [1.0, 0.875, 0.75, 0.66]
    assert T.crop_sizes(40, 60, scales) == [(40, 40), (40, 35), (35, 40), (35, 35), (35, 30),
                                            (30, 35), (30, 30), (30, 26), (26, 30), (26, 26)]
    rng = np.random.default_rng(1)
    drawn = {T.random_crop_box(40, 60, scales, rng) for _ in range(6000)}
    assert drawn == expected_boxes(40, 60, scales)
    # 26x26 crops: steps of 3 rows, 8 columns; a quarter point, the centre, a corner
    assert {(3, 8, 26, 26), (6, 16, 26, 26), (12, 32, 26, 26)} <= drawn


def test_train_crop_is_the_drawn_box():
    """With the crop at the target size no resampling happens, so pixels name the box."""
    frames = coordinate_frames(3, 40, 60)
    for seed in range(20):
        top, left, h, w = T.random_crop_box(40, 60, [0.8], np.random.default_rng(seed))
        out, _ = T.train_transform(frames, 40, 32, [0.8], False, MEAN0, STD1,
                                   np.random.default_rng(seed))
        px = pixels(out)
        assert (h, w) == (32, 32)
        assert (px[0, 0, 0, 0], px[0, 1, 0, 0]) == (top, left)
        assert np.array_equal(px[:, 0], px[:1, 0].repeat(3, 0))  # same box in every frame


def test_train_same_crop_and_flip_for_all_frames():
    frames = coordinate_frames(8, 48, 64)
    scales = [1.0, 0.875, 0.75, 0.66]
    flips = set()
    for seed in range(40):
        out, _ = T.train_transform(frames, 48, 32, scales, True, MEAN0, STD1,
                                   np.random.default_rng(seed))
        # rows and columns (channels 0, 1) are identical in every frame: same crop and flip
        assert np.array_equal(out[:, :2], np.broadcast_to(out[:1, :2], out[:, :2].shape))
        assert np.array_equal(pixels(out[:, 2, 5, 7]), np.arange(8))
        flips.add(bool(out[0, 1, 0, 0] > out[0, 1, 0, -1]))  # columns run backwards
    assert flips == {True, False}


def test_flip_mirrors_and_is_off_when_disabled():
    frames = coordinate_frames(2, 40, 40)
    plain = T.normalize(frames, MEAN0, STD1)
    outcomes = []
    for seed in range(40):
        args = (frames, 40, 40, [1.0])
        flipped, _ = T.train_transform(*args, True, MEAN0, STD1, np.random.default_rng(seed))
        kept, _ = T.train_transform(*args, False, MEAN0, STD1, np.random.default_rng(seed))
        assert np.array_equal(kept, plain)
        outcomes.append(np.array_equal(flipped, plain[..., ::-1]))
        assert outcomes[-1] or np.array_equal(flipped, plain)
    assert 10 < sum(outcomes) < 30


def test_flip_with_a_label_map_swaps_exactly_the_mapped_labels():
    frames = coordinate_frames(2, 40, 40)
    plain = T.normalize(frames, MEAN0, STD1)
    pairs = [[1, 4], [2, 3]]
    partner = {1: 4, 4: 1, 2: 3, 3: 2}
    flipped_any = set()
    for label in range(6):
        for seed in range(12):
            args = (frames, 40, 40, [1.0], True, MEAN0, STD1, np.random.default_rng(seed))
            clip, got = T.train_transform(*args, label=label, flip_label_map=pairs)
            flipped = np.array_equal(clip, plain[..., ::-1])
            assert flipped or np.array_equal(clip, plain)
            assert got == (partner.get(label, label) if flipped else label), (label, seed)
            flipped_any.add(flipped)
            # the map changes no pixel and no draw; without flipping, no label changes
            same, unmapped = T.train_transform(*args[:-1], np.random.default_rng(seed),
                                               label=label)
            assert np.array_equal(same, clip) and unmapped == label
            _, kept = T.train_transform(*args[:4], False, MEAN0, STD1,
                                        np.random.default_rng(seed), label=label,
                                        flip_label_map=pairs)
            assert kept == label
    assert flipped_any == {True, False}


def test_mirror_pairs_are_the_names_a_flip_exchanges():
    ssv2 = ['Pulling something from left to right', 'Pulling something from right to left',
            'Pushing something from left to right', 'Moving something up',
            'Moving something down', 'Turning the camera left while filming something',
            'Turning the camera right while filming something',
            'Pushing something from right to left']
    assert T.mirror_pairs(ssv2) == [(0, 1), (2, 7), (5, 6)]
    demo = ['move_left', 'move_right', 'rotate_cw', 'rotate_ccw', 'grow', 'shrink']
    assert T.mirror_pairs(demo) == [(0, 1), (2, 3)]
    jester = ['Swiping Left', 'Swiping Right', 'Turning Hand Clockwise',
              'Turning Hand Counterclockwise', 'Sliding Two Fingers Left', 'Thumb Up']
    assert T.mirror_pairs(jester) == [(0, 1), (2, 3)]
    assert T.mirror_pairs(['left', 'Right turn', 'right hand']) == []
