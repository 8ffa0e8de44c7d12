"""reader.loader.make_loader: an item's exception ends the loop with that exception, and the
workers die with the process that iterates the loader.

The exit behaviour is checked on child processes that iterate a loader, as a training run
does: with a timeout (Paddle's own single-process loader waits forever after an error) and
killed with SIGKILL (Paddle's workers outlived that for more than 90 s).
"""
import os
import signal
import subprocess
import sys
import time

import pytest

import reader.dataset
from reader import make_loader
from reader.loader import WorkerTraceback
from tests.videos import write_index_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Iterates make_loader over LIST with WORKERS workers. The transform raises ValueError on the
# 40-pixel-high video. With --hold it prints 'ready' after the first batch and waits there.
SCRIPT = """
import sys, time
import reader.dataset
from reader import make_loader

listfile, workers, hold = sys.argv[1], int(sys.argv[2]), '--hold' in sys.argv
test_transform = reader.dataset.test_transform

def transform(frames, *args):
    if frames.shape[1] == 40:
        raise ValueError(f'no transform for frames of {frames.shape[1]} rows')
    return test_transform(frames, *args)

reader.dataset.test_transform = transform
cfg = {'MODEL': {'num_classes': 2, 'seg_num': 4},
       'DATA': {'data_root': '', 'short_size': 32, 'target_size': 32, 'dense_sample': False, 'resize': 'cv2',
                'mean': [0.0] * 3, 'std': [1.0] * 3, 'num_workers': workers, 'max_retries': 2,
                'min_decoded_fraction': 0.5},
       'VALID': {'filelist': listfile, 'batch_size': 2}}
for batch in make_loader(cfg, 'valid'):
    if hold:
        print('ready', flush=True)
        time.sleep(120)
print('the loop ended without an error')
"""


def write_list(folder, items, bad):
    """A list of `items` lines naming good.mp4, except line `bad` (0-based, or None): bad.mp4,
    whose 40 rows the scripts' transform refuses."""
    good = write_index_video(str(folder / 'good.mp4'), 12)
    broken = write_index_video(str(folder / 'bad.mp4'), 12, width=48, height=40)
    path = folder / f'{items}.list'
    path.write_text(''.join(f'{broken if i == bad else good} {i % 2}\n' for i in range(items)))
    return str(path)


def run_script(tmp_path, *args, **popen):
    script = tmp_path / 'iterate.py'
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO)
    return [sys.executable, str(script), *map(str, args)], dict(env=env, cwd=REPO, **popen)


@pytest.mark.parametrize('workers,items,bad', [(2, 6, 3), (2, 200, 150), (0, 6, 3)])
def test_an_item_exception_ends_the_process_with_its_message(tmp_path, workers, items, bad):
    argv, kwargs = run_script(tmp_path, write_list(tmp_path, items, bad), workers)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)
    assert result.returncode == 1
    assert 'the loop ended' not in result.stdout
    # the last line of the traceback, the one the loop raised
    last = result.stderr.rstrip().splitlines()[-1]
    assert last == 'ValueError: no transform for frames of 40 rows'


# Paddle also re-raises the exception in its reader thread, where pytest sees it unhandled
@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')
def test_the_loop_gets_the_worker_exception_and_where_it_was_raised(tmp_path, monkeypatch):
    test_transform = reader.dataset.test_transform

    def transform(frames, *args):
        if frames.shape[1] == 40:
            raise ValueError('no transform for frames of 40 rows')
        return test_transform(frames, *args)

    monkeypatch.setattr(reader.dataset, 'test_transform', transform)  # the workers fork after
    def cfg(listfile):
        return {'MODEL': {'num_classes': 2, 'seg_num': 4},
                'DATA': {'data_root': '', 'short_size': 32, 'target_size': 32,
                         'dense_sample': False, 'resize': 'cv2', 'mean': [0.0] * 3, 'std': [1.0] * 3,
                         'num_workers': 2, 'max_retries': 2, 'min_decoded_fraction': 0.5},
                'VALID': {'filelist': listfile, 'batch_size': 2}}

    with pytest.raises(ValueError, match='^no transform for frames of 40 rows$') as info:
        for _ in make_loader(cfg(write_list(tmp_path, 8, 5)), 'valid'):
            pass
    where = str(info.value.__cause__)
    assert isinstance(info.value.__cause__, WorkerTraceback)
    assert 'in loader worker' in where and 'in transform' in where
    # the next loader is not disturbed by the failed one
    assert len(list(make_loader(cfg(write_list(tmp_path, 4, None)), 'valid'))) == 2


def children(pid):
    """PIDs of the live child processes of `pid` (Linux /proc)."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit() and _alive(name) and _parent(name) == pid:
            found.append(int(name))
    return found


def _stat(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            # the fields after the command name, which may hold spaces
            return f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None


def _alive(pid):
    """Running, not a zombie (an orphan is reaped by whoever adopts it, which may be slow)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != 'Z'


def _parent(pid):
    fields = _stat(pid)
    return fields and int(fields[1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='prctl and /proc are Linux')
def test_workers_die_with_a_killed_parent(tmp_path):
    argv, kwargs = run_script(tmp_path, write_list(tmp_path, 40, None), 2, '--hold')
    workers = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          **kwargs) as process:
        try:
            assert process.stdout.readline().strip() == 'ready'
            workers = children(process.pid)
            assert len(workers) == 2
            process.kill()  # SIGKILL: no Python code of the parent runs
            process.wait()
            deadline = time.monotonic() + 5
            while any(_alive(w) for w in workers) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [w for w in workers if _alive(w)] == []
        finally:
            process.kill()
            for worker in workers:  # only when the test failed: do not leave them running
                if _alive(worker):
                    os.kill(worker, signal.SIGKILL)
