import copy
import logging

import numpy as np
import pytest

import reader.dataset
from reader import (FAILED_LABEL, ListFileError, VideoDataset, check_failures, load_clip,
                    make_loader)
from reader import transforms as T
from reader.decode import DecodeError, open_video
from reader.sampling import sample_indices, sample_views
from tests.videos import (hide_vp8_frame, read_index, write_corrupt_video, write_damaged_video,
                          write_index_video)

SEG_NUM = 4
FRAMES = {'a.mp4': 40, 'b.mp4': 24, 'c.mp4': 33, 'd.mp4': 20}

CFG = {
    'MODEL': {'num_classes': 5, 'seg_num': SEG_NUM},
    'DATA': {'data_root': '', 'short_size': 40, 'target_size': 32,
             'scales': [1.0, 0.875, 0.75, 0.66], 'flip': True,
             'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0], 'dense_sample': False,
             'resize': 'cv2', 'num_workers': 0, 'max_retries': 2, 'max_failure_ratio': 0.05,
             'min_decoded_fraction': 0.5},
    'TRAIN': {'filelist': 'train.list', 'batch_size': 2},
    'VALID': {'filelist': 'train.list', 'batch_size': 3},
    'TEST': {'filelist': 'train.list', 'batch_size': 3, 'num_clips': 2, 'num_crops': 3,
             'protocol': 'ours'},
    'INFER': {'filelist': 'train.list', 'batch_size': 1, 'protocol': 'ours'},
}


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """Folder with index-encoded 64x48 videos, a broken file and a list of them all."""
    root = tmp_path_factory.mktemp('videos')
    for name, count in FRAMES.items():
        codec = 'h264' if name == 'c.mp4' else 'mp4v'  # H.264 with B-frames for one of them
        write_index_video(str(root / name), count, width=64, height=48, codec=codec)
    write_corrupt_video(str(root / 'broken.mp4'), 'random')
    lines = [f'{name} {i}' for i, name in enumerate(FRAMES)]
    (root / 'train.list').write_text('\n'.join(lines) + '\n')
    return root


def make_cfg(root, **changes):
    cfg = copy.deepcopy(CFG)
    for section in ('TRAIN', 'VALID', 'TEST', 'INFER'):
        cfg[section]['filelist'] = str(root / 'train.list')
    for key, value in changes.items():
        section, name = key.split('__')
        cfg[section][name] = value
    return cfg


def frame_indices(clip):
    """Index encoded in every frame of a [V, T, 3, H, W] clip normalised with mean 0, std 1."""
    frames = np.rint(clip * 255).clip(0, 255).astype(np.uint8).transpose(0, 1, 3, 4, 2)
    return [[read_index(f) for f in view] for view in frames]


def uncropped(frames, short_size, target_size, num_crops, mean, std, library):
    """Stand-in for test_transform that keeps whole frames, so their indices stay readable."""
    return T.normalize(frames, mean, std)[None]


def test_test_clip_holds_exactly_the_sampled_frames(videos, monkeypatch):
    monkeypatch.setattr(reader.dataset, 'test_transform', uncropped)
    cfg = make_cfg(videos)
    dataset = VideoDataset([(str(videos / 'a.mp4'), 3)], cfg, 'test')
    clip, label, failures = dataset[0]
    assert clip.shape == (2, SEG_NUM, 3, 48, 64) and (label, failures) == (3, 0)
    # 40 frames in 4 segments of 10; clips at 1/4 and 3/4 of each segment
    assert frame_indices(clip) == [[2, 12, 22, 32], [7, 17, 27, 37]]
    for name, count in FRAMES.items():
        clip = VideoDataset([(str(videos / name), 0)], cfg, 'valid')[0][0]
        assert frame_indices(clip) == [sample_indices(count, SEG_NUM, 'valid').tolist()]


def test_test_views_are_the_transform_of_the_sampled_frames(videos):
    cfg = make_cfg(videos)
    clip, _, _ = VideoDataset([(str(videos / 'c.mp4'), 1)], cfg, 'test')[0]
    assert clip.shape == (6, SEG_NUM, 3, 32, 32) and clip.dtype == np.float32
    with open_video(str(videos / 'c.mp4')) as video:
        views = [T.test_transform(video.read(sample_indices(33, SEG_NUM, 'test', None, False,
                                                            2, k)), 40, 32, 3, [0.0] * 3,
                                  [1.0] * 3) for k in range(2)]
    assert np.array_equal(clip, np.concatenate(views))


