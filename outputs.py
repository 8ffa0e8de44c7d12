"""Where the scripts write: output folders and files checked at start-up, before any model is
built or video decoded, and a training folder held by one run at a time.

A folder is checked by writing a small file there and removing it: a read-only mount, a
missing permission or a file standing where the folder should be are found in the first
second, not after an hour of work. A write that fails later (a disk filling up) is named by
`writing`.
"""
import contextlib
import fcntl
import logging
import os
import socket

log = logging.getLogger(__name__)

LOCK_FILE = '.lock'


class OutputError(Exception):
    """An output folder or file that cannot be written; the message names it."""


def _probe(folder):
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, f'.write-probe-{os.getpid()}')
    with open(probe, 'w') as f:
        f.write('probe')
    os.remove(probe)


def writable_folder(folder, what):
    """Create `folder` and write a probe there; OutputError naming `what` (the key or flag
    that set it) and the folder when that fails."""
    try:
        _probe(folder)
    except OSError as e:
        raise OutputError(f'{what} {folder}: cannot write there ({e.strerror})') from None


def writable_file(path, what):
    """The folder of the output file `path`, checked as writable_folder's; a folder standing
    at `path` itself is refused too."""
    if os.path.isdir(path):
        raise OutputError(f'{what} {path}: a folder, expected the name of a file to write')
    try:
        _probe(os.path.dirname(path) or '.')
    except OSError as e:
        raise OutputError(f'{what} {path}: cannot write there ({e.strerror})') from None


@contextlib.contextmanager
def writing(path):
    """An OSError inside (a full disk, a lost mount) as an OutputError naming `path`."""
    try:
        yield
    except OSError as e:
        raise OutputError(f'{path}: cannot write ({e.strerror or e})') from None


@contextlib.contextmanager
def replacing_path(path):
    """The name of a temporary file beside `path` for the block to write (with `path`'s
    extension: some writers choose the format by it), renamed to `path` when the block ends
    and removed when it fails: a reader, or a run killed midway, never finds half a file
    there. An OSError inside is an OutputError naming `path`, as in `writing`."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f'.{stem}.tmp-{os.getpid()}{ext}')
    try:
        with writing(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def replacing(path, newline=None, encoding=None, flushed=False):
    """A text file open for writing under a temporary name beside `path`, renamed to `path`
    when the block ends (see replacing_path); `flushed`: on disk before the rename."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f'.{name}.tmp-{os.getpid()}')
    try:
        with writing(path):
            with open(tmp, 'w', newline=newline, encoding=encoding) as f:
                yield f
                if flushed:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def locked(folder, what):
    """Hold `folder` for this process: an exclusive flock on folder/.lock, which records the
    holder's pid and host. A second holder is refused at once with an OutputError naming
    them; the OS drops the lock when the process ends, however it ends, so a killed run
    leaves nothing to clean."""
    f = open(os.path.join(folder, LOCK_FILE), 'a+')
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'a process that has not written its pid yet'
            raise OutputError(f'{what} {folder}: in use by another run ({holder}); wait for '
                              f'it to end or give this run another folder') from None
        except OSError as e:  # a file system without locks: the run goes on, unguarded
            log.warning('%s %s: cannot be locked (%s): a second run on it would not be '
                        'stopped', what, folder, e.strerror)
        f.seek(0)
        f.truncate()
        f.write(f'pid {os.getpid()} on {socket.gethostname()}\n')
        f.flush()
        yield
    finally:
        f.close()
