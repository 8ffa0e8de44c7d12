"""data/make_lists.py: every layout on a tiny tree written here, with a missing video, an
unreadable one and a class without videos; the exact files, report lines and exit status, and
lists that reader.listfile reads back with num_classes = the label count."""
import json
import os
import shlex

import cv2
import numpy as np
import pytest

from data import make_lists
from reader.decode import open_video
from reader.listfile import read_list
from tests.videos import write_corrupt_video, write_index_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD = 'FFmpeg cannot open the file'  # the start of reader.decode's reason for random bytes


def make_tree(root, good=(), bad=(), other=()):
    """Videos of 2 frames at the `good` paths, random bytes at the `bad` ones, and text files
    at the `other` ones, below `root`."""
    for rel in (*good, *bad, *other):
        os.makedirs(os.path.dirname(os.path.join(root, rel)) or root, exist_ok=True)
    for rel in good:
        write_index_video(os.path.join(root, rel), 2)
    for rel in bad:
        write_corrupt_video(os.path.join(root, rel), 'random')
    for rel in other:
        with open(os.path.join(root, rel), 'w') as f:
            f.write('not a video\n')
    return str(root)


def write_text(path, lines, newline='\n'):
    with open(path, 'w', newline='') as f:
        f.write(''.join(line + newline for line in lines))
    return str(path)


def run(capsys, *argv, workers=1):
    """(exit status, stdout lines, stderr lines) of make_lists.main in this process."""
    try:
        status = make_lists.main([str(a) for a in argv] + ['--workers', str(workers)])
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err.splitlines()


def outputs(out):
    """{file name: its lines} of OUT, after checking that no temporary file is left."""
    names = sorted(os.listdir(out))
    assert names == ['labels.txt', 'left_out.txt', 'train.list', 'val.list'], names
    return {name: open(os.path.join(out, name), encoding='utf-8').read().splitlines()
            for name in names}


def check_readable(root, out):
    """The lists read by reader.listfile with num_classes = labels.txt's line count."""
    num_classes = len(open(os.path.join(out, 'labels.txt'), encoding='utf-8').readlines())
    for split in ('train', 'val'):
        for path, label in read_list(os.path.join(out, f'{split}.list'), str(root),
                                     num_classes=num_classes):
            assert os.path.isfile(path) and 0 <= label < num_classes


def summary(root, out, counts, left_out, num_classes):
    """The four stdout lines expected after a run."""
    files = [os.path.join(out, name) for name in
             ('train.list', 'val.list', 'labels.txt', 'left_out.txt')]
    flags = [f'DATA.data_root={os.path.abspath(root)}', f'TRAIN.filelist={files[0]}',
             f'VALID.filelist={files[1]}', f'TEST.filelist={files[1]}',
             f'MODEL.num_classes={num_classes}', f'INFER.label_file={files[2]}']
    return [counts, left_out, 'wrote ' + ', '.join(files),
            'the list paths are relative to ROOT; train with: '
            + ' '.join('-o ' + shlex.quote(flag) for flag in flags)]


def cut_reasons(lines):
    """`lines` with each unreadable video's reason cut after its first words (the rest
    holds the absolute path and FFmpeg's error number)."""
    return [line[:line.index(BAD) + len(BAD)] if BAD in line else line for line in lines]


# --- folders, by fraction -------------------------------------------------------------------

@pytest.mark.parametrize('n, fraction, expected', [
    (0, 0.2, 0), (1, 0.5, 0), (2, 0.01, 1), (2, 0.99, 1), (3, 0.5, 2), (4, 0.2, 1), (5, 0.5, 3),
    (10, 0.2, 2), (10, 0.25, 3), (10, 0.95, 9)])
def test_val_count_rounds_within_one_and_n_minus_one(n, fraction, expected):
    assert make_lists.val_count(n, fraction) == expected


def folders_tree(root):
    return make_tree(root, good=['a/v0.mp4', 'a/v1.mp4', 'a/deeper/v2.avi', 'a/v3.mp4',
                                 'b/v0.mp4', 'b/v1.mp4', 'c/only.mp4'],
                     bad=['b/bad.mp4', 'a/.hidden.mp4'], other=['a/notes.txt', 'd/readme.txt'])


