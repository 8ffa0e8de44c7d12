"""Download weight files into the local cache (models/weights/cache.py): mirrors, resume,
checksum, a bounded time per mirror, atomic publish.

A file appears under its final name only once it has been received in full and verified,
so an interrupted or failed run never leaves something that looks like usable weights.
Bytes are received into `<name>.part` beside it; a later call resumes that file.
"""
import http.client
import logging
import os
import time
import urllib.error
import urllib.request

from tqdm import tqdm

from .cache import CHUNK_SIZE, cache_path, file_lock, sha256sum, warn_of_old_layout

log = logging.getLogger(__name__)

# A mirror must average MIN_RATE bytes a second after its first GRACE seconds: the socket
# timeout bounds each read only, and a server trickling a byte a second never trips it.
MIN_RATE, GRACE = 10 * 1024, 60.0
# Beside the final name: a download its check rejected, kept since the fault may be the
# caller's (a config for another model), and checked first by the next fetch.
REJECTED = '.rejected'
# Worth asking the same mirror again; any other 4xx means this mirror lacks the file.
_TRANSIENT_STATUS = (408, 429)


class DownloadError(RuntimeError):
    """Every mirror failed; the message names each URL's error and where to put the file."""


class _Retry(Exception):
    """This attempt failed in a way the same mirror may not repeat (network, truncation)."""


class _NextMirror(Exception):
    """This mirror cannot give a good file (404/403, contents rejected): try the next one."""


class _Mismatch(_Retry):
    """The whole file arrived with another sha256 than expected: a transfer error, or a
    mirror, or the expected checksum itself, that is wrong."""

    def __init__(self, message, actual):
        super().__init__(message)
        self.actual = actual


