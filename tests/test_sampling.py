import numpy as np
import pytest

from reader.sampling import sample_indices, sample_views, segment_bounds

FRAME_COUNTS = range(1, 301)
SEG_NUMS = (1, 3, 8, 16)


def check_valid(idx, num_frames, seg_num):
    assert idx.dtype == np.int64 and idx.shape == (seg_num,)
    assert idx.min() >= 0 and idx.max() < num_frames
    assert np.all(np.diff(idx) >= 0)


def bounds(num_frames, seg_num):
    """Segment k is [k * N // S, (k + 1) * N // S): written out here, not taken from the module."""
    return ([k * num_frames // seg_num for k in range(seg_num)],
            [(k + 1) * num_frames // seg_num for k in range(seg_num)])


@pytest.mark.parametrize('seg_num', SEG_NUMS)
def test_every_length_valid_and_one_per_segment(seg_num):
    rng = np.random.default_rng(0)
    for n in FRAME_COUNTS:
        lo, hi = bounds(n, seg_num)
        assert [list(b) for b in segment_bounds(n, seg_num)] == [lo, hi]
        for mode in ('train', 'test', 'valid', 'infer'):
            for _ in range(3 if mode == 'train' else 1):
                idx = sample_indices(n, seg_num, mode, rng)
                check_valid(idx, n, seg_num)
                if n >= seg_num:
                    assert all(lo[k] <= idx[k] < hi[k] for k in range(seg_num)), (n, mode, idx)
                else:  # short video: frames repeat and every frame is used
                    assert set(idx.tolist()) == set(range(n))


@pytest.mark.parametrize('seg_num', SEG_NUMS)
def test_test_mode_is_the_segment_centre(seg_num):
    for n in FRAME_COUNTS:
        idx = sample_indices(n, seg_num, 'test')
        assert np.array_equal(idx, sample_indices(n, seg_num, 'test'))
        assert np.array_equal(idx, sample_indices(n, seg_num, 'valid'))
        lo, hi = bounds(n, seg_num)
        expected = [lo[k] + max(hi[k] - lo[k], 1) // 2 for k in range(seg_num)]
        assert idx.tolist() == expected


def test_exact_values():
    assert sample_indices(80, 8, 'test').tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert sample_indices(300, 3, 'test').tolist() == [50, 150, 250]
    assert sample_indices(10, 4, 'test').tolist() == [1, 3, 6, 8]  # segments [0,2) [2,5) [5,7) [7,10)
    assert sample_indices(1, 8, 'test').tolist() == [0] * 8
    assert sample_indices(3, 8, 'test').tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert sample_indices(3, 8, 'train', np.random.default_rng(1)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    # 3 clips of 80 frames / 8 segments: offsets 10 * (k + 0.5) / 3 = 1, 5, 8 inside each segment
    assert sample_indices(80, 8, 'test', num_clips=3, clip_index=0).tolist()[:2] == [1, 11]
    assert sample_indices(80, 8, 'test', num_clips=3, clip_index=1).tolist()[:2] == [5, 15]
    assert sample_indices(80, 8, 'test', num_clips=3, clip_index=2).tolist()[:2] == [8, 18]


@pytest.mark.parametrize('n,seg_num', [(80, 8), (37, 3), (16, 16), (33, 16), (7, 1)])
def test_train_covers_every_frame_of_each_segment(n, seg_num):
    rng = np.random.default_rng(2)
    draws = np.stack([sample_indices(n, seg_num, 'train', rng) for _ in range(2000)])
    lo, hi = bounds(n, seg_num)
    for k in range(seg_num):
        assert set(draws[:, k].tolist()) == set(range(lo[k], hi[k]))


def test_train_is_reproducible_from_the_rng():
    a = sample_indices(200, 8, 'train', np.random.default_rng(5))
    b = sample_indices(200, 8, 'train', np.random.default_rng(5))
    assert np.array_equal(a, b)


@pytest.mark.parametrize('num_clips', (2, 3, 5, 10))
@pytest.mark.parametrize('seg_num', SEG_NUMS)
def test_test_clips_ordered_and_distinct(num_clips, seg_num):
    for n in FRAME_COUNTS:
        clips = sample_views(n, seg_num, 'test', num_clips).reshape(num_clips, seg_num)
        for clip in clips:
            check_valid(clip, n, seg_num)
        assert np.all(np.diff(clips, axis=0) >= 0)  # clip k never starts after clip k + 1
        if n >= seg_num * num_clips:  # every segment holds num_clips distinct frames
            assert np.all(np.diff(clips, axis=0) > 0), (n, clips)


@pytest.mark.parametrize('seg_num', SEG_NUMS)
def test_dense_every_length(seg_num):
    rng = np.random.default_rng(3)
    stride = max(64 // seg_num, 1)
    for n in FRAME_COUNTS:
        for mode in ('train', 'test'):
            idx = sample_indices(n, seg_num, mode, rng, dense=True)
            check_valid(idx, n, seg_num)
            if n >= stride * seg_num:
                assert np.all(np.diff(idx) == stride)
            if n < seg_num:
                assert set(idx.tolist()) == set(range(n))


def test_dense_exact_values():
    # stride 8; 100 frames leave starts 0..43, the centred one is 22
    assert sample_indices(100, 8, 'test', dense=True).tolist() == list(range(22, 79, 8))
    # 40 frames are shorter than the 57-frame span, so the stride shrinks to 40 // 8 = 5
    assert sample_indices(40, 8, 'test', dense=True).tolist() == list(range(2, 38, 5))
    assert sample_indices(5, 8, 'test', dense=True).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    starts = [sample_indices(100, 8, 'test', dense=True, num_clips=4, clip_index=k)[0]
              for k in range(4)]
    assert starts == [5, 16, 27, 38]  # (k + 0.5) / 4 of the 44 possible starts


def test_dense_train_start_covers_all_positions():
    rng = np.random.default_rng(4)
    starts = {int(sample_indices(100, 8, 'train', rng, dense=True)[0]) for _ in range(3000)}
    assert starts == set(range(44))


def test_bad_arguments():
    with pytest.raises(ValueError, match='mode'):
        sample_indices(10, 3, 'val')
    with pytest.raises(ValueError, match='rng'):
        sample_indices(10, 3, 'train')
    with pytest.raises(ValueError, match='num_frames'):
        sample_indices(0, 3, 'test')
    with pytest.raises(ValueError, match='clip_index'):
        sample_indices(10, 3, 'test', num_clips=2, clip_index=2)