def test_folders_by_fraction(tmp_path, capsys):
    root, out = folders_tree(tmp_path / 'root'), str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'folders', root, '--out', out, '--val_fraction', '0.25')
    assert status == 1  # b/bad.mp4 does not open
    assert cut_reasons(err) == [
        "warning: class 'd' (label 3) has no video in train",
        "warning: class 'c' (label 2) has no video in val",
        "warning: class 'd' (label 3) has no video in val",
        f'unreadable: b/bad.mp4: {BAD}']
    assert stdout == summary(root, out, 'train: 5 videos of 3 classes; val: 2 videos of '
                             '2 classes; 4 classes in all', 'left out: 0 missing, 1 unreadable', 4)
    files = outputs(out)
    assert files['labels.txt'] == ['a', 'b', 'c', 'd']
    assert cut_reasons(files['left_out.txt']) == [f'unreadable: b/bad.mp4: {BAD}']
    lines = files['train.list'] + files['val.list']
    # every readable video once (hidden files and text files are not videos), one of a's four
    # and one of b's two readable videos in val, c's lone video in train
    assert sorted(lines) == ['a/deeper/v2.avi 0', 'a/v0.mp4 0', 'a/v1.mp4 0', 'a/v3.mp4 0',
                             'b/v0.mp4 1', 'b/v1.mp4 1', 'c/only.mp4 2']
    assert [line.split()[1] for line in files['val.list']] == ['0', '1']
    assert 'c/only.mp4 2' in files['train.list']
    assert files['train.list'] == sorted(files['train.list'],
                                         key=lambda x: (int(x.split()[-1]), x))
    check_readable(root, out)

    # the same inputs and seed, the same files; --allow_missing only changes the status
    assert run(capsys, 'folders', root, '--out', out, '--val_fraction', '0.25',
               '--allow_missing')[0] == 0
    assert outputs(out) == files


def test_fraction_draw_is_per_class_and_seeded(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=[f'{c}/v{i}.mp4' for c in 'ab' for i in range(4)])
    draws = {}
    for seed in range(6):
        out = str(tmp_path / f'out{seed}')
        assert run(capsys, 'folders', root, '--out', out, '--val_fraction', '0.5',
                   '--seed', seed, '--no_check')[0] == 0
        draws[seed] = outputs(out)['val.list']
        assert len(draws[seed]) == 4 and [x[-1] for x in draws[seed]] == list('0011')
    assert len(set(map(tuple, draws.values()))) > 1  # the seed changes the draw
    # a new class (sorting between the two) leaves the other classes' draws as they were
    make_tree(tmp_path / 'root', good=['a0/v0.mp4', 'a0/v1.mp4'])
    out = str(tmp_path / 'out_a0')
    run(capsys, 'folders', root, '--out', out, '--val_fraction', '0.5', '--no_check')
    val = outputs(out)['val.list']
    assert [x.split()[0] for x in val if not x.startswith('a0/')] == [
        x.split()[0] for x in draws[0]]


def test_workers_write_the_same_files(tmp_path, capsys):
    root = folders_tree(tmp_path / 'root')
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    first = run(capsys, 'folders', root, '--out', one)
    second = run(capsys, 'folders', root, '--out', two, workers=2)
    assert first[0] == second[0] == 1 and first[2] == second[2]
    assert outputs(one) == outputs(two)


# --- folders, by split files ----------------------------------------------------------------