def fetch(urls, filename=None, sha256=None, cache_dir=None, verify=None,
          retries=3, backoff=1.0, timeout=20, progress=None, name=None, min_rate=MIN_RATE,
          grace=GRACE):
    """Path of the cached file of `urls` (see cache_path), downloading it from the first
    mirror that works.

    urls: one URL or a list of mirrors tried in turn. filename: defaults to the first URL's
    basename. name: the published name the file is kept under. sha256: expected hex
    digest, checked on the cached file and on every download.
    verify(path): optional check of a downloaded file before it is published (it gets the
    `.part` path, or that of a file it rejected before, and raises if the file is unusable).
    retries: further attempts per mirror after the first, `backoff * 2**k` seconds apart, on
    network errors, timeouts, truncated bodies, 5xx and checksum mismatches (the same wrong
    checksum twice ends the mirror's attempts). timeout: seconds per socket operation (a
    mirror that gives no answer within it is not asked again: the next one is tried).
    min_rate, grace: a mirror that has sent fewer than min_rate * (t - grace) bytes t
    seconds after its first request is abandoned for the next one, which bounds the whole
    download at grace + size / min_rate seconds a mirror. progress: show a bar; None shows
    it only when stderr is a terminal.
    Raises DownloadError when every mirror fails.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError('fetch() needs at least one URL')
    final = cache_path(urls, filename, cache_dir, name)
    sha256 = sha256.lower() if sha256 else None
    folder = os.path.dirname(final)
    os.makedirs(folder, exist_ok=True)
    with file_lock(folder):
        if _is_cached(final, sha256, urls) or _passes_now(final, verify):
            return final
        warn_of_old_layout(final, cache_dir)
        return _fetch_any(urls, final, sha256, verify, retries, backoff, timeout, progress,
                          (min_rate, grace))


def _fetch_any(urls, final, sha256, verify, retries, backoff, timeout, progress, pace):
    part = final + '.part'
    errors = []
    for url in urls:
        error = _fetch_from(url, part, sha256, verify, retries, backoff, timeout, progress,
                            _Pace(*pace))
        if error is None:
            os.replace(part, final)
            log.info('saved %s', final)
            return final
        errors.append((url, error))
    raise DownloadError(_failure_message(final, part, sha256, errors)) from errors[-1][1]


def _is_cached(final, sha256, urls):
    if not os.path.exists(final):
        return False
    if sha256 is None:
        return True
    actual = sha256sum(final)
    if actual == sha256:
        return True
    # Left in place until a verified download replaces it: it may be a file placed by hand.
    log.warning('cached %s has sha256 %s, not the %s expected of %s; downloading it again',
                final, actual, sha256, ' or '.join(urls))
    return False


class _Pace:
    """The time one mirror is given: `min_rate` bytes a second on average, counted from its
    first request, after `grace` seconds."""

    def __init__(self, min_rate, grace):
        self.min_rate, self.grace = min_rate, grace
        self.start, self.received = time.monotonic(), 0

    def add(self, count):
        """Count `count` more bytes received; _NextMirror when behind."""
        self.received += count
        elapsed = time.monotonic() - self.start
        if self.received < self.min_rate * (elapsed - self.grace):
            raise _NextMirror(f'too slow: {self.received} bytes in {elapsed:.1f} s, fewer '
                              f'than {self.min_rate} bytes/s after the first {self.grace} s')


def _fetch_from(url, part, sha256, verify, retries, backoff, timeout, progress, pace):
    """Try one mirror 1 + retries times within its `pace`; None once `part` holds a verified
    file, else the last error."""
    error = mismatched = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            pace.add(0)
            _download(url, part, timeout, progress, pace)
            _check(part, sha256, verify)
            return None
        except _NextMirror as exc:
            log.warning('%s: %s', url, exc)
            return exc
        except _Mismatch as exc:
            if exc.actual == mismatched:
                error = _set_aside(part, exc.actual, sha256)
                log.warning('%s: %s', url, error)
                return error
            mismatched = exc.actual
            os.remove(part)
            log.warning('%s: attempt %d of %d failed: %s', url, attempt + 1, retries + 1, exc)
            error = exc
        except _Retry as exc:
            log.warning('%s: attempt %d of %d failed: %s', url, attempt + 1, retries + 1, exc)
            error = exc
    return error


def _download(url, part, timeout, progress, pace):
    """Bring `part` up to the whole file, resuming from its current size."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header('Range', f'bytes={offset}-')
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _check_unsatisfiable(exc, part, offset)
            return
        if exc.code >= 500 or exc.code in _TRANSIENT_STATUS:
            raise _Retry(f'HTTP {exc.code} {exc.reason}') from exc
        raise _NextMirror(f'HTTP {exc.code} {exc.reason}') from exc
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, 'reason', exc)
        if isinstance(reason, TimeoutError):
            # Connected but no answer at all: asking this server again would only wait as
            # long again, so the next mirror is tried (a stall after some bytes is resumed).
            raise _NextMirror(f'no answer within {timeout} s') from exc
        raise _Retry(f'cannot connect: {reason}') from exc
    with response:
        if response.status == 206:
            start, _ = _parse_content_range(response.headers.get('Content-Range'))
            if start != offset:
                os.remove(part)
                raise _Retry(f'asked for bytes from {offset}, server sent from {start}; '
                             f'restarting from zero')
            mode = 'ab'
        else:
            if offset:
                log.info('%s ignored the range request; restarting from zero', url)
            offset, mode = 0, 'wb'
        _stream(response, part, mode, offset, progress, pace)


def _check_unsatisfiable(exc, part, offset):
    """416 on a resume: the part may already be whole (a run stopped before publishing it);
    the checks that follow decide. A size that disagrees with the server's is discarded."""
    _, total = _parse_content_range(exc.headers.get('Content-Range'))
    if total is not None and total != offset:
        os.remove(part)
        raise _Retry(f'server has {total} bytes but the partial file {part} has {offset}; '
                     f'restarting from zero')


