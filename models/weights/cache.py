"""Where downloaded weights live: one folder per file, keyed by what it was asked for, so
that two URLs ending in the same file name never share a file.

    <cache>/published/<published name>/<file>   whichever mirror served it
    <cache>/urls/<digest of the URLs>/<file>    any other URL
    <cache>/exported/<key>/                     models/deploy/cache.py

The cache is $TSM_WEIGHTS_HOME if set, else ~/.paddle/weights, unless a caller names one.
"""
import contextlib
import fcntl
import hashlib
import logging
import os
import posixpath
import urllib.parse

from .errors import WeightsError

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
PUBLISHED_DIR, URLS_DIR = 'published', 'urls'


def sha256sum(path, chunk_size=CHUNK_SIZE):
    """Hex sha256 of the file at `path`, read in chunks (weight files are large)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir():
    """$TSM_WEIGHTS_HOME if set, else ~/.paddle/weights."""
    return (os.environ.get('TSM_WEIGHTS_HOME')
            or os.path.join(os.path.expanduser('~'), '.paddle', 'weights'))


def cache_folder(cache_dir=None):
    """The cache folder: `cache_dir`, or the default one when it is None or ''."""
    return os.path.expanduser(cache_dir or default_cache_dir())


def cache_path(urls, filename=None, cache_dir=None, name=None):
    """Where fetch keeps the file of `urls` (a list of mirrors): in the folder of the
    published `name`, else in one named by a digest of the URLs, so the key is the whole
    URL and not its file name; the filename defaults to the first URL's basename."""
    filename = filename or _url_basename(urls[0])
    _check_plain(filename, 'filename')
    if name is not None:
        _check_plain(name, 'name')
        return os.path.join(cache_folder(cache_dir), PUBLISHED_DIR, name, filename)
    key = hashlib.sha256('\n'.join(urls).encode()).hexdigest()[:16]
    return os.path.join(cache_folder(cache_dir), URLS_DIR, key, filename)


def _check_plain(value, what):
    if os.path.basename(value) != value or value in ('', '.', '..'):
        raise ValueError(f'{what} {value!r} must be a plain file name, not a path')


def warn_of_old_layout(final, cache_dir):
    """Earlier versions kept every file at <cache>/<file name>, so a file there may be
    another URL's of the same name: it is named, never used."""
    old = os.path.join(cache_folder(cache_dir), os.path.basename(final))
    if os.path.isfile(old):
        log.warning('%s, from an earlier cache layout keyed by file name alone, is not used: '
                    'it may be the file of another URL of that name. Move it to %s if it is '
                    'this one, else delete it', old, final)


@contextlib.contextmanager
def file_lock(folder):
    """Hold the lock of one cached file's folder: the processes of a multi-GPU job all ask
    for the same weights at start, and one download must not write the .part file another
    is writing. The others wait, then find the file cached; a process that wants another
    file does not wait. (flock on the folder: no lock file left.)"""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _url_basename(url):
    name = urllib.parse.unquote(posixpath.basename(urllib.parse.urlparse(url).path))
    if not name:
        raise WeightsError(f'the URL {url} names no file (its path ends without a file '
                           f'name): give the URL of the weight file itself')
    return name
