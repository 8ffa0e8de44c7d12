"""outputs.replacing: a file is whole or as it was, whatever stops its writer."""
import os

import pytest

import outputs


def test_a_file_is_replaced_whole_or_left_as_it_was(tmp_path):
    path = str(tmp_path / 'TSM_eval.json')
    with outputs.replacing(path) as f:
        f.write('{"top1": 0.5}')
    with pytest.raises(KeyboardInterrupt):  # stopped halfway through the next write
        with outputs.replacing(path) as f:
            f.write('{"top1": 0.')
            raise KeyboardInterrupt
    assert open(path).read() == '{"top1": 0.5}'
    assert os.listdir(tmp_path) == ['TSM_eval.json']  # no temporary left


def test_a_write_that_fails_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / 'TSM_timeline.json')

    def full(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    with pytest.raises(outputs.OutputError, match=f'{path}: cannot write .No space left'):
        with outputs.replacing(path) as f:
            monkeypatch.setattr(f, 'write', full)
            f.write('{}')
    assert os.listdir(tmp_path) == []
