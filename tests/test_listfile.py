import os

import pytest

from reader.listfile import ListFileError, read_label_names, read_list, unlistable_reason


def write(tmp_path, text, name='train.list'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_paths_labels_comments_and_spaces(tmp_path):
    path = write(tmp_path, '# kinetics subset\n'
                           'a/x.mp4 3\n'
                           '\n'
                           '   \n'
                           'b/with space.mp4\t12\n'
                           '/abs/y.avi 0\n')
    assert read_list(path) == [(str(tmp_path / 'a/x.mp4'), 3),
                               (str(tmp_path / 'b/with space.mp4'), 12),
                               ('/abs/y.avi', 0)]


def test_data_root(tmp_path):
    path = write(tmp_path, 'a/x.mp4 3\n/abs/y.avi 1\n')
    assert read_list(path, data_root='/data/k400') == [('/data/k400/a/x.mp4', 3),
                                                       ('/abs/y.avi', 1)]


def test_relative_list_path_resolves_to_its_folder(tmp_path, monkeypatch):
    write(tmp_path, 'x.mp4 1\n')
    monkeypatch.chdir(tmp_path.parent)
    assert read_list(os.path.join(tmp_path.name, 'train.list')) == [(str(tmp_path / 'x.mp4'), 1)]


def test_unlabelled_lines_for_inference(tmp_path):
    path = write(tmp_path, 'clip one.mp4\nb.mp4 7\nc.mp4 cat\n')
    assert read_list(path, require_label=False) == [(str(tmp_path / 'clip one.mp4'), None),
                                                    (str(tmp_path / 'b.mp4'), 7),
                                                    (str(tmp_path / 'c.mp4 cat'), None)]


@pytest.mark.parametrize('line,reason', [
    ('a.mp4', 'integer label'),
    ('a.mp4 cat', 'integer label'),
    ('a.mp4 1.5', 'integer label'),
    ('7', 'integer label'),  # a label with no path
    ('a.mp4 -1', '>= 0'),
    ('a.mp4 400', 'num_classes=400'),
])
def test_malformed_lines_name_file_line_and_text(tmp_path, line, reason):
    path = write(tmp_path, f'# header\nok.mp4 1\n{line}\n')
    with pytest.raises(ListFileError) as err:
        read_list(path, num_classes=400)
    message = str(err.value)
    assert f'{path}:3:' in message and repr(line) in message and reason in message


def test_negative_label_rejected_without_require_label(tmp_path):
    path = write(tmp_path, 'a.mp4 -3\n')
    with pytest.raises(ListFileError, match=r':1: label must be >= 0'):
        read_list(path, require_label=False)


def test_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    path = tmp_path / 'train.list'
    path.write_bytes('\ufeffa/x.mp4 3\r\nb.mp4 1\r\n'.encode('utf-8'))
    assert read_list(str(path)) == [(str(tmp_path / 'a/x.mp4'), 3), (str(tmp_path / 'b.mp4'), 1)]


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    path = tmp_path / 'train.list'
    path.write_bytes('\ufeff# caf\u00e9 clips\nok.mp4 1\n'.encode('utf-8')
                     + 'caf\u00e9.mp4 2\n'.encode('latin-1'))
    with pytest.raises(ListFileError) as err:
        read_list(str(path))
    message = str(err.value)
    assert f'{path}:3: byte 0xe9 at column 4 is not UTF-8' in message
    assert repr(b'caf\xe9.mp4 2') in message


def test_missing_list_file(tmp_path):
    missing = str(tmp_path / 'nope.list')
    with pytest.raises(ListFileError, match='cannot read list file .*nope.list'):
        read_list(missing)
    assert issubclass(ListFileError, ValueError)


@pytest.mark.parametrize('content, expected', [
    (None, 'cannot read INFER.label_file {path}: No such file or directory'),
    (b'left\ncaf\xe9\n', 'INFER.label_file {path}:2: byte 0xe9 at column 4 is not UTF-8'),
    (b'left\nright\n', 'INFER.label_file {path} has 2 names but MODEL.num_classes is 3')])
def test_label_file_problems_name_the_key(tmp_path, content, expected):
    path = tmp_path / 'labels.txt'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ListFileError) as err:
        read_label_names(str(path), 3)
    assert str(err.value).startswith(expected.format(path=path))
    with pytest.raises(ListFileError, match='^(cannot read )?TEST.names '):
        read_label_names(str(path), 3, key='TEST.names')


def test_a_path_may_start_with_a_hash_a_comment_has_a_space(tmp_path):
    path = write(tmp_path, '# a comment\n#\n#\tanother\n#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi 3\n'
                           'clap/#21_x.avi 3\n')
    assert read_list(path) == [(str(tmp_path / '#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi'), 3),
                               (str(tmp_path / 'clap/#21_x.avi'), 3)]


@pytest.mark.parametrize('name, reason', [
    ('a/x\n9.mp4', 'line break'), ('a/x\r.mp4', 'line break'), (' a/x.mp4', 'start or end'),
    ('a/x.mp4\t', 'start or end'), ('# a/x.mp4', 'comment'), ('a/\udcff.mp4', 'not UTF-8')])
def test_names_a_list_line_cannot_carry(tmp_path, name, reason):
    assert reason in unlistable_reason(name)
    # what such a line would be read back as: not the name
    path = tmp_path / 'x.list'
    path.write_bytes(f'{name} 1\n'.encode('utf-8', 'surrogateescape'))
    try:
        read = read_list(str(path), data_root='/r')
    except ListFileError:
        read = None
    assert read != [(f'/r/{name}', 1)]
    assert unlistable_reason('#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi') is None
    assert unlistable_reason('a b/c d.mp4') is None
