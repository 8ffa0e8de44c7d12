"""fetch() against a real HTTP server on 127.0.0.1 that can fail in chosen ways."""
import hashlib
import http.server
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from models.weights import cache, download
from models.weights.cache import sha256sum
from models.weights.download import DownloadError, fetch

from tests.commands import ROOT

NAME = 'weights.pdparams'
# 200 000 deterministic bytes: several read chunks, and no run of equal bytes.
DATA = b''.join(hashlib.sha256(i.to_bytes(4, 'big')).digest() for i in range(6250))
DIGEST = hashlib.sha256(DATA).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        origin = self.server.origin
        action = origin.record(self.path, self.headers.get('Range'))
        data = origin.files.get(self.path)
        if data is None or action == '404':
            return self.send_error(404)
        if action == '500':
            return self.send_error(500)
        if action == 'corrupt':
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        start = 0
        use_range = self.headers.get('Range') and action != 'ignore_range'
        if use_range:
            start = int(self.headers['Range'].split('=')[1].rstrip('-'))
            if start >= len(data):
                self.send_response(416)
                self.send_header('Content-Range', f'bytes */{len(data)}')
                self.send_header('Content-Length', '0')
                return self.end_headers()
        body = data[start:]
        self.send_response(206 if use_range else 200)
        if use_range:
            self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if action == 'trickle':
            return self._trickle(body)
        if isinstance(action, tuple):
            # ('drop', K): announce the whole body, send K bytes, close the connection.
            # ('stall', K): send K bytes, then go silent until the test ends.
            kind, count = action
            self.wfile.write(body[:count])
            self.wfile.flush()
            if kind == 'stall':
                origin.released.wait(5)
            return
        self.wfile.write(body)

    def _trickle(self, body):
        """A byte every 20 ms (50 bytes/s) until the client leaves or the test ends."""
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                if self.server.origin.released.wait(0.02):
                    return
        except OSError:
            pass


class Origin:
    """A local server: files by URL path, a per-path list of actions (one per request,
    'ok' once used up) and the (path, Range header) of every request received."""

    def __init__(self):
        self.files = {'/' + NAME: DATA}
        self.plans = {}
        self.requests = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self._httpd.origin = self
        self.base = f'http://127.0.0.1:{self._httpd.server_address[1]}'
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def url(self, name=NAME):
        return f'{self.base}/{name}'

    def record(self, path, range_header):
        with self._lock:
            self.requests.append((path, range_header))
            plan = self.plans.get(path)
            return plan.pop(0) if plan else 'ok'

    def close(self):
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def origin(monkeypatch):
    for var in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def sleeps(monkeypatch):
    """Backoff delays requested by fetch(), recorded instead of slept."""
    delays = []
    monkeypatch.setattr(download.time, 'sleep', delays.append)
    return delays


def _fetch(origin_urls, folder, **kwargs):
    kwargs.setdefault('backoff', 0)
    kwargs.setdefault('progress', False)
    return fetch(origin_urls, cache_dir=str(folder), **kwargs)


def _cached(origin_urls, folder):
    """Where fetch keeps the file of these URLs in the cache `folder`."""
    urls = [origin_urls] if isinstance(origin_urls, str) else origin_urls
    return cache.cache_path(urls, cache_dir=str(folder))


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def _placed(origin, folder):
    """The cache path of the origin's file, its folder made as fetch makes it."""
    path = _cached(origin.url(), folder)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _part(origin, folder):
    return _placed(origin, folder) + '.part'


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def test_sha256sum_matches_hashlib_across_chunks(tmp_path):
    _write(tmp_path / 'f', DATA)
    assert sha256sum(str(tmp_path / 'f'), chunk_size=4096) == DIGEST


def test_fresh_download(origin, tmp_path):
    path = _fetch(origin.url(), tmp_path / 'cache', sha256=DIGEST.upper())
    assert path == _cached(origin.url(), tmp_path / 'cache')
    assert os.path.basename(path) == NAME
    assert _read(path) == DATA
    assert os.listdir(os.path.dirname(path)) == [NAME]
    assert origin.requests == [('/' + NAME, None)]


def test_cached_file_makes_no_request(origin, tmp_path):
    first = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    second = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    third = _fetch([origin.url()], tmp_path)
    assert first == second == third
    assert len(origin.requests) == 1


def test_cache_dir_defaults_to_env(origin, tmp_path, monkeypatch):
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(tmp_path / 'new' / 'home'))
    path = fetch(origin.url(), backoff=0, progress=False)
    assert path == _cached(origin.url(), tmp_path / 'new' / 'home')
    assert path.startswith(str(tmp_path / 'new' / 'home' / 'urls') + os.sep)
    assert _read(path) == DATA