def test_folders_by_split_files(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4', 'a/v 1.mp4', 'b/v0.mp4', 'b/v1.mp4'],
                     bad=['b/bad.mp4'], other=['c/readme.txt'])
    train = write_text(tmp_path / 'train.txt', ['# train videos', 'a/v0.mp4 7', '', 'b/v0.mp4',
                                                 'b/bad.mp4', 'ghost/g0.mp4'])
    val = write_text(tmp_path / 'val.txt', ['a/v 1.mp4', 'b/v1.mp4', 'b/gone.mp4'])
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'folders', root, '--out', out, '--split_files', train, val)
    assert status == 1
    # c has a folder and no video; ghost is named in a split file and has no folder: both
    # keep their label
    assert cut_reasons(err) == [
        "warning: class 'c' (label 2) has no video in train",
        "warning: class 'ghost' (label 3) has no video in train",
        "warning: class 'c' (label 2) has no video in val",
        "warning: class 'ghost' (label 3) has no video in val",
        f'missing: b/gone.mp4 ({val}:3)', f'missing: ghost/g0.mp4 ({train}:6)',
        f'unreadable: b/bad.mp4: {BAD}']
    assert stdout == summary(root, out, 'train: 2 videos of 2 classes; val: 2 videos of '
                             '2 classes; 4 classes in all', 'left out: 2 missing, 1 unreadable', 4)
    files = outputs(out)
    assert files['labels.txt'] == ['a', 'b', 'c', 'ghost']
    assert files['train.list'] == ['a/v0.mp4 0', 'b/v0.mp4 1']  # the 7 was not a label
    assert files['val.list'] == ['a/v 1.mp4 0', 'b/v1.mp4 1']
    assert cut_reasons(files['left_out.txt']) == [
        f'unreadable: b/bad.mp4: {BAD}', f'missing: b/gone.mp4 ({val}:3)',
        f'missing: ghost/g0.mp4 ({train}:6)']
    check_readable(root, out)


def test_split_file_line_without_a_class_stops_naming_it(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4'])
    train = write_text(tmp_path / 'train.txt', ['a/v0.mp4', 'v1.mp4'])
    val = write_text(tmp_path / 'val.txt', [])
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'folders', root, '--out', out, '--split_files', train, val)
    assert status == 2 and f"{train}:2: expected <class>/<video>, got 'v1.mp4'" in err[-1]
    assert not out.exists()  # nothing written


def test_report_shows_the_first_twenty_and_left_out_has_all(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4'])
    train = write_text(tmp_path / 'train.txt',
                       ['a/v0.mp4'] + [f'a/m{i:02d}.mp4' for i in range(25)])
    val = write_text(tmp_path / 'val.txt', [])
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'folders', root, '--out', out, '--split_files', train, val,
                              '--no_check')
    assert status == 1
    missing = [f'missing: a/m{i:02d}.mp4 ({train}:{i + 2})' for i in range(25)]
    assert err == ["warning: class 'a' (label 0) has no video in val", *missing[:20],
                   f'... and 5 more missing, all in {os.path.join(out, "left_out.txt")}']
    assert stdout[1] == 'left out: 25 missing, 0 unreadable (videos not opened: --no_check)'
    assert outputs(out)['left_out.txt'] == missing


# --- UCF-101 --------------------------------------------------------------------------------

def ucf_splits(folder, trainlist):
    """An official-style split folder (CRLF lines), classInd.txt not in name order."""
    os.makedirs(folder)
    write_text(folder / 'classInd.txt', ['1 Zumba', '2 Archery', '3 Bowling'], '\r\n')
    write_text(folder / 'trainlist01.txt', trainlist, '\r\n')
    write_text(folder / 'testlist01.txt', ['Zumba/v_Zumba_g02_c01.avi',
                                          'Archery/v_Archery_g02_c01.avi',
                                          'Archery/v_Archery_g02_c02.avi'], '\r\n')
    return str(folder)


