"""models/weights: published names resolve through the download cache, a download is
converted for the model before it is cached, and any supported layout loads."""
import functools
import http.server
import os
import threading

import numpy as np
import paddle
import pytest

from models import TSM
from models import weights
from models.weights.download import DownloadError
from reader.protocols import PROTOCOLS
from tests import source_nets as src

SEG, CLASSES = 8, 5


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.paths.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / 'served'
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Handler, directory=str(root)))
    httpd.paths = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{httpd.server_address[1]}', httpd.paths
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / 'cache'
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(folder))
    return folder


def publish(monkeypatch, root, base, name, state):
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(root / name))
    monkeypatch.setattr(weights.published, 'PUBLISHED', {
        'kinetics400': {'urls': [f'{base}/{name}'], 'about': 'test file',
                        'model': {'seg_num': SEG}}})


def cached_files(folder):
    """The files under `folder`, as sorted relative paths."""
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, _, names in os.walk(folder) for name in names)


def logits(model, clip):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(clip)).numpy()


def test_published_name_downloads_once_and_loads(server, cache, monkeypatch):
    root, base, requests = server
    names = src.PaddleVideoNames(18)
    state = src.random_state(names, 18, CLASSES, seed=11)
    publish(monkeypatch, root, base, 'TSM_k400.pdparams', state)
    clip = np.random.default_rng(12).normal(size=(1, SEG, 3, 32, 32)).astype(np.float32)
    ref = src.paddle_forward(state, names, 18, clip, SEG, 1.0 / SEG)
    for expected_requests in (1, 1):  # the second load is served by the cache
        model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
        weights.load_for_inference(model, 'kinetics400')
        assert requests == ['/TSM_k400.pdparams'] * expected_requests
        ours = logits(model, clip)
        assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4
    assert cached_files(cache) == [os.path.join('published', 'kinetics400', 'TSM_k400.pdparams')]


def test_a_url_named_like_a_published_file_is_another_file(server, cache, monkeypatch):
    root, base, requests = server
    names = src.PaddleVideoNames(18)
    theirs, mine = (src.random_state(names, 18, CLASSES, seed=s) for s in (14, 15))
    publish(monkeypatch, root, base, 'TSM_k400.pdparams', theirs)
    (root / 'mine').mkdir()
    paddle.save({k: paddle.to_tensor(v) for k, v in mine.items()},
                str(root / 'mine' / 'TSM_k400.pdparams'))
    clip = np.random.default_rng(16).normal(size=(1, SEG, 3, 32, 32)).astype(np.float32)
    for spec, state in (('kinetics400', theirs), (f'{base}/mine/TSM_k400.pdparams', mine)):
        model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
        weights.load_for_inference(model, spec)
        ref = src.paddle_forward(state, names, 18, clip, SEG, 1.0 / SEG)
        assert np.abs(logits(model, clip) - ref).max() / np.abs(ref).max() < 1e-4
    assert requests == ['/TSM_k400.pdparams', '/mine/TSM_k400.pdparams']
    assert len(cached_files(cache)) == 2


def test_configured_cache_dir_takes_the_download(server, cache, monkeypatch, tmp_path):
    root, base, requests = server
    names = src.PaddleVideoNames(18)
    publish(monkeypatch, root, base, 'TSM_k400.pdparams',
            src.random_state(names, 18, CLASSES, seed=13))
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
    weights.load_for_inference(model, 'kinetics400', cache_dir=str(tmp_path / 'mine'))
    assert cached_files(tmp_path / 'mine') == [
        os.path.join('published', 'kinetics400', 'TSM_k400.pdparams')]
    assert not os.path.exists(cache)