def test_existing_part_is_resumed(origin, tmp_path):
    _write(_part(origin, tmp_path), DATA[:50000])
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    assert origin.requests == [('/' + NAME, 'bytes=50000-')]
    assert _read(path) == DATA


def test_dropped_connection_resumes_from_received_offset(origin, tmp_path, sleeps):
    origin.plans['/' + NAME] = [('drop', 70000)]
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST, backoff=0.25)
    assert origin.requests == [('/' + NAME, None), ('/' + NAME, 'bytes=70000-')]
    assert sleeps == [0.25]
    assert _read(path) == DATA
    assert not os.path.exists(path + '.part')


def test_stalled_transfer_times_out_and_resumes(origin, tmp_path):
    origin.plans['/' + NAME] = [('stall', 40000)]
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST, timeout=0.3)
    assert origin.requests == [('/' + NAME, None), ('/' + NAME, 'bytes=40000-')]
    assert _read(path) == DATA


def test_server_error_is_retried_with_growing_backoff(origin, tmp_path, sleeps):
    origin.plans['/' + NAME] = ['500', '500']
    path = _fetch(origin.url(), tmp_path, backoff=0.5, retries=2)
    assert len(origin.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert _read(path) == DATA


def test_corrupt_download_is_rejected_and_fetched_again(origin, tmp_path):
    origin.plans['/' + NAME] = ['corrupt']
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    # The bad file is discarded, so the second request starts from zero.
    assert origin.requests == [('/' + NAME, None), ('/' + NAME, None)]
    assert _read(path) == DATA


def test_corrupt_cached_file_is_fetched_again(origin, tmp_path, caplog):
    _write(_placed(origin, tmp_path), b'not the weights')
    with caplog.at_level(logging.WARNING, logger=download.__name__):
        path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    assert _read(path) == DATA
    assert len(origin.requests) == 1
    assert f'not the {DIGEST} expected of {origin.url()}' in caplog.text


def test_404_moves_to_next_mirror_at_once(origin, tmp_path, sleeps):
    urls = [origin.url('gone/' + NAME), origin.url()]
    path = _fetch(urls, tmp_path, sha256=DIGEST, backoff=1.0)
    assert origin.requests == [('/gone/' + NAME, None), ('/' + NAME, None)]
    assert sleeps == []
    assert _read(path) == DATA


def _closed_port_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/{NAME}'


def test_all_mirrors_dead(origin, tmp_path, sleeps):
    urls = [origin.url('gone/' + NAME), _closed_port_url()]
    with pytest.raises(DownloadError) as info:
        _fetch(urls, tmp_path, sha256=DIGEST, retries=2, backoff=0.5)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert f'{urls[0]}: HTTP 404' in message
    assert f'{urls[1]}: cannot connect' in message
    assert f'place it at {_cached(urls, tmp_path)} (expected sha256 {DIGEST})' in message
    assert 'kept in' not in message
    assert len(origin.requests) == 1
    assert sleeps == [0.5, 1.0]
    assert os.listdir(os.path.dirname(_cached(urls, tmp_path))) == []


def test_silent_server_is_asked_once_then_the_next_mirror(origin, tmp_path, sleeps):
    """A server that accepts the connection and never answers costs one timeout, not one
    per retry: asking it again would wait as long again."""
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
    try:
        url = f'http://127.0.0.1:{silent.getsockname()[1]}/{NAME}'
        start = time.monotonic()
        with pytest.raises(DownloadError) as info:
            _fetch([url], tmp_path, retries=3, timeout=0.5)
        assert time.monotonic() - start < 3
        assert f'{url}: no answer within 0.5 s' in str(info.value)
        assert sleeps == []
        path = _fetch([url, origin.url()], tmp_path, sha256=DIGEST, retries=3, timeout=0.5)
        assert _read(path) == DATA
    finally:
        silent.close()


def test_repeated_truncation_keeps_part_for_a_later_call(origin, tmp_path):
    origin.plans['/' + NAME] = [('drop', 30000)] * 3
    with pytest.raises(DownloadError) as info:
        _fetch(origin.url(), tmp_path, sha256=DIGEST, retries=2)
    part = _part(origin, tmp_path)
    assert f'body ended at byte 90000 of {len(DATA)}' in str(info.value)
    assert f'90000 bytes received so far are kept in {part}' in str(info.value)
    assert os.path.getsize(part) == 90000
    assert not os.path.exists(_cached(origin.url(), tmp_path))
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    assert origin.requests[-1] == ('/' + NAME, 'bytes=90000-')
    assert _read(path) == DATA


def test_verify_callback_sees_the_file_before_it_is_published(origin, tmp_path):
    seen = []
    path = _fetch(origin.url(), tmp_path, verify=lambda p: seen.append((p, _read(p))))
    assert seen == [(path + '.part', DATA)]


def test_verify_rejection_publishes_nothing(origin, tmp_path):
    def check_shapes(path):
        raise ValueError('fc.weight has shape [2048, 10], expected [2048, 400]')

    with pytest.raises(DownloadError) as info:
        _fetch(origin.url(), tmp_path, verify=check_shapes)
    message = str(info.value)
    assert f'{NAME} rejected by check_shapes' in message
    assert 'expected [2048, 400]' in message
    assert f'place it at {_cached(origin.url(), tmp_path)}.' in message
    assert len(origin.requests) == 1
    assert os.listdir(os.path.dirname(_cached(origin.url(), tmp_path))) == [NAME + '.rejected']


def test_a_file_with_the_expected_checksum_is_kept_when_the_settings_reject_it(origin,
                                                                                tmp_path):
    """The file is the published one, byte for byte: the config is what is wrong. The check's
    own error stands, the file is kept in the cache, and no other mirror is asked."""
    import hashlib

    def config_for_another_depth(path):
        raise ValueError('MODEL.depth: the weights are of depth 50, the config says 18')

    with pytest.raises(ValueError, match='MODEL.depth'):
        _fetch([origin.url(), origin.url()], tmp_path, verify=config_for_another_depth,
               sha256=hashlib.sha256(DATA).hexdigest())
    assert len(origin.requests) == 1
    path = _cached([origin.url(), origin.url()], tmp_path)
    assert _read(path) == DATA
    assert _fetch([origin.url(), origin.url()], tmp_path) == path and len(origin.requests) == 1


def test_a_rejected_file_is_kept_and_checked_first_next_time(origin, tmp_path):
    """The check may have failed by the caller's fault (a config for another model): once
    it passes, the file is published without being downloaded again."""
    def config_for_another_model(path):
        raise ValueError('fc.weight has shape [2048, 10], expected [2048, 400]')

    kept = _cached(origin.url(), tmp_path) + '.rejected'
    with pytest.raises(DownloadError) as info:
        _fetch(origin.url(), tmp_path, verify=config_for_another_model)
    assert f'kept in {kept}, which the next fetch checks first' in str(info.value)
    with pytest.raises(DownloadError):  # still rejected: downloaded and checked again
        _fetch(origin.url(), tmp_path, verify=config_for_another_model)
    assert len(origin.requests) == 2 and _read(kept) == DATA
    seen = []
    path = _fetch(origin.url(), tmp_path, verify=seen.append)
    assert seen == [kept] and len(origin.requests) == 2
    assert _read(path) == DATA and not os.path.exists(kept)


def test_server_ignoring_range_restarts_from_zero(origin, tmp_path):
    # Wrong leading bytes would survive if the 200 body were appended to the part.
    _write(_part(origin, tmp_path), b'\0' * 50000)
    origin.plans['/' + NAME] = ['ignore_range']
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    assert origin.requests == [('/' + NAME, 'bytes=50000-')]
    assert _read(path) == DATA


def test_complete_part_answered_416_is_verified_and_published(origin, tmp_path):
    _write(_part(origin, tmp_path), DATA)
    path = _fetch(origin.url(), tmp_path, sha256=DIGEST)
    assert origin.requests == [('/' + NAME, f'bytes={len(DATA)}-')]
    assert _read(path) == DATA
    assert os.listdir(os.path.dirname(path)) == [NAME]


def test_oversized_part_answered_416_restarts(origin, tmp_path):
    _write(_part(origin, tmp_path), DATA + b'extra')
    path = _fetch(origin.url(), tmp_path)
    assert origin.requests == [('/' + NAME, f'bytes={len(DATA) + 5}-'), ('/' + NAME, None)]
    assert _read(path) == DATA


def test_two_urls_with_one_file_name_are_two_files(origin, tmp_path):
    run_a, run_b = DATA[:1000], DATA[1000:3000]
    origin.files.update({'/runA/model.pdparams': run_a, '/runB/model.pdparams': run_b})
    path_a = _fetch(origin.url('runA/model.pdparams'), tmp_path)
    path_b = _fetch(origin.url('runB/model.pdparams'), tmp_path)
    assert path_a != path_b
    assert os.path.basename(path_a) == os.path.basename(path_b) == 'model.pdparams'
    assert (_read(path_a), _read(path_b)) == (run_a, run_b)
    assert [p for p, _ in origin.requests] == ['/runA/model.pdparams', '/runB/model.pdparams']


def test_a_file_served_by_one_host_is_not_the_file_of_another(origin, tmp_path, sleeps):
    _fetch(origin.url(), tmp_path)
    dead = _closed_port_url()
    with pytest.raises(DownloadError, match=f'{dead}: cannot connect'):
        _fetch(dead, tmp_path, retries=0)


def test_a_file_placed_where_the_message_says_is_used(origin, tmp_path, sleeps):
    dead = _closed_port_url()
    with pytest.raises(DownloadError) as info:
        _fetch(dead, tmp_path, sha256=DIGEST, retries=0)
    place = str(info.value).split('place it at ')[1].split(' (expected')[0]
    _write(place, DATA)
    assert _fetch(dead, tmp_path, sha256=DIGEST, retries=0) == place


def test_a_file_of_the_old_flat_layout_is_named_not_used(origin, tmp_path, caplog):
    _write(tmp_path / NAME, b'the file of another URL with this name')
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        path = _fetch(origin.url(), tmp_path)
    assert _read(path) == DATA and len(origin.requests) == 1
    assert f'{tmp_path / NAME}, from an earlier cache layout' in caplog.text
    assert f'Move it to {path} if it is this one' in caplog.text


def test_a_trickling_mirror_is_abandoned_for_the_next(origin, tmp_path, caplog):
    """50 bytes/s passes every socket timeout; the mirror's pace does not."""
    origin.plans['/slow/' + NAME] = ['trickle']
    origin.files['/slow/' + NAME] = DATA
    urls = [origin.url('slow/' + NAME), origin.url()]
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=download.__name__):
        path = _fetch(urls, tmp_path, sha256=DIGEST, timeout=5, min_rate=1000, grace=0.3)
    assert time.monotonic() - start < 3
    assert _read(path) == DATA
    assert f'{urls[0]}: too slow: ' in caplog.text
    assert 'fewer than 1000 bytes/s after the first 0.3 s' in caplog.text
    # the bytes the slow mirror sent were kept and the next one resumed after them
    assert origin.requests[1][1].startswith('bytes=')