def test_ucf101(tmp_path, capsys):
    root = make_tree(tmp_path / 'UCF-101', good=[
        'Zumba/v_Zumba_g01_c01.avi', 'Zumba/v_Zumba_g02_c01.avi', 'Archery/v_Archery_g01_c01.avi',
        'Archery/v_Archery_g02_c01.avi', 'Bowling/v_Bowling_g01_c01.avi'],
        bad=['Bowling/v_Bowling_g01_c02.avi'])
    splits = ucf_splits(tmp_path / 'ucfTrainTestlist', [
        'Zumba/v_Zumba_g01_c01.avi 1', 'Archery/v_Archery_g01_c01.avi 2',
        'Bowling/v_Bowling_g01_c01.avi 3', 'Bowling/v_Bowling_g01_c02.avi 3'])
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'ucf101', root, '--splits', splits, '--split', 1,
                              '--out', out)
    assert status == 1
    test = os.path.join(splits, 'testlist01.txt')
    assert cut_reasons(err) == [
        "warning: class 'Bowling' (label 2) has no video in val",
        f'missing: Archery/v_Archery_g02_c02.avi ({test}:3)',
        f'unreadable: Bowling/v_Bowling_g01_c02.avi: {BAD}']
    assert stdout == summary(root, out, 'train: 3 videos of 3 classes; val: 2 videos of '
                             '2 classes; 3 classes in all', 'left out: 1 missing, 1 unreadable', 3)
    files = outputs(out)
    assert files['labels.txt'] == ['Zumba', 'Archery', 'Bowling']  # classInd.txt's order
    assert files['train.list'] == ['Zumba/v_Zumba_g01_c01.avi 0',
                                   'Archery/v_Archery_g01_c01.avi 1',
                                   'Bowling/v_Bowling_g01_c01.avi 2']
    assert files['val.list'] == ['Zumba/v_Zumba_g02_c01.avi 0', 'Archery/v_Archery_g02_c01.avi 1']
    check_readable(root, out)


def test_ucf101_label_that_is_not_classind_s_stops(tmp_path, capsys):
    root = make_tree(tmp_path / 'UCF-101', good=['Zumba/v_Zumba_g01_c01.avi'])
    splits = ucf_splits(tmp_path / 'lists', ['Zumba/v_Zumba_g01_c01.avi 2'])
    status, _, err = run(capsys, 'ucf101', root, '--splits', splits, '--out', tmp_path / 'out')
    assert status == 2
    assert (f"{os.path.join(splits, 'trainlist01.txt')}:1: label 2, but classInd.txt has "
            f"'Zumba' as 1") in err[-1]


# --- HMDB-51 --------------------------------------------------------------------------------

def test_hmdb51(tmp_path, capsys):
    root = make_tree(tmp_path / 'hmdb51', good=[
        'wave/w1.avi', 'wave/w2.avi', 'wave/w3.avi', 'brush_hair/b1.avi', 'brush_hair/b2.avi',
        'climb/c1.avi'], bad=['climb/c2.avi'])
    splits = tmp_path / 'testTrainMulti_7030_splits'
    os.makedirs(splits)
    write_text(splits / 'wave_test_split1.txt', ['w1.avi 1 ', 'w2.avi 2 ', 'w3.avi 0 ',
                                                 'w4.avi 2 '], '\r\n')
    write_text(splits / 'brush_hair_test_split1.txt', ['b1.avi 1', 'b2.avi 2'])
    write_text(splits / 'climb_test_split1.txt', ['c1.avi 1', 'c2.avi 1'])
    write_text(splits / 'climb_test_split2.txt', ['c1.avi 2', 'c2.avi 2'])  # another split
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'hmdb51', root, '--splits', splits, '--out', out)
    assert status == 1
    assert cut_reasons(err) == [
        "warning: class 'climb' (label 1) has no video in val",
        f"missing: wave/w4.avi ({splits / 'wave_test_split1.txt'}:4)",
        f'unreadable: climb/c2.avi: {BAD}']
    assert stdout == summary(root, out, 'train: 3 videos of 3 classes; val: 2 videos of '
                             '2 classes; 3 classes in all',
                             'left out: 1 missing, 1 unreadable; 1 marked 0 (in neither split)', 3)
    files = outputs(out)
    assert files['labels.txt'] == ['brush_hair', 'climb', 'wave']
    assert files['train.list'] == ['brush_hair/b1.avi 0', 'climb/c1.avi 1', 'wave/w1.avi 2']
    assert files['val.list'] == ['brush_hair/b2.avi 0', 'wave/w2.avi 2']
    check_readable(root, out)


def test_hmdb51_mark_that_is_not_0_1_2_stops(tmp_path, capsys):
    root = make_tree(tmp_path / 'hmdb51', good=['wave/w1.avi'])
    splits = tmp_path / 'splits'
    os.makedirs(splits)
    write_text(splits / 'wave_test_split1.txt', ['w1.avi 3'])
    status, _, err = run(capsys, 'hmdb51', root, '--splits', splits, '--out', tmp_path / 'out')
    assert status == 2
    assert f"{splits / 'wave_test_split1.txt'}:1: expected \"<video> <0, 1 or 2>\"" in err[-1]


