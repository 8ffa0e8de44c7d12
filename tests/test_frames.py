"""Frame folders: data/extract_frames.py writes every frame exactly once, reader.frames reads them.

Test videos carry their frame index in their pixels (tests/videos.py), so each JPEG is checked
to be the right frame; pixels are compared with a sequential PyAV decode of the video within
JPEG error (about 1.3 on average at quality 95, where neighbouring frames differ by 30 or more).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from configs.config import load_config
from data import extract_frames
from reader.dataset import read_clip
from reader.decode import DecodeError, open_video
from reader.frames import FrameFolder
from reader.listfile import read_list
from tests.videos import read_index, sequential_frames, write_corrupt_video, write_index_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> (frames, codec, writer options); B-frames in the H.264 files
VIDEOS = {
    'mp4v/a.mp4': (30, 'mp4v', {}),
    'h264/b.mp4': (40, 'h264', {'bframes': 3, 'keyint': 250}),
    'h264/c.mkv': (12, 'h264', {'bframes': 3, 'keyint': 5}),
    'd.avi': (7, 'MJPG', {}),
    'one.mp4': (1, 'mp4v', {}),
    'one_h264.mp4': (1, 'h264', {}),
}
JPEG_MEAN_ERROR = 3.0  # per frame, in 0..255


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """Folder of the VIDEOS and a broken video."""
    root = tmp_path_factory.mktemp('videos')
    for name, (count, codec, opts) in VIDEOS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_index_video(str(root / name), count, codec=codec, **opts)
    write_corrupt_video(str(root / 'broken.mp4'), 'random')
    return root


@pytest.fixture(scope='module')
def cli_run(source, tmp_path_factory):
    """(CompletedProcess, OUT) of the command line on the source folder, two workers."""
    out = tmp_path_factory.mktemp('frames')
    result = subprocess.run([sys.executable, 'data/extract_frames.py', '--videos', str(source),
                             '--out', str(out), '--workers', '2'],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    return result, out


def folder_of(out, name):
    return str(out / os.path.splitext(name)[0])


def extract(argv):
    """extract_frames.main in this process; the exit status (0, 1, or argparse's 2)."""
    try:
        return extract_frames.main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def check_frames(frames, reference, indices):
    assert frames.dtype == np.uint8 and frames.shape == (len(indices),) + reference.shape[1:]
    assert [read_index(f) for f in frames] == list(indices)
    diff = np.abs(frames.astype(np.int16) - reference[list(indices)])
    assert diff.mean(axis=(1, 2, 3)).max() < JPEG_MEAN_ERROR


@pytest.mark.parametrize('name', VIDEOS)
def test_every_frame_is_extracted_in_order(source, cli_run, name):
    _, out = cli_run
    count = VIDEOS[name][0]
    folder = folder_of(out, name)
    assert sorted(os.listdir(folder)) == [f'img_{i:05d}.jpg' for i in range(1, count + 1)]
    with open_video(folder) as video:
        assert isinstance(video, FrameFolder) and video.backend == 'frames'
        assert video.num_frames == count
        check_frames(video.read(range(count)), sequential_frames(str(source / name)),
                     range(count))


def test_a_failing_video_is_reported_and_the_others_are_extracted(source, cli_run):
    result, out = cli_run
    assert result.returncode == 1
    broken = str(source / 'broken.mp4')
    assert f'1 of {len(VIDEOS) + 1} videos could not be extracted:\n  {broken}: ' in result.stderr
    assert f'videos: {len(VIDEOS)} extracted, 0 already done (skipped), 1 failed' in result.stdout
    assert sorted(os.listdir(out)) == ['d', 'h264', 'mp4v', 'one', 'one_h264']  # no temp left
    assert all(os.path.isdir(folder_of(out, name)) for name in VIDEOS)


def test_read_takes_repeated_and_unsorted_indices(source, cli_run):
    _, out = cli_run
    reference = sequential_frames(str(source / 'h264/b.mp4'))
    with open_video(folder_of(out, 'h264/b.mp4')) as video:
        for indices in ([39, 0, 17], [5, 5, 5], [3, 0, 3, 39, 0], [0]):
            check_frames(video.read(indices), reference, indices)
        for bad in (40, -1):
            with pytest.raises(IndexError, match=f'index {bad}'):
                video.read([0, bad])
        with pytest.raises(TypeError):
            video.read([1.0])
        with pytest.raises(ValueError):
            video.read([])


@pytest.fixture
def frames_copy(cli_run, tmp_path):
    """A copy of the 30 frames of mp4v/a, to break."""
    folder = tmp_path / 'a'
    shutil.copytree(folder_of(cli_run[1], 'mp4v/a.mp4'), folder)
    return folder


def test_gaps_duplicates_and_odd_names_raise_naming_the_folder(frames_copy):
    (frames_copy / 'img_00003.jpg').unlink()
    with pytest.raises(DecodeError, match='img_00003.jpg is missing') as info:
        open_video(str(frames_copy))
    assert info.value.path == str(frames_copy)
    shutil.copy(frames_copy / 'img_00002.jpg', frames_copy / 'img_3.jpg')  # gap closed ...
    assert open_video(str(frames_copy)).num_frames == 30
    shutil.copy(frames_copy / 'img_00002.jpg', frames_copy / 'img_2.jpg')  # ... a duplicate
    with pytest.raises(DecodeError, match='same frame'):
        open_video(str(frames_copy))
    (frames_copy / 'img_2.jpg').rename(frames_copy / 'img_x.jpg')
    with pytest.raises(DecodeError, match='img_x.jpg is not numbered'):
        open_video(str(frames_copy))
    for name in os.listdir(frames_copy):
        (frames_copy / name).unlink()
    with pytest.raises(DecodeError, match='no frames named img_00001.jpg'):
        open_video(str(frames_copy))


def test_an_unreadable_jpeg_raises_naming_the_file(frames_copy):
    random_bytes = str(frames_copy / 'img_00002.jpg')
    write_corrupt_video(random_bytes, 'random')
    cut_short = str(frames_copy / 'img_00005.jpg')
    with open(cut_short, 'rb') as f:
        data = f.read()
    with open(cut_short, 'wb') as f:
        f.write(data[:len(data) // 2])  # OpenCV alone would decode this with gray rows
    with open_video(str(frames_copy)) as video:
        assert [read_index(f) for f in video.read([0, 2, 3, 5])] == [0, 2, 3, 5]  # only those
        for index, path in ((1, random_bytes), (4, cut_short)):
            with pytest.raises(DecodeError) as info:
                video.read([0, index])
            assert info.value.path == path


def test_rerun_skips_done_videos_and_redoes_an_interrupted_one(source, tmp_path, monkeypatch,
                                                                capsys):
    out = tmp_path / 'out'
    videos = tmp_path / 'videos'
    for name in ('mp4v/a.mp4', 'h264/b.mp4', 'one.mp4'):
        (videos / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, videos / name)
    assert extract(['--videos', videos, '--out', out, '--workers', 1]) == 0
    done = {name: os.stat(os.path.join(folder_of(out, name), 'img_00001.jpg')).st_mtime_ns
            for name in ('mp4v/a.mp4', 'one.mp4')}

    # interrupt b after 4 frames, as Ctrl-C would: its frames stay in a temp folder
    shutil.rmtree(folder_of(out, 'h264/b.mp4'))
    written = []

    def imwrite_then_stop(path, *args):
        if len(written) == 4:
            raise KeyboardInterrupt
        written.append(path)
        return real_imwrite(path, *args)

    real_imwrite = extract_frames.cv2.imwrite
    monkeypatch.setattr(extract_frames.cv2, 'imwrite', imwrite_then_stop)
    with pytest.raises(KeyboardInterrupt):
        extract_frames.extract_video((str(videos / 'h264/b.mp4'), folder_of(out, 'h264/b.mp4'),
                                      0, 95, 'cv2', 'img_{:05d}.jpg'))
    monkeypatch.undo()
    assert sorted(os.listdir(out / 'h264')) == ['.b.tmp']
    assert len(os.listdir(out / 'h264/.b.tmp')) == 4
    with pytest.raises(DecodeError, match='does not exist'):
        open_video(folder_of(out, 'h264/b.mp4'))

    capsys.readouterr()
    assert extract(['--videos', videos, '--out', out, '--workers', 1]) == 0
    assert 'videos: 1 extracted, 2 already done (skipped), 0 failed' in capsys.readouterr().out
    assert sorted(os.listdir(out / 'h264')) == ['b']
    assert open_video(folder_of(out, 'h264/b.mp4')).num_frames == 40
    for name, mtime in done.items():
        assert os.stat(os.path.join(folder_of(out, name), 'img_00001.jpg')).st_mtime_ns == mtime


def test_list_file_gives_a_frames_list_with_the_same_labels(source, tmp_path):
    videos_list = tmp_path / 'train.list'
    videos_list.write_text('# path label\nmp4v/a.mp4 3\nh264/b.mp4 0\n\none.mp4 5\n'
                           'broken.mp4 1\n')
    out = tmp_path / 'frames'
    assert extract(['--videos', videos_list, '--data_root', source, '--out', out,
                    '--workers', 2]) == 1  # broken.mp4
    assert (out / 'train.list').read_text() == 'mp4v/a 3\nh264/b 0\none 5\nbroken 1\n'
    entries = read_list(str(out / 'train.list'), data_root=str(out))
    assert entries == [(str(out / 'mp4v/a'), 3), (str(out / 'h264/b'), 0), (str(out / 'one'), 5),
                       (str(out / 'broken'), 1)]
    for (folder, _), name in zip(entries, ('mp4v/a.mp4', 'h264/b.mp4', 'one.mp4')):
        assert open_video(folder).num_frames == VIDEOS[name][0]
    with pytest.raises(DecodeError, match='does not exist'):  # the broken video stays broken
        open_video(entries[3][0])


def test_shards_extract_disjoint_shares_that_merge_into_the_whole_list(source, tmp_path,
                                                                        capsys):
    videos_list = tmp_path / 'train.list'
    videos_list.write_text('mp4v/a.mp4 3\nh264/b.mp4 0\none.mp4 5\nd.avi 2\nh264/c.mkv 1\n')
    out = tmp_path / 'frames'
    common = ['--videos', videos_list, '--data_root', source, '--out', out, '--workers', 1]

    def folders():
        """The finished frame folders under OUT."""
        return {os.path.relpath(d, out) for d, _, files in os.walk(out)
                if 'img_00001.jpg' in files}
    assert extract(common + ['--shard', '2/2']) == 0
    second = folders()
    assert second == {'h264/b', 'd'} and not (out / 'train.list').exists()
    assert extract(common + ['--merge', 2]) == 1
    err = capsys.readouterr().err
    assert '3 of 5 videos have no frame folder' in err
    assert 'mp4v/a (share 1/2)' in err and 'h264/c (share 1/2)' in err
    assert extract(common + ['--shard', '1/2']) == 0
    assert folders() - second == {'mp4v/a', 'one', 'h264/c'}
    assert extract(common + ['--merge', 2]) == 0
    assert (out / 'train.list').read_text() == 'mp4v/a 3\nh264/b 0\none 5\nd 2\nh264/c 1\n'
    assert extract(common + ['--shard', '3/2']) == 2
    assert 'need 1 <= K <= N' in capsys.readouterr().err


def test_two_videos_for_one_folder_stop_the_run_before_any_work(source, tmp_path, capsys):
    videos = tmp_path / 'videos'
    videos.mkdir()
    shutil.copy(source / 'mp4v/a.mp4', videos / 'x.mp4')
    shutil.copy(source / 'd.avi', videos / 'x.avi')
    assert extract(['--videos', videos, '--out', tmp_path / 'out']) == 2
    assert 'x.mp4' in capsys.readouterr().err and not (tmp_path / 'out').exists()


CONFIG = """\
MODEL:
  num_classes: 3
  seg_num: 4
DATA:
  short_size: 32
  target_size: 32
  mean: [0.0, 0.0, 0.0]
  std: [1.0, 1.0, 1.0]
TEST:
  num_clips: 2
  num_crops: 3
"""


@pytest.mark.parametrize('library', ['cv2', 'pil'])
def test_read_clip_on_frames_matches_the_video(source, tmp_path, library):
    (tmp_path / 'c.yaml').write_text(CONFIG)
    cfg = load_config(str(tmp_path / 'c.yaml'), [f'DATA.resize={library}'])
    videos = tmp_path / 'videos'
    videos.mkdir()
    shutil.copy(source / 'h264/b.mp4', videos / 'b.mp4')
    # resized at extraction as read_clip resizes the video: then read_clip leaves them alone
    assert extract(['--videos', videos, '--out', tmp_path / 'out', '--short_size', 32,
                    '--resize', library, '--workers', 1]) == 0
    folder, video = str(tmp_path / 'out/b'), str(videos / 'b.mp4')
    assert open_video(folder).read([0]).shape == (1, 32, 43, 3)
    for mode in ('test', 'train'):
        from_frames = read_clip(folder, cfg, mode, np.random.default_rng(1))
        from_video = read_clip(video, cfg, mode, np.random.default_rng(1))
        assert from_frames.shape == from_video.shape
        assert from_frames.shape == ((6 if mode == 'test' else 1), 4, 3, 32, 32)
        diff = np.abs(from_frames - from_video) * 255  # mean 0, std 1: pixels / 255
        assert diff.mean() < JPEG_MEAN_ERROR


@pytest.mark.parametrize('template', ['{:05d}.jpg', '{:06d}.jpg'])
def test_frames_named_as_the_datasets_name_them_are_found_and_read(source, tmp_path, template):
    videos, out = tmp_path / 'videos', tmp_path / 'out'
    videos.mkdir()
    shutil.copy(source / 'd.avi', videos / 'd.avi')
    assert extract(['--videos', videos, '--out', out, '--workers', 1,
                    '--frame_template', template]) == 0
    folder = str(out / 'd')
    assert sorted(os.listdir(folder)) == [template.format(i) for i in range(1, 8)]
    with open_video(folder) as video:  # the naming detected from the folder
        assert video.template == template and video.num_frames == 7
        check_frames(video.read([6, 0, 3]), sequential_frames(str(videos / 'd.avi')), [6, 0, 3])
    os.unlink(os.path.join(folder, template.format(3)))
    with pytest.raises(DecodeError, match=f'{template.format(3)} is missing'):
        open_video(folder)


def test_a_folder_of_two_namings_needs_the_config_to_say_which(frames_copy, tmp_path):
    shutil.copy(frames_copy / 'img_00007.jpg', frames_copy / '00001.jpg')
    with pytest.raises(DecodeError, match=r'holds img_00001.jpg and 00001.jpg: set '
                                          r'DATA.frame_template'):
        open_video(str(frames_copy))
    with open_video(str(frames_copy), frame_template='img_{:05d}.jpg') as video:
        assert video.num_frames == 30 and read_index(video.read([0])[0]) == 0
    with open_video(str(frames_copy), frame_template='{:05d}.jpg') as video:
        assert video.num_frames == 1 and read_index(video.read([0])[0]) == 6
    # the dataset reads the folder the config's way
    (tmp_path / 'c.yaml').write_text("MODEL: {seg_num: 2}\nDATA: {frame_template: '{:05d}.jpg',"
                                     " short_size: 32, target_size: 32}\n")
    clip = read_clip(str(frames_copy), load_config(str(tmp_path / 'c.yaml')), 'valid')
    assert clip.shape[:2] == (1, 2)


@pytest.mark.parametrize('value, words', [
    ('{:05d}.png', 'a .jpg name'), ('img.jpg', 'one integer field'),
    ('{:05d}_{:05d}.jpg', 'one integer field'), ('x/{:05d}.jpg', 'without a folder')])
def test_a_frame_template_that_cannot_name_frames_is_refused(tmp_path, capsys, value, words):
    (tmp_path / 'c.yaml').write_text('MODEL: {seg_num: 2}\n')
    with pytest.raises(ValueError, match="DATA.frame_template: expected '' \\(detected\\) or"):
        load_config(str(tmp_path / 'c.yaml'), [{'DATA': {'frame_template': value}}])
    assert extract(['--videos', tmp_path, '--out', tmp_path / 'out',
                    '--frame_template', value]) == 2
    assert words in capsys.readouterr().err