def test_a_trickling_only_mirror_fails_and_keeps_its_bytes(origin, tmp_path):
    origin.plans['/' + NAME] = ['trickle']
    with pytest.raises(DownloadError) as info:
        _fetch(origin.url(), tmp_path, timeout=5, min_rate=1000, grace=0.3)
    assert f'{origin.url()}: too slow: ' in str(info.value)
    assert len(origin.requests) == 1  # abandoned, not retried
    assert 0 < os.path.getsize(_part(origin, tmp_path)) < 100


def test_a_cached_file_is_served_while_another_process_downloads(origin, tmp_path):
    """The lock is per file: a download in progress holds back only those of its file."""
    cached = _fetch(origin.url(), tmp_path)
    origin.files['/other.pdparams'] = DATA
    origin.plans['/other.pdparams'] = [('stall', 1000)]
    code = ('import sys; from models.weights.download import fetch; '
            'fetch(sys.argv[1], cache_dir=sys.argv[2], timeout=10, progress=False)')
    downloading = subprocess.Popen([sys.executable, '-c', code, origin.url('other.pdparams'),
                                    str(tmp_path)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while ('/other.pdparams', None) not in origin.requests:
            assert time.monotonic() < deadline and downloading.poll() is None
            time.sleep(0.01)
        served = []
        reader = threading.Thread(target=lambda: served.append(_fetch(origin.url(), tmp_path)),
                                  daemon=True)
        reader.start()
        reader.join(2)
        at_once = list(served)
        origin.released.set()
        assert downloading.wait(20) == 0
    finally:
        downloading.kill()
    assert at_once == [cached]
    assert _read(_cached(origin.url('other.pdparams'), tmp_path)) == DATA


def test_a_file_sent_twice_with_one_wrong_checksum_is_kept_not_fetched_again(
        origin, tmp_path, sleeps, caplog):
    """A whole file that arrives twice with the same digest is no transfer error: the
    expected checksum may be the wrong one, so the file is kept, and named."""
    expected = hashlib.sha256(b'another file').hexdigest()
    final = _cached(origin.url(), tmp_path)
    with caplog.at_level(logging.WARNING, logger=download.__name__), \
            pytest.raises(DownloadError) as info:
        _fetch(origin.url(), tmp_path, sha256=expected, retries=3)
    assert len(origin.requests) == 2
    kept = f'{final}.sha256-{DIGEST[:16]}'
    assert _read(kept) == DATA
    assert f'{origin.url()}: attempt 1 of 4 failed: {final}.part: sha256 {DIGEST} does not ' \
           f'match the expected {expected}' in caplog.text
    assert (f'{origin.url()}: sent the same file twice, with sha256 {DIGEST} where {expected} '
            f'is expected; it is kept in {kept}: should the expected checksum be the wrong '
            f'one, check that file and move it to {final}') in str(info.value)