# --- Kinetics -------------------------------------------------------------------------------

HEADER = 'label,youtube_id,time_start,time_end,split'


def test_kinetics(tmp_path, capsys):
    root = make_tree(tmp_path / 'k400', good=[
        'air drumming/--aaaaaaaaa_000000_000010.mp4',  # ActivityNet crawler: ROOT/<label>/
        'train/bbbbbbbbbbb_000012_000022.mp4',         # CVDF archive: flat in train/
        'videos_val/air_drumming/ccccccccccc_000003_000013.mkv',  # mmaction2: _ for spaces
        'abseiling/ddddddddddd_000100_000110.mp4',     # the same clip in two places: the one
        'CVDF/val/ddddddddddd_000100_000110.mp4',      # in the label's folder is taken
        'abseiling/eeeeeeeeeee_000000_000010.mp4'],
        bad=['abseiling/fffffffffff_000005_000015.mp4'])
    train = write_text(tmp_path / 'train.csv', [
        HEADER, 'air drumming,--aaaaaaaaa,0,10,train', 'abseiling,bbbbbbbbbbb,12,22,train',
        'abseiling,fffffffffff,5,15,train', '"zumba",zzzzzzzzzzz,1,11,train'])  # zumba absent
    val = write_text(tmp_path / 'validate.csv', [
        HEADER, 'air drumming,ccccccccccc,3.0,13.0,val', 'abseiling,ddddddddddd,100,110,val',
        'abseiling,eeeeeeeeeee,0,10,val', 'yawning,yyyyyyyyyyy,2,12,val'])  # only in val
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'kinetics', root, '--train_csv', train, '--val_csv', val,
                              '--out', out)
    assert status == 1
    assert cut_reasons(err) == [
        "warning: class 'yawning' (label 2) has no video in train",
        "warning: class 'zumba' (label 3) has no video in train",
        "warning: class 'yawning' (label 2) has no video in val",
        "warning: class 'zumba' (label 3) has no video in val",
        f'missing: yawning/yyyyyyyyyyy_000002_000012.mp4 ({val}:5)',
        f'missing: zumba/zzzzzzzzzzz_000001_000011.mp4 ({train}:5)',
        f'unreadable: abseiling/fffffffffff_000005_000015.mp4: {BAD}']
    assert stdout == summary(root, out, 'train: 2 videos of 2 classes; val: 3 videos of '
                             '2 classes; 4 classes in all', 'left out: 2 missing, 1 unreadable', 4)
    files = outputs(out)
    assert files['labels.txt'] == ['abseiling', 'air drumming', 'yawning', 'zumba']
    assert files['train.list'] == ['train/bbbbbbbbbbb_000012_000022.mp4 0',
                                   'air drumming/--aaaaaaaaa_000000_000010.mp4 1']
    assert files['val.list'] == ['abseiling/ddddddddddd_000100_000110.mp4 0',
                                 'abseiling/eeeeeeeeeee_000000_000010.mp4 0',
                                 'videos_val/air_drumming/ccccccccccc_000003_000013.mkv 1']
    check_readable(root, out)


def test_kinetics_csv_without_labels_stops_naming_the_column(tmp_path, capsys):
    root = make_tree(tmp_path / 'k400', good=['test/aaaaaaaaaaa_000000_000010.mp4'])
    test = write_text(tmp_path / 'test.csv', ['youtube_id,time_start,time_end,split',
                                              'aaaaaaaaaaa,0,10,test'])
    status, _, err = run(capsys, 'kinetics', root, '--train_csv', test, '--val_csv', test,
                         '--out', tmp_path / 'out')
    assert status == 2 and f'{test}:1: no column label in the header' in err[-1]


def test_kinetics_400_order_is_the_sorted_names():
    names = open(os.path.join(REPO, 'data', 'kinetics400_labels.txt')).read().splitlines()
    assert len(names) == 400 and names == sorted(names)


# --- names and splits a list cannot hold -----------------------------------------------------

