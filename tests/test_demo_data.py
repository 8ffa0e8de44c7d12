"""data/make_demo.py: the files it writes, determinism, and classes that differ only in time order."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from reader.decode import open_video

from tests.commands import ROOT

CLASSES = ['move_left', 'move_right', 'rotate_cw', 'rotate_ccw', 'grow', 'shrink']
PAIRS = [('move_left', 'move_right'), ('rotate_cw', 'rotate_ccw'), ('grow', 'shrink')]
SMALL = dict(train_per_class=2, val_per_class=1, seed=3, size=32, frames=8)


def load_make_demo():
    # data/ is a folder of scripts, not a package: load the file itself
    spec = importlib.util.spec_from_file_location('make_demo', os.path.join(ROOT, 'data', 'make_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


md = load_make_demo()


def read_all(path):
    """Every frame OpenCV decodes from `path`, RGB."""
    cap = cv2.VideoCapture(path)
    assert cap.isOpened(), path
    frames = []
    ok, frame = cap.read()
    while ok:
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        ok, frame = cap.read()
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('demo') / 'demo')
    meta, skipped = md.generate(out, **SMALL)
    assert not skipped
    return out, meta


def test_lists_labels_and_videos(demo):
    out, meta = demo
    assert sorted(os.listdir(out)) == ['demo.json', 'labels.txt', 'train.list', 'val.list', 'videos']
    assert open(os.path.join(out, 'labels.txt')).read().splitlines() == CLASSES
    for split, per_class in (('train', 2), ('val', 1)):
        lines = open(os.path.join(out, f'{split}.list')).read().splitlines()
        assert len(lines) == 6 * per_class
        pairs = [line.split(' ') for line in lines]
        assert [int(label) for _, label in pairs] == [k for k in range(6) for _ in range(per_class)]
        for rel, label in pairs:
            assert rel == f'videos/{CLASSES[int(label)]}/{split}_{int(rel[-8:-4]):04d}.mp4'
    assert len(meta['num_frames']) == 18
    assert json.load(open(os.path.join(out, 'demo.json'))) == meta


def test_every_video_decodes_with_recorded_frame_count(demo):
    out, meta = demo
    for rel, num_frames in meta['num_frames'].items():
        assert 8 <= num_frames <= 12  # frames .. 1.5 * frames
        frames = read_all(os.path.join(out, rel))
        assert frames.shape == (num_frames, 32, 32, 3), rel
        with open_video(os.path.join(out, rel)) as video:  # what training reads
            assert video.num_frames == num_frames, rel
            # OpenCV's FFmpeg and PyAV's may round a pixel differently; a wrong frame is far off
            diff = np.abs(video.read(range(num_frames)).astype(np.int16) - frames)
            assert diff.max() <= 2, rel
    assert len(set(meta['num_frames'].values())) > 1  # lengths vary between videos


def test_encoded_video_matches_render(demo):
    out, _ = demo
    # re-render the first val video of grow exactly as make_split does, compare with the decode
    rng = np.random.default_rng([SMALL['seed'], 1, 4, 0])
    num_frames = int(rng.integers(8, 13))
    params = md.sample_params('scale', rng, 32)
    expected = md.render('grow', params, num_frames).astype(np.float32)
    decoded = read_all(os.path.join(out, 'videos/grow/val_0000.mp4')).astype(np.float32)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).mean() < 6.0  # mp4v is lossy; a wrong frame is far off


def test_deterministic_and_seed_dependent(demo, tmp_path):
    out, meta = demo
    again, _ = md.generate(str(tmp_path / 'again'), **SMALL)
    other, _ = md.generate(str(tmp_path / 'other'), **dict(SMALL, seed=4))
    assert again == meta
    rel = 'videos/move_left/train_0000.mp4'
    first = open(os.path.join(out, rel), 'rb').read()
    assert open(tmp_path / 'again' / rel, 'rb').read() == first
    assert open(tmp_path / 'other' / rel, 'rb').read() != first
    for split in ('train', 'val'):
        assert (tmp_path / 'again' / f'{split}.list').read_text() == \
            open(os.path.join(out, f'{split}.list')).read()


def test_skip_regenerate_and_refuse_foreign_folder(tmp_path, capsys):
    out = str(tmp_path / 'demo')
    md.main(['--out', out, '--train_per_class', '2', '--val_per_class', '1', '--size', '32',
             '--frames', '8'])
    assert 'written: 6 classes, 12 train + 6 val videos, 32x32, 8-12 frames' in capsys.readouterr().out
    stamp = os.path.getmtime(os.path.join(out, 'train.list'))
    md.main(['--out', out, '--train_per_class', '2', '--val_per_class', '1', '--size', '32',
             '--frames', '8'])
    assert 'up to date' in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(out, 'train.list')) == stamp
    # other arguments: regenerated, and no video of the larger run is left behind
    md.main(['--out', out, '--train_per_class', '1', '--val_per_class', '0', '--size', '32',
             '--frames', '8'])
    videos = sorted(os.path.join(c, f) for c in CLASSES for f in os.listdir(os.path.join(out, 'videos', c)))
    assert videos == sorted(os.path.join(c, 'train_0000.mp4') for c in CLASSES)
    assert open(os.path.join(out, 'val.list')).read() == ''
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='foreign.*no demo.json'):
        md.generate(str(foreign), **SMALL)


@pytest.mark.parametrize('a, b', PAIRS)
def test_pair_is_same_frames_in_reverse_order(a, b):
    # both classes of a pair draw parameters from one distribution, and for equal parameters one
    # is the other reversed: the set of single frames carries no information about the class
    motion = md.CLASSES[a][0]
    assert md.CLASSES[b][0] == motion
    for seed in range(5):
        params = md.sample_params(motion, np.random.default_rng(seed), 32)
        fa, fb = md.render(a, params, 9 + seed), md.render(b, params, 9 + seed)
        assert fa.shape == (9 + seed, 32, 32, 3) and fa.dtype == np.uint8
        assert np.array_equal(fa[::-1], fb)
        assert not np.array_equal(fa, fb)  # the order does differ
        assert sorted(f.tobytes() for f in fa) == sorted(f.tobytes() for f in fb)


def shape_mask(frames, params):
    """Pixels close to the shape colour (the background is at least 65 levels away per channel)."""
    dist = np.linalg.norm(frames.astype(np.float32) - np.asarray(params['shape_rgb'], np.float32), axis=-1)
    return dist < 40


@pytest.mark.parametrize('seed', range(4))
def test_motion_goes_the_way_the_class_says(seed):
    rng = np.random.default_rng(seed)
    params = md.sample_params('move', rng, 64)
    xs = [np.nonzero(m)[1].mean() for m in shape_mask(md.render('move_right', params, 12), params)]
    assert np.all(np.diff(xs) > 0)
    params = md.sample_params('scale', rng, 64)
    areas = shape_mask(md.render('grow', params, 12), params).sum(axis=(1, 2))
    # radius x1.8..2.4 over the video; pixel rounding can stall the area for one frame, not two
    assert np.all(np.diff(areas[::2]) > 0) and areas[-1] > 2.5 * areas[0]
    params = md.sample_params('rotate', rng, 64)
    angles = []
    for mask in shape_mask(md.render('rotate_cw', params, 12), params):
        ys, xs = np.nonzero(mask)
        dx, dy = xs - params['centre'][0], ys - params['centre'][1]
        weight = (dx ** 2 + dy ** 2) ** 2  # the arrowhead's tip is its farthest part from the centre
        angles.append(np.arctan2((weight * dy).sum(), (weight * dx).sum()))
    # image y points down, so a growing atan2(y, x) angle is clockwise on screen
    assert np.all(np.diff(np.unwrap(angles)) > 0)


def test_render_rejects_mismatched_parameters():
    params = md.sample_params('move', np.random.default_rng(0), 32)
    with pytest.raises(ValueError, match="'grow' needs 'scale' parameters, got 'move'"):
        md.render('grow', params, 8)


def test_kinetics400_labels():
    names = open(os.path.join(ROOT, 'data', 'kinetics400_labels.txt')).read().splitlines()
    assert len(names) == 400 and len(set(names)) == 400
    assert names[0] == 'abseiling' and names[-1] == 'zumba'
    assert names == sorted(names)
    assert all(name == name.strip() and name for name in names)