def test_file_for_another_model_is_not_cached(server, cache, monkeypatch):
    root, base, requests = server
    state = src.random_state(src.PaddleVideoNames(18), 18, CLASSES)
    publish(monkeypatch, root, base, 'TSM_k400.pdparams', state)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    with pytest.raises(DownloadError, match='set -o MODEL.depth=18') as err:
        weights.load_for_inference(model, 'kinetics400')
    assert 'TSM_k400.pdparams rejected by a conversion for the TSM model' in str(err.value)
    kept = os.path.join('published', 'kinetics400', 'TSM_k400.pdparams.rejected')
    assert cached_files(cache) == [kept]
    # Nothing was cached, so the next attempt downloads again (and is rejected again).
    with pytest.raises(DownloadError):
        weights.load_for_inference(model, 'kinetics400')
    assert len(requests) == 2 and cached_files(cache) == [kept]
    # The config was what was wrong: the file kept aside is used without a download.
    weights.load_for_inference(TSM(num_classes=CLASSES, seg_num=SEG, depth=18), 'kinetics400')
    assert len(requests) == 2
    assert cached_files(cache) == [os.path.join('published', 'kinetics400', 'TSM_k400.pdparams')]


def test_url_is_verified_for_training(server, cache, caplog):
    root, base, _ = server
    state = src.random_state(src.FluidNames(18), 18, 7)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(root / 'zoo.pdparams'))
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
    fc_before = model.fc.weight.numpy().copy()
    weights.load_for_training(model, f'{base}/zoo.pdparams')  # 7 classes vs 5: fc skipped
    [path] = cached_files(cache)
    assert path.startswith('urls' + os.sep) and path.endswith(os.sep + 'zoo.pdparams')
    assert np.array_equal(model.fc.weight.numpy(), fc_before)
    # Inside a block channels keep their order; on the residual stream the source's two
    # shifted folds (64 channels each at width 512) trade places.
    assert np.array_equal(model.layer4[1].bn1._variance.numpy(),
                          state['bn5b_branch2a_variance'])
    var = state['bn5b_branch2b_variance']
    assert np.array_equal(model.layer4[1].bn2._variance.numpy(),
                          np.concatenate([var[64:128], var[:64], var[128:]]))


def test_local_file_and_unknown_names(tmp_path, cache):
    path = tmp_path / 'w.pdparams'
    path.write_bytes(b'x')
    assert weights.resolve(str(path)) == str(path)
    with pytest.raises(weights.WeightsError, match=r"'nope': no such file or folder, and not "
                                                   r"a URL or one of the published names "
                                                   r"\(imagenet, "):
        weights.resolve('nope')
    with pytest.raises(weights.WeightsError, match='no weights given'):
        weights.load_for_inference(TSM(num_classes=2, depth=18), '')
    weights.load_for_training(TSM(num_classes=2, depth=18), '')  # random init, no error


def test_published_table():
    assert set(weights.PUBLISHED) == {
        'kinetics400', 'imagenet', 'kinetics400-zoo', 'imagenet-zoo', 'kinetics400-mit',
        'kinetics400-mit-dense', 'pptsm-k400-uniform', 'pptsm-k400-dense', 'pptsmv2-k400-8f',
        'pptsmv2-k400-16f', 'pptsmv2-k400-8f-dml', 'pptsmv2-k400-16f-dml', 'pplcnetv2-imagenet',
        'pptsm-k400-uniform-distill', 'pptsm-k400-dense-distill',
        'pptsm-k400-uniform-distill-r101', 'pptsm-k400-dense-r101', 'sthv1-mit',
        'sthv1-mit-16', 'sthv1-mit-r101', 'sthv2-mit', 'sthv2-mit-16', 'sthv2-mit-r101',
        'kinetics400-mit-mv2-dense', 'jester-mit-mv2-online', 'pptsm-k400-uniform-mv2'}
    for entry in weights.PUBLISHED.values():
        assert entry['urls'] and all(u.startswith('https://') for u in entry['urls'])
    assert weights.PUBLISHED['kinetics400-mit']['urls'][0].endswith(
        'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth')
    for name, entry in weights.PUBLISHED.items():  # every PP-TSM name is a ResNet-vd
        if name.startswith('pptsmv2'):
            assert entry['model']['backbone'] == 'pplcnet_v2'
        elif 'model' in entry:
            backbone = entry['model']['backbone']
            assert backbone == {(True, False): 'resnet_vd', (True, True): 'mobilenet_v2_pp',
                                (False, True): 'mobilenet_v2', (False, False): 'resnet'}[
                name.startswith('pptsm'), '-mv2' in name]
    assert weights.PUBLISHED['pptsm-k400-dense-r101']['model']['depth'] == 101
    # every checkpoint but the old zoo's (whose test pipeline is not published) and the
    # online gesture model (no figure published) names the protocol of its figure, and the
    # dense ones a dense protocol
    named = {n: e['protocol'] for n, e in weights.PUBLISHED.items() if 'protocol' in e}
    assert set(named) == {n for n, e in weights.PUBLISHED.items() if 'model' in e} - {
        'kinetics400-zoo', 'jester-mit-mv2-online'}
    assert set(named.values()) <= set(PROTOCOLS)
    assert all((PROTOCOLS[p].num_clips == 10) == ('dense' in n) for n, p in named.items())