def test_hmdb51_videos_starting_with_a_hash_are_kept(tmp_path, capsys):
    name = '#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi'  # as in HMDB-51's own clap split files
    root = make_tree(tmp_path / 'hmdb51', good=[f'clap/{name}', 'clap/c1.avi'])
    splits = tmp_path / 'splits'
    os.makedirs(splits)
    write_text(splits / 'clap_test_split1.txt', [f'{name} 1 ', 'c1.avi 2 '], '\r\n')
    out = str(tmp_path / 'out')
    status, _, err = run(capsys, 'hmdb51', root, '--splits', splits, '--out', out)
    assert status == 0 and err == []
    files = outputs(out)
    assert files['train.list'] == [f'clap/{name} 0'] and files['val.list'] == ['clap/c1.avi 0']
    check_readable(root, out)


def hmdb_run(tmp_path, capsys, lines):
    root = make_tree(tmp_path / 'hmdb51', good=['clap/c1.avi'])
    splits = tmp_path / 'splits'
    os.makedirs(splits)
    write_text(splits / 'clap_test_split1.txt', lines)
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'hmdb51', root, '--splits', splits, '--out', out)
    assert status == 2 and not out.exists()  # stopped before anything was written
    return str(splits / 'clap_test_split1.txt'), err[-1]


def test_a_video_in_train_and_val_stops_naming_both_lines(tmp_path, capsys):
    path, error = hmdb_run(tmp_path, capsys, ['c1.avi 1', 'c2.avi 0', 'c1.avi 2'])
    assert f'{path}:3: clap/c1.avi is in val and also in train ({path}:1)' in error


def test_a_path_out_of_root_stops_naming_the_line(tmp_path, capsys):
    path, error = hmdb_run(tmp_path, capsys, ['c1.avi 1', '../../secret.avi 2'])
    assert f"{path}:2: 'clap/../../secret.avi' is not a path inside ROOT" in error


@pytest.mark.parametrize('train, val, words', [
    (['a/v0.mp4', 'a/../../x.mp4'], [], ":2: 'a/../../x.mp4' is not a path inside ROOT"),
    (['a/v0.mp4'], ['b/v0.mp4', 'a/./v0.mp4'], ':2: a/./v0.mp4 is in val and also in train'),
])
def test_split_files_out_of_root_or_in_both_splits_stop(tmp_path, capsys, train, val, words):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4', 'b/v0.mp4'])
    train = write_text(tmp_path / 'train.txt', train)
    val = write_text(tmp_path / 'val.txt', val)
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'folders', root, '--out', out, '--split_files', train, val)
    assert status == 2 and words in err[-1] and not out.exists()


def test_video_names_a_list_cannot_hold_are_left_out_and_named(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4', 'a/v1.mp4', 'a/x\nb/v9.mp4 0.mp4',
                                              'b/v0.mp4', 'b/v1.mp4'])
    write_index_video(os.path.join(os.fsencode(root), b'b', b'caf\xe9.mp4'), 2)  # latin-1
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'folders', root, '--out', out, '--val_fraction', '0.5')
    assert status == 1
    named = ["unlistable: 'a/x\\nb/v9.mp4 0.mp4': a line break in its name",
             "unlistable: 'b/caf\\udce9.mp4': a name that is not UTF-8"]
    assert err == named and outputs(out)['left_out.txt'] == named
    assert stdout[:2] == ['train: 2 videos of 2 classes; val: 2 videos of 2 classes; 2 classes '
                          'in all', 'left out: 0 missing, 0 unreadable, 2 unlistable']
    check_readable(root, out)
    lines = outputs(out)['train.list'] + outputs(out)['val.list']
    assert sorted(lines) == ['a/v0.mp4 0', 'a/v1.mp4 0', 'b/v0.mp4 1', 'b/v1.mp4 1']


@pytest.mark.parametrize('folder, reason', [(' jump', 'a space at the start or end'),
                                            ('jump\n', 'a line break')])