def _parse_content_range(value):
    """'bytes START-END/TOTAL' or 'bytes */TOTAL' -> (START or None, TOTAL or None)."""
    try:
        span, total = value.split(' ', 1)[1].split('/')
        start = None if span == '*' else int(span.split('-')[0])
        return start, None if total == '*' else int(total)
    except (AttributeError, IndexError, ValueError):
        return None, None


def _stream(response, part, mode, offset, progress, pace):
    """Append the response body to `part`; whatever arrived stays there for a resume."""
    length = response.headers.get('Content-Length')
    expected = offset + int(length) if length and length.isdigit() else None
    done = offset
    bar = tqdm(total=expected, initial=offset, unit='B', unit_scale=True, unit_divisor=1024,
               desc=os.path.basename(part)[:-len('.part')],
               disable=None if progress is None else not progress)
    with open(part, mode) as out, bar:
        while True:
            try:
                # read1: whatever has arrived, so bytes before a stall are kept.
                chunk = response.read1(CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                raise _Retry(f'connection lost after {done} bytes: {exc!r}') from exc
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            bar.update(len(chunk))
            pace.add(len(chunk))
    # http.client returns an empty read, not an error, when the peer closes early.
    if expected is not None and done < expected:
        raise _Retry(f'body ended at byte {done} of {expected}')


def _passes_now(final, verify):
    """Publish the file an earlier check rejected if it passes `verify` now."""
    rejected = final + REJECTED
    if verify is None or not os.path.isfile(rejected):
        return False
    try:
        verify(rejected)
    except Exception as exc:  # as in _check: any failure means not this file
        log.info('%s is still rejected (%r); downloading it again', rejected, exc)
        return False
    os.replace(rejected, final)
    log.info('%s, rejected before, passes its check now: saved %s', rejected, final)
    return True


def _check(part, sha256, verify):
    """Raise when `part` is not the file wanted; one that `verify` rejects is moved aside
    (REJECTED)."""
    final = part[:-len('.part')]
    if sha256 is not None:
        actual = sha256sum(part)
        if actual != sha256:
            raise _Mismatch(f'{part}: sha256 {actual} does not match the expected {sha256}',
                            actual)
    if verify is not None:
        try:
            verify(part)
        except Exception as exc:
            if sha256 is not None:
                # The file is the one expected, byte for byte: the caller's settings are what
                # is wrong. It is kept, and the caller's error stands as it is.
                os.replace(part, final)
                raise
            # Otherwise the check may fail in any way (a loader error, a shape mismatch);
            # each means the same thing here: this file must not be published.
            os.replace(part, final + REJECTED)
            raise _NextMirror(f'{os.path.basename(final)} rejected by '
                              f'{getattr(verify, "__name__", verify)}: {exc!r}; kept in '
                              f'{final + REJECTED}, which the next fetch checks first'
                              ) from exc


def _set_aside(part, actual, sha256):
    """The same whole file received twice, with the same unexpected sha256: no transfer
    error, so asking again is pointless, and it is kept, not deleted, since the expected
    checksum may be what is wrong. Returns the _NextMirror that says where it is."""
    final = part[:-len('.part')]
    kept = f'{final}.sha256-{actual[:16]}'
    os.replace(part, kept)
    return _NextMirror(f'sent the same file twice, with sha256 {actual} where {sha256} is '
                       f'expected; it is kept in {kept}: should the expected checksum be the '
                       f'wrong one, check that file and move it to {final}')


def _failure_message(final, part, sha256, errors):
    name = os.path.basename(final)
    lines = [f'could not download {name}; tried {len(errors)} URL(s):']
    lines += [f'  {url}: {error}' for url, error in errors]
    hint = f'Download it by hand and place it at {final}'
    lines.append(hint + (f' (expected sha256 {sha256}).' if sha256 else '.'))
    if os.path.exists(part):
        lines.append(f'The {os.path.getsize(part)} bytes received so far are kept in {part}; '
                     f'the next fetch resumes from there.')
    return '\n'.join(lines)