# name: (file of the original code, seg_num, depth, protocol of the published figure)
STH = {
    'sthv1-mit': ('TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth', 8, 50,
                  'mit-1crop'),
    'sthv1-mit-16': ('TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth', 16,
                     50, 'mit-1crop'),
    'sthv1-mit-r101': ('TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth', 8,
                       101, 'mit-1crop'),
    'sthv2-mit': ('TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth', 8, 50,
                  'mit-twice'),
    'sthv2-mit-16': ('TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth', 16,
                     50, 'mit-twice'),
    'sthv2-mit-r101': ('TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth',
                       8, 101, 'mit-twice'),
}


@pytest.mark.parametrize('name', sorted(STH))
def test_something_something_names(name):
    file_name, seg_num, depth, protocol = STH[name]
    entry = weights.PUBLISHED[name]
    assert entry['urls'] == [f'https://{host}/projects/tsm/models/{file_name}'
                             for host in ('file.lzhu.me', 'hanlab18.mit.edu')]
    assert entry['model'] == dict(weights.published.R50_K400, num_classes=174, seg_num=seg_num,
                                  depth=depth, shift_every=2 if depth == 101 else 1)
    assert entry['protocol'] == protocol
    assert 'sha256' not in entry  # none is published
    if name.startswith('sthv1'):  # its category list is the user's: no file to point at
        assert 'labels' not in entry and '--label_order sorted' in entry['about']
        assert entry['label_order'] == 'sorted'
        return
    labels = open(entry['labels'], encoding='utf-8').read().splitlines()
    assert len(labels) == len(set(labels)) == 174
    # something-something-v2-labels.json's index, which is alphabetical
    assert labels == sorted(labels)
    assert labels[86:88] == ['Pulling something from left to right',
                             'Pulling something from right to left']
    assert labels[93:95] == ['Pushing something from left to right',
                             'Pushing something from right to left']


def test_mobilenet_names():
    k400, jester = (weights.PUBLISHED[n] for n in ('kinetics400-mit-mv2-dense',
                                                    'jester-mit-mv2-online'))
    base = [f'https://{host}/projects/tsm/models/' for host in ('file.lzhu.me',
                                                                  'hanlab18.mit.edu')]
    assert k400['urls'] == [b + 'TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_'
                                'e100_dense.pth' for b in base]
    # the online demo downloads from hanlab.mit.edu: that host last
    assert jester['urls'] == [b + 'mobilenetv2_jester_online.pth.tar' for b in base + [
        'https://hanlab.mit.edu/projects/tsm/models/']]
    assert k400['model'] == dict(weights.published.R50_K400, backbone='mobilenet_v2')
    assert k400['protocol'] == 'mit-dense' and '69.5' in k400['about']
    pptsm = weights.PUBLISHED['pptsm-k400-uniform-mv2']
    assert pptsm['urls'] == ['https://videotag.bj.bcebos.com/PaddleVideo-release2.3/'
                             'ppTSM_mv2_k400.pdparams']
    assert pptsm['model'] == dict(k400['model'], backbone='mobilenet_v2_pp')
    assert pptsm['protocol'] == 'pptsm-uniform' and '68.09' in pptsm['about']
    assert jester['model'] == dict(k400['model'], num_classes=27, shift_mode='online')
    assert 'protocol' not in jester
    labels = open(jester['labels'], encoding='utf-8').read().splitlines()
    # the online demo's list, index for index: sorted, 'Doing other things' 0, 'No gesture' 2
    assert len(labels) == len(set(labels)) == 27 and labels == sorted(labels)
    assert (labels[0], labels[2], labels[3], labels[7], labels[26]) == (
        'Doing other things', 'No gesture', 'Pulling Hand In', 'Rolling Hand Backward',
        'Zooming Out With Two Fingers')