def test_a_class_folder_labels_txt_cannot_hold_stops(tmp_path, capsys, folder, reason):
    root = make_tree(tmp_path / 'root', good=[f'{folder}/v0.mp4', 'run/v0.mp4'])
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'folders', root, '--out', out)
    assert status == 2 and f'class {folder!r}: {reason}' in err[-1] and not out.exists()


def test_an_out_folder_that_cannot_be_made_stops_at_once(tmp_path, capsys):
    root = make_tree(tmp_path / 'root', good=['a/v0.mp4'])
    out = tmp_path / 'root' / 'a' / 'v0.mp4' / 'lists'  # below a file
    status, _, err = run(capsys, 'folders', root, '--out', out)
    assert status == 2
    assert err[-1].endswith(f"--out {out}: no folder can be made in {tmp_path / 'root/a/v0.mp4'}")


# --- Something-Something V2, V1 and Jester --------------------------------------------------

STHV2_LABELS = {'Approaching something with your camera': '0',
                'Pushing something from left to right': '1',
                'Pushing something from right to left': '2',
                'Putting something, something and something on the table': '3'}


def write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def sthv2_files(folder, train_entry=None):
    """The four JSON files, as 20BN names them, in `folder`."""
    folder.mkdir()
    train = [{'id': '11', 'label': 'pushing a pen from left to right',
              'template': 'Pushing [something] from left to right', 'placeholders': ['a pen']},
             {'id': '12', 'label': 'putting a cup, a pen and a key on the table',
              'template': 'Putting [something], [something] and [something] on the table',
              'placeholders': ['a cup', 'a pen', 'a key']},
             {'id': '19', 'template': 'Pushing [something] from right to left'},  # no video
             train_entry or {'id': '14', 'template': 'Approaching [something] with your camera'}]
    val = [{'id': '13', 'template': 'Pushing [something] from right to left'}]
    test = [{'id': '15'}, {'id': '16'}]
    return [write_json(folder / f'something-something-v2-{name}.json', data) for name, data in
            (('labels', STHV2_LABELS), ('train', train), ('validation', val), ('test', test))]


def test_sthv2(tmp_path, capsys):
    root = make_tree(tmp_path / '20bn-something-something-v2', bad=['14.webm'])
    for name in ('11', '12', '13', '15'):  # VP9 in WebM, as 20BN ships SSv2
        write_index_video(os.path.join(root, f'{name}.webm'), 3, codec='vp9')
    labels, train, val, test = sthv2_files(tmp_path / 'annotations')
    out = str(tmp_path / 'out')
    status, stdout, err = run(capsys, 'sthv2', root, '--labels', labels, '--train', train,
                              '--val', val, '--test', test, '--out', out)
    assert status == 1
    names = list(STHV2_LABELS)
    assert cut_reasons(err) == [
        *(f"warning: class {names[i]!r} (label {i}) has no video in train" for i in (0, 2)),
        *(f"warning: class {names[i]!r} (label {i}) has no video in val" for i in (0, 1, 3)),
        f'missing: 16.webm ({test}: entry 2 (id 16))',
        f'missing: 19.webm ({train}: entry 3 (id 19))',
        f'unreadable: 14.webm: {BAD}']
    assert stdout[0] == ('train: 2 videos of 2 classes; val: 1 videos of 1 classes; 4 classes '
                         'in all; test: 1 videos without labels')
    assert stdout[-1] == f"predict the test split with: -o INFER.filelist={out}/test.list"
    files = {name: open(os.path.join(out, name)).read().splitlines()
             for name in os.listdir(out)}
    assert files['labels.txt'] == list(STHV2_LABELS)  # in index order
    # the template with brackets and commas is the class of the label with commas
    assert files['train.list'] == ['11.webm 1', '12.webm 3']
    assert files['val.list'] == ['13.webm 2']
    assert files['test.list'] == ['15.webm']
    assert read_list(os.path.join(out, 'test.list'), root, require_label=False) == [
        (os.path.join(root, '15.webm'), None)]
    check_readable(root, out)