def test_train_frames_one_per_segment_and_reproducible(videos, monkeypatch):
    monkeypatch.setattr(reader.dataset, 'train_transform',
                        lambda frames, *args: (T.normalize(frames, [0.0] * 3, [1.0] * 3),
                                               args[-2]))
    cfg = make_cfg(videos)
    dataset = VideoDataset([(str(videos / 'a.mp4'), 3)], cfg, 'train', seed=7)
    drawn = [frame_indices(dataset[(0, epoch)][0])[0] for epoch in range(30)]
    for indices in drawn:
        assert [i // 10 for i in indices] == [0, 1, 2, 3]  # one frame inside each segment
    assert len({tuple(i) for i in drawn}) > 20
    assert frame_indices(dataset[(0, 4)][0])[0] == drawn[4]
    assert frame_indices(dataset[0][0]) == frame_indices(dataset[0][0])  # int key: seed 7


@pytest.mark.parametrize('mode,views', [('train', 1), ('test', 6)])
def test_a_file_that_cannot_be_opened_is_tried_once_logged_and_marked(videos, monkeypatch,
                                                                      caplog, mode, views):
    cfg = make_cfg(videos, DATA__max_retries=3)
    broken = str(videos / 'broken.mp4')
    missing = str(videos / 'missing.mp4')
    opened = []

    def counting_open(path, **kwargs):
        opened.append(path)
        return open_video(path, **kwargs)

    monkeypatch.setattr(reader.dataset, 'open_video', counting_open)
    dataset = VideoDataset([(str(videos / 'b.mp4'), 1), (broken, 2), (missing, 4)], cfg, mode,
                           seed=0)
    for index, path in ((1, broken), (2, missing)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger='reader.dataset'):
            clip, label, failures = dataset[index]
        assert (label, failures) == (FAILED_LABEL, 1) and opened[-1:] == [path]
        assert clip.shape == (views, SEG_NUM, 3, 32, 32) and not clip.any()
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and path in warnings[0]
        assert 'dropped' in caplog.text
    assert len(opened) == 2
    assert dataset[0][1:] == (1, 0)  # the good video is untouched


class UnreadableVideo:
    """Opens, but every read fails; counts the reads."""

    def __init__(self, path):
        self.path, self.num_frames, self.reads = path, 40, 0

    def read(self, indices):
        self.reads += 1
        raise DecodeError(self.path, f'frame {max(indices)} is damaged')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.mark.parametrize('mode,attempts', [('train', 3), ('valid', 1), ('test', 1), ('infer', 1)])
def test_a_failing_read_is_retried_only_in_training(videos, monkeypatch, caplog, mode,
                                                    attempts):
    cfg = make_cfg(videos, DATA__max_retries=3)
    video = UnreadableVideo(str(videos / 'a.mp4'))
    monkeypatch.setattr(reader.dataset, 'open_video', lambda path, **kwargs: video)
    with caplog.at_level(logging.WARNING, logger='reader.dataset'):
        clip, label, failures = VideoDataset([(video.path, 3)], cfg, mode, seed=0)[0]
    assert (label, failures) == (FAILED_LABEL, attempts) and video.reads == attempts
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == attempts and all('frame' in w and 'damaged' in w for w in warnings)


def test_a_video_whose_last_frames_do_not_decode_is_sampled_again_within_the_rest(
        videos, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(reader.dataset, 'test_transform', uncropped)
    source = write_index_video(str(tmp_path / 'source.webm'), 30, codec='vp8')
    path = write_damaged_video(str(tmp_path / 'hidden.webm'), source, [-2, -1], hide_vp8_frame)
    cfg = make_cfg(videos)
    assert sample_views(30, SEG_NUM, 'test', 2).max() >= 28  # beyond the 28 that decode
    with caplog.at_level(logging.WARNING):
        clip, label, failures = VideoDataset([(path, 2)], cfg, 'test')[0]
    assert (label, failures) == (2, 0)
    assert frame_indices(clip) == sample_views(28, SEG_NUM, 'test', 2).reshape(2, -1).tolist()
    assert [r.name for r in caplog.records] == ['reader.decode']  # 28 of 30 decode, once


def test_make_loader_batches_with_two_workers(videos):
    cfg = make_cfg(videos, DATA__num_workers=2)
    loader = make_loader(cfg, 'train', seed=1)
    assert len(loader) == 2  # 4 videos, batch 2, last partial batch dropped
    labels = []
    for clips, label, failures in loader:
        assert clips.shape == [2, 1, SEG_NUM, 3, 32, 32] and label.shape == [2]
        assert str(clips.dtype).endswith('float32') and str(label.dtype).endswith('int64')
        assert failures.numpy().tolist() == [0, 0]
        labels += label.numpy().tolist()
    assert sorted(labels) == [0, 1, 2, 3]
    shapes = [(c.shape, l.numpy().tolist()) for c, l, _ in make_loader(cfg, 'test')]
    assert shapes == [([3, 6, SEG_NUM, 3, 32, 32], [0, 1, 2]), ([1, 6, SEG_NUM, 3, 32, 32], [3])]


def test_training_batches_do_not_depend_on_worker_count(videos):
    def epoch(num_workers):
        cfg = make_cfg(videos, DATA__num_workers=num_workers)
        loader = make_loader(cfg, 'train', seed=5)
        loader.batch_sampler.set_epoch(3)
        return [(c.numpy(), l.numpy()) for c, l, _ in loader]
    one, two = epoch(0), epoch(2)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(one, two))
    other_epoch = make_loader(make_cfg(videos), 'train', seed=5)
    assert not np.array_equal(next(iter(other_epoch))[0].numpy(), one[0][0])


def test_load_clip_views_and_errors(videos):
    cfg = make_cfg(videos)
    assert load_clip(str(videos / 'd.mp4'), cfg).shape == (6, SEG_NUM, 3, 32, 32)
    assert load_clip(str(videos / 'd.mp4'), cfg, 'valid').shape == (1, SEG_NUM, 3, 32, 32)
    assert load_clip(str(videos / 'd.mp4'), cfg, 'infer').shape == (6, SEG_NUM, 3, 32, 32)
    own = make_cfg(videos, INFER__num_clips=1, INFER__num_crops=1)
    assert load_clip(str(videos / 'd.mp4'), own, 'infer').shape == (1, SEG_NUM, 3, 32, 32)
    with pytest.raises(DecodeError):
        load_clip(str(videos / 'broken.mp4'), cfg)


def test_make_loader_checks_labels_against_num_classes(videos):
    cfg = make_cfg(videos, MODEL__num_classes=3)  # the list holds label 3
    with pytest.raises(ListFileError, match=r'train.list:4: label 3 is not below num_classes=3'):
        make_loader(cfg, 'valid')


def test_check_failures():
    check_failures(0, 0, 0.05)
    check_failures(5, 100, 0.05)
    with pytest.raises(RuntimeError, match=r'6 of 100 videos could not be decoded .*0\.060 > '
                                           r'DATA.max_failure_ratio 0.05'):
        check_failures(6, 100, 0.05)
    with pytest.raises(RuntimeError):
        check_failures(1, 1, 0.5)


def test_a_flipped_training_clip_carries_the_mapped_label(videos):
    entries = [(str(videos / 'a.mp4'), label) for label in (0, 1, 2)]
    mapped = VideoDataset(entries, make_cfg(videos, DATA__flip_label_map=[[0, 2]]), 'train')
    unflipped = VideoDataset(entries, make_cfg(videos, DATA__flip=False), 'train')
    outcomes = set()
    for epoch in range(8):
        for index, label in enumerate((0, 1, 2)):
            clip, got, _ = mapped[(index, epoch)]
            plain, kept, _ = unflipped[(index, epoch)]  # the same draws, but the flip
            flipped = np.array_equal(clip, plain[..., ::-1])
            assert flipped or np.array_equal(clip, plain)
            assert kept == label and got == ({0: 2, 2: 0}.get(label, label) if flipped
                                             else label)
            outcomes.add((label, flipped))
    assert {(0, True), (2, True), (1, True), (0, False)} <= outcomes


@pytest.mark.parametrize('protocol', ['ours', 'mit-1crop'])
def test_a_loader_resolves_what_it_reads_once(videos, monkeypatch, protocol):
    """The protocol, views and input size of (config, mode) are resolved when the dataset is
    built, not again for every video."""
    import reader.protocols
    calls = []
    protocol_of = reader.protocols.protocol_of
    monkeypatch.setattr(reader.protocols, 'protocol_of',
                        lambda cfg, mode: calls.append(mode) or protocol_of(cfg, mode))
    cfg = make_cfg(videos, DATA__num_workers=0, TEST__protocol=protocol)
    if protocol != 'ours':
        cfg['TEST'].update(num_clips=0, num_crops=0)
    dataset = VideoDataset([(str(videos / name), 0) for name in FRAMES], cfg, 'test')
    clips = [dataset[i][0] for i in range(len(dataset))]
    assert len(clips) == len(FRAMES) and calls == ['test']