def test_something_something_name_refuses_another_segment_count_before_downloading(cache):
    model = TSM(num_classes=174, seg_num=8, depth=50)
    with pytest.raises(weights.WeightsError, match=r"MODEL.seg_num: model 8, weights trained "
                                                   r"with 16"):
        weights.load_for_inference(model, 'sthv2-mit-16')
    assert cached_files(cache) == []


def test_something_something_name_loads_the_original_layout(server, cache, monkeypatch):
    torch = pytest.importorskip('torch')
    root, base, requests = server
    file_name = STH['sthv2-mit'][0]
    names = src.MitNames(50)
    state = src.random_state(names, 50, 174, seed=21)
    torch.save({'epoch': 45, 'arch': 'resnet50', 'best_prec1': 61.2,
                'state_dict': {k: torch.from_numpy(v) for k, v in state.items()}},
               str(root / file_name))
    entry = dict(weights.PUBLISHED['sthv2-mit'], urls=[f'{base}/{file_name}'])
    monkeypatch.setitem(weights.PUBLISHED, 'sthv2-mit', entry)
    clip = np.random.default_rng(22).normal(size=(1, 8, 3, 32, 32)).astype(np.float32)
    model = TSM(num_classes=174, seg_num=8, depth=50)
    weights.load_for_inference(model, 'sthv2-mit')
    ref = src.torch_forward(state, names, 50, clip, 8, shift=True)
    assert np.abs(logits(model, clip) - ref).max() / np.abs(ref).max() < 1e-4
    assert requests == [f'/{file_name}']


def test_the_online_gesture_name_loads_the_demo_layout(server, cache, monkeypatch):
    torch = pytest.importorskip('torch')
    from tests import source_mobilenet
    root, base, requests = server
    file_name = 'mobilenetv2_jester_online.pth.tar'
    state = source_mobilenet.random_state(23, 27, 'online')
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
               str(root / file_name))
    entry = dict(weights.PUBLISHED['jester-mit-mv2-online'], urls=[f'{base}/{file_name}'])
    monkeypatch.setitem(weights.PUBLISHED, 'jester-mit-mv2-online', entry)
    frames = np.random.default_rng(24).normal(size=(4, 3, 32, 32)).astype(np.float32)
    model = TSM(num_classes=27, seg_num=4, backbone='mobilenet_v2', shift_mode='online')
    with pytest.raises(weights.WeightsError, match=r"MODEL.seg_num: model 4, weights "
                                                   r"trained with 8"):
        weights.load_for_inference(model, 'jester-mit-mv2-online')
    assert requests == []  # refused before downloading
    model = TSM(num_classes=27, seg_num=8, backbone='mobilenet_v2', shift_mode='online')
    weights.load_for_inference(model, 'jester-mit-mv2-online')
    model.eval()
    with paddle.no_grad():  # the first 4 frame scores of a clip are those of its first 4 frames
        clip = np.concatenate([frames, frames])[None]
        got = model.frame_scores(paddle.to_tensor(clip)).numpy()[0, :4]
    ref = source_mobilenet.online_forward(state, frames)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4
    assert requests == [f'/{file_name}']