def test_sthv2_a_template_that_is_not_a_label_stops_naming_the_entry(tmp_path, capsys):
    root = make_tree(tmp_path / 'videos', other=['11.webm'])  # never opened: it stops first
    labels, train, val, _ = sthv2_files(tmp_path / 'annotations', {
        'id': '14', 'template': 'Pushing [something], [something] from left to right'})
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'sthv2', root, '--labels', labels, '--train', train,
                         '--val', val, '--out', out)
    assert status == 2 and not out.exists()
    assert (f"{train}: entry 4 (id 14): class 'Pushing something, something from left to "
            f"right' is not in {labels}") in err[-1]


def write_frame_folders(root, ids, frames=3):
    """ROOT/<id>/00001.jpg ..., as 20BN ships Something-Something V1 and Jester."""
    for video_id in ids:
        os.makedirs(root / video_id)
        for i in range(1, frames + 1):
            cv2.imwrite(str(root / video_id / f'{i:05d}.jpg'), np.full((8, 8, 3), i, np.uint8))
    return str(root)


@pytest.mark.parametrize('layout', ['sthv1', 'jester'])
def test_sthv1_and_jester(tmp_path, capsys, layout):
    root = write_frame_folders(tmp_path / 'frames', ['1', '2', '3', '5'])
    os.makedirs(tmp_path / 'frames' / '4')  # an empty folder: no frame
    labels = write_text(tmp_path / 'labels.csv',
                        ['Swiping Left', 'Swiping Right', 'Doing other things'])
    train = write_text(tmp_path / 'train.csv', ['1;Swiping Right', '2;Doing other things',
                                                '4;Swiping Left', '9;Swiping Left'])
    val = write_text(tmp_path / 'validation.csv', ['3;Swiping Left'])
    test = write_text(tmp_path / 'test.csv', ['5', '8'])
    out = str(tmp_path / 'out')
    argv = [layout, root, '--labels', labels, '--train', train, '--val', val, '--test', test,
            '--out', out]
    status, stdout, err = run(capsys, *argv)
    assert status == 1
    assert f'missing: 8 ({test}:2)' in err and f'missing: 9 ({train}:4)' in err
    assert any(line.startswith('unreadable: 4: no frames named') for line in err)
    assert stdout[0] == ('train: 2 videos of 2 classes; val: 1 videos of 1 classes; 3 classes '
                         'in all; test: 1 videos without labels')
    read = lambda name: open(os.path.join(out, name)).read().splitlines()  # noqa: E731
    assert read('labels.txt') == ['Swiping Left', 'Swiping Right', 'Doing other things']
    assert read('train.list') == ['1 1', '2 2'] and read('val.list') == ['3 0']
    assert read('test.list') == ['5']  # an id alone on its line is a path, not a label
    assert read_list(os.path.join(out, 'test.list'), root, require_label=False) == [
        (os.path.join(root, '5'), None)]
    check_readable_folders(root, out)
    # the original TSM code's order: sorted names
    run(capsys, *argv, '--label_order', 'sorted')
    assert read('labels.txt') == ['Doing other things', 'Swiping Left', 'Swiping Right']
    assert read('train.list') == ['2 0', '1 2'] and read('val.list') == ['3 1']


def check_readable_folders(root, out):
    """The lists' frame folders open with the reader (frames detected as 00001.jpg)."""
    for split in ('train', 'val'):
        for path, _ in read_list(os.path.join(out, f'{split}.list'), root):
            with open_video(path) as video:
                assert video.template == '{:05d}.jpg' and video.num_frames == 3


@pytest.mark.parametrize('line, words', [
    ('1;Swiping Up', ":1: class 'Swiping Up' is not in "),
    ('1', ':1: expected "id;class", got \'1\''),
])
def test_sthv1_a_class_absent_from_the_labels_stops_naming_the_line(tmp_path, capsys, line,
                                                                      words):
    root = write_frame_folders(tmp_path / 'frames', ['1'])
    labels = write_text(tmp_path / 'labels.csv', ['Swiping Left'])
    train = write_text(tmp_path / 'train.csv', [line])
    val = write_text(tmp_path / 'validation.csv', [])
    out = tmp_path / 'out'
    status, _, err = run(capsys, 'sthv1', root, '--labels', labels, '--train', train,
                         '--val', val, '--out', out)
    assert status == 2 and not out.exists() and f'{train}{words}' in err[-1]
