"""export.py, models/deploy/ and bench.py on a ResNet-18 TSM with tiny clips."""
import json
import logging
import os
import re

import numpy as np
import paddle
import pytest

from configs import cli
from models.deploy.static import clip_spec, export_static, relative_error
from models import TSM
from models.weights import write_weights
from models.deploy import predictor as inference
from models.deploy.predictor import Predictor, model_files
from tests.commands import ROOT, run_sh

MODEL = {'num_classes': 7, 'seg_num': 4, 'depth': 18, 'shift_ratio': 0.25}
DATA = {'target_size': 32}


def run(*args):
    return run_sh(*args, check=True)


def trained_like(shift_mode):
    """A TSM in eval mode whose BatchNorm statistics are not the identity, so a wrong BN
    fold in the exported graph would show in the logits."""
    paddle.seed(3)
    model = TSM(shift_mode=shift_mode, **MODEL)
    for name, value in model.state_dict().items():
        if name.endswith(('_mean', '_variance')):
            rng = np.random.default_rng(len(name))
            low = 0.5 if name.endswith('_variance') else -0.2
            value.set_value(rng.uniform(low, low + 0.4, value.shape).astype('float32'))
    model.eval()
    return model


def clips(batch, seed=0):
    shape = [batch, MODEL['seg_num'], 3, DATA['target_size'], DATA['target_size']]
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.fixture(scope='module', params=['bidirectional', 'none'])
def exported(request, tmp_path_factory):
    """(shift mode, reference logits per batch size, export prefix)."""
    model = trained_like(request.param)
    with paddle.no_grad():
        want = {b: model(paddle.to_tensor(clips(b))).numpy() for b in (1, 2, 3)}
    prefix = str(tmp_path_factory.mktemp(request.param) / 'TSM')
    export_static(model, clip_spec(MODEL, DATA), prefix)
    return request.param, want, prefix


@pytest.mark.parametrize('batch', [1, 3])
def test_jit_load_equals_dynamic(exported, batch):
    _, want, prefix = exported
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    got = loaded(paddle.to_tensor(clips(batch))).numpy()
    assert got.shape == (batch, MODEL['num_classes'])
    assert relative_error(got, want[batch]) < 1e-4


@pytest.mark.parametrize('batch', [1, 3])
def test_predictor_equals_dynamic(exported, batch):
    _, want, prefix = exported
    predictor = Predictor(prefix, threads=2)
    assert predictor.eval() is predictor
    from_numpy = predictor(clips(batch))
    from_tensor = predictor(paddle.to_tensor(clips(batch)))
    assert isinstance(from_numpy, paddle.Tensor)
    assert from_numpy.shape == [batch, MODEL['num_classes']]
    assert relative_error(from_numpy.numpy(), want[batch]) < 1e-4
    np.testing.assert_array_equal(from_tensor.numpy(), from_numpy.numpy())


def test_shift_is_in_the_exported_graph(exported):
    """The same weights without the shift give other logits: the exported graph's agreement
    with the dynamic model is not that of a graph that lost its shift."""
    mode, want, prefix = exported
    unshifted = trained_like('none')
    with paddle.no_grad():
        plain = unshifted(paddle.to_tensor(clips(3))).numpy()
    got = Predictor(prefix)(clips(3)).numpy()
    if mode == 'none':
        assert relative_error(got, plain) < 1e-4
    else:
        assert relative_error(got, plain) > 1e-2
        assert relative_error(got, want[3]) < 1e-4


def test_view_scores_takes_predictor(exported):
    """eval.view_scores runs unchanged on a Predictor: [B, V, T, 3, H, W] -> mean softmax."""
    from scoring import view_scores
    _, want, prefix = exported
    views = clips(2)[None]  # one video, two views
    probs = view_scores(Predictor(prefix), paddle.to_tensor(views)).numpy()
    expected = paddle.nn.functional.softmax(paddle.to_tensor(want[2]), axis=-1).numpy()
    assert probs.shape == (1, MODEL['num_classes'])
    assert relative_error(probs[0], expected.mean(axis=0)) < 1e-4


def test_resnet_vd_exports(tmp_path):
    # PP-TSM's backbone through the inference form and Paddle Inference (oneDNN).
    paddle.seed(4)
    model = TSM(**dict(MODEL, depth=50, shift_ratio=0.125), backbone='resnet_vd')
    model.eval()
    x = clips(2, seed=5)
    with paddle.no_grad():
        want = model(paddle.to_tensor(x)).numpy()
    prefix = str(tmp_path / 'TSM')
    export_static(model, clip_spec(MODEL, DATA), prefix)
    assert relative_error(Predictor(prefix)(x).numpy(), want) < 1e-4


def test_predictor_rejects_wrong_clip_shape(tmp_path):
    export_static(trained_like('none'), clip_spec(MODEL, DATA), str(tmp_path / 'TSM'))
    (tmp_path / 'TSM.yaml').write_text(f'MODEL: {MODEL}\nDATA: {DATA}\n')
    with pytest.raises(ValueError, match=r'takes clips \[N\] \+ \[4, 3, 32, 32\]'):
        Predictor(str(tmp_path / 'TSM'))(np.zeros([1, 3, 3, 32, 32], np.float32))
    with pytest.raises(ValueError, match='precision'):
        Predictor(str(tmp_path / 'TSM'), precision='int4')


@pytest.mark.skipif(not inference.bf16_supported(), reason='needs bfloat16 instructions')
def test_bf16_is_near_fp32(exported):
    """bf16 really runs (its logits differ) and stays within bfloat16's 3 digits of fp32."""
    _, want, prefix = exported
    got = Predictor(prefix, precision='bf16')(clips(2)).numpy()
    assert 1e-6 < relative_error(got, want[2]) < 3e-2


def test_a_onednn_cap_below_bf16_means_fp32(exported, monkeypatch):
    """Under a user's oneDNN cap below bf16 there are no bf16 kernels: auto takes fp32, and
    bf16 names the cap instead of failing inside Paddle Inference with no message."""
    _, _, prefix = exported
    monkeypatch.setattr(inference, 'bf16_cpu', lambda: True)
    monkeypatch.delenv('DNNL_MAX_CPU_ISA', raising=False)
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    assert inference.resolve_precision('auto', on_gpu=False) == 'fp32'
    with pytest.raises(ValueError, match='ONEDNN_MAX_CPU_ISA=AVX2 caps oneDNN below'):
        Predictor(prefix, precision='bf16')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'avx512_core_bf16')
    assert inference.resolve_precision('auto', on_gpu=False) == 'bf16'
    monkeypatch.delenv('ONEDNN_MAX_CPU_ISA')
    monkeypatch.setenv('DNNL_MAX_CPU_ISA', 'AVX512_CORE')
    assert inference.resolve_precision('auto', on_gpu=False) == 'fp32'


def test_model_files_names_the_missing_export(tmp_path):
    with pytest.raises(FileNotFoundError, match='no .json or .pdmodel'):
        model_files(str(tmp_path / 'TSM'))


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """A tiny config and a random checkpoint, as a user would have them."""
    root = tmp_path_factory.mktemp('run')
    config = root / 'tiny.yaml'
    config.write_text('MODEL: {num_classes: 7, seg_num: 4, depth: 18, shift_mode: online, '
                      'shift_ratio: 0.25}\n'
                      'DATA: {short_size: 40, target_size: 32}\n')
    model = trained_like('online')
    write_weights(str(root / 'ckpt'), model)
    return root, config, model


def test_run_sh_export(tiny_run):
    root, config, model = tiny_run
    out = root / 'export'
    args = ['export', 'TSM', str(config), '--weights', str(root / 'ckpt'),
            '--save_dir', str(out)]
    onnx = all(_importable(m) for m in ('paddle2onnx', 'onnxruntime'))
    run(*args, *(['--onnx'] if onnx else []))
    from configs.config import load_config
    settings = load_config(str(out / 'TSM.yaml'))
    assert settings['MODEL']['shift_mode'] == 'online' and settings['DATA']['short_size'] == 40
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips(3))).numpy()
    assert relative_error(Predictor(str(out))(clips(3)).numpy(), want) < 1e-4
    model_files(str(out / 'TSM_online_step'))  # the online step is exported next to it
    if onnx:
        from models.deploy.onnx_export import onnx_logits
        assert relative_error(onnx_logits(str(out / 'TSM.onnx'), clips(3)), want) < 1e-4


def test_onnx_equals_dynamic(exported, tmp_path):
    pytest.importorskip('paddle2onnx')
    pytest.importorskip('onnxruntime')
    from models.deploy.onnx_export import export_onnx, onnx_logits
    _, want, prefix = exported
    path = export_onnx(*model_files(prefix), str(tmp_path / 'TSM.onnx'), 13)
    for batch in (1, 3):
        assert relative_error(onnx_logits(path, clips(batch)), want[batch]) < 1e-4


def _importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def test_run_sh_bench(tiny_run):
    root, config, _ = tiny_run
    run('bench', 'TSM', str(config), '--batch_sizes', '1', '2', '--repeats', '1',
        '--warmup', '0', '--matmul_size', '128', '--video_size', '48', '40',
        '--video_frames', '12', '--save_dir', str(root / 'bench'),
        '--engine', 'paddle', 'onnxruntime', 'openvino')
    result = json.loads((root / 'bench' / 'TSM_bench.json').read_text())
    # ResNet-18 on 32x32 frames: the conv/linear multiply-adds of one frame, times 4 frames
    assert result['clip_gflops'] == round(2 * 4 * resnet18_macs(32, 7) / 1e9, 4)
    peak = result['matmul_peak_gflops']
    engines = {r['engine'] for r in result['inference']}
    assert {'dynamic', 'predictor_fp32', 'onnxruntime_fp32', 'openvino_fp32'} <= engines
    assert 'onnxruntime_bf16' not in engines  # ONNX Runtime runs fp32 only
    for row in result['inference']:
        assert row['batch_size'] in (1, 2)
        # one measurement, three figures: clips/s and the fraction of the peak follow from it
        assert row['clips_per_s'] == pytest.approx(1e3 / row['clip_ms'], rel=1e-2)
        assert row['fraction_of_peak'] == pytest.approx(
            result['clip_gflops'] * row['clips_per_s'] / peak, rel=1e-2, abs=1e-4)
    assert len(result['inference']) == 2 * len(engines)
    step = result['train_step']
    assert step['batch_size'] == 2
    assert step['clips_per_s'] == pytest.approx(2e3 / step['step_ms'], rel=1e-2)
    reader = result['reader']
    for key in ('mp4_train_ms_per_clip', 'mp4_test_ms_per_clip', 'frames_train_ms_per_clip',
                'frames_test_ms_per_clip', 'sequential_decode_ms', 'mp4_loader_clips_per_s',
                'frames_loader_clips_per_s'):
        assert reader[key] > 0, key
    assert 20 < result['predict_peak_rss_mb'] < 24 * 1024
    table = (root / 'bench' / 'TSM_bench.md').read_text()
    assert '| predictor_fp32 | 2 |' in table and '| frames |' in table
    assert result['machine']['cores'] >= 1 and result['machine']['paddle'] == paddle.__version__


def resnet18_macs(size, num_classes):
    """Multiply-adds of ResNet-18 on one size x size frame, written out by hand."""
    side = size // 2  # conv1, stride 2
    macs = side * side * 64 * 3 * 49
    side //= 2  # max pool
    channels = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        out = side // stride
        macs += out * out * planes * channels * 9 + out * out * planes * planes * 9
        if stride != 1 or channels != planes:
            macs += out * out * planes * channels  # 1x1 downsample
        macs += 2 * out * out * planes * planes * 9  # second block
        side, channels = out, planes
    return macs + 512 * num_classes


def saved_weights(tmp_path):
    """(config of MODEL and DATA, the weights folder of a model trained-like, that model, a
    cache folder) for the tests of the export cache."""
    cfg = {'MODEL': dict(TSM(**MODEL).settings), 'DATA': dict(DATA)}
    folder = str(tmp_path / 'best')
    model = trained_like('bidirectional')
    write_weights(folder, model)
    return cfg, folder, model, str(tmp_path / 'cache')


def test_weights_export_is_built_once_and_again_when_anything_changes(tmp_path, caplog):
    from models.weights import write_weights
    from models.deploy.cache import exported_model
    cfg, folder, model, cache = saved_weights(tmp_path)
    with caplog.at_level(logging.INFO):
        first = exported_model(cfg, folder, cache)
    assert 'building the exported model' in caplog.text
    assert sorted(os.listdir(os.path.dirname(first))) == [os.path.basename(first)]  # no temp
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips(2))).numpy()
    assert relative_error(Predictor(first)(clips(2)).numpy(), want) < 1e-4
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert exported_model(cfg, folder, cache) == first  # from the cache
    assert 'building' not in caplog.text
    bigger = dict(cfg, DATA={'target_size': 48})
    assert exported_model(bigger, folder, cache) != first  # another frame size
    paddle.seed(7)
    write_weights(folder, TSM(**MODEL))  # other weights under the same path
    assert exported_model(cfg, folder, cache) != first


@pytest.mark.parametrize('engine', ['onnxruntime', 'openvino'])
def test_every_engine_runs_the_export_it_checked_and_caches_it_by_engine_and_version(
        tmp_path, engine):
    pytest.importorskip(engine)
    from models.deploy.cache import exported_model
    from models.deploy.engines import clip_runner, engine_version
    cfg, folder, model, cache = saved_weights(tmp_path)
    paddle_folder = exported_model(cfg, folder, cache)
    built = exported_model(cfg, folder, cache, engine)
    assert built != paddle_folder and os.path.isfile(os.path.join(built, 'TSM.onnx'))
    assert 'TSM.onnx' not in os.listdir(paddle_folder)
    assert exported_model(cfg, folder, cache, engine) == built  # cached
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips(3))).numpy()
    runner = clip_runner(engine, os.path.join(built, 'TSM.onnx'), 2, 'fp32')
    assert runner.precision == 'fp32'
    assert relative_error(runner(clips(3)).numpy(), want) < 1e-4
    # another version of the engine is another key: that export is built anew
    from models.deploy import engines
    real = engine_version(engine)
    try:
        engines.PACKAGES[engine] = 'numpy'  # a module whose __version__ differs
        assert engine_version(engine) != real
        assert exported_model(cfg, folder, cache, engine) != built
    finally:
        engines.PACKAGES[engine] = engine


def test_an_engine_that_cannot_run_is_one_line(tmp_path, monkeypatch):
    """A missing package (OpenVINO named as absent) is one line; auto leaves it out."""
    from configs.config import load_config
    from engine import installed_engines, model_for
    from models.deploy import engines
    monkeypatch.setitem(engines.PACKAGES, 'openvino', 'no_such_openvino')
    cfg = load_config('configs/tsm_demo.yaml', ['TEST.engine=openvino'])
    with pytest.raises(cli.UsageError) as err:
        model_for(cfg, 'TEST', use_gpu=False)
    assert str(err.value) == ('TEST.engine: engine openvino needs its package: pip install '
                              'no_such_openvino paddle2onnx (or pip install -r '
                              'requirements-deploy.txt)')
    assert 'openvino' not in installed_engines()


def test_auto_is_the_default_and_runs_an_export_folder_on_paddle_inference(exported,
                                                                           monkeypatch):
    from configs.config import ConfigError, load_config
    from engine import model_for
    _, want, prefix = exported
    monkeypatch.delenv('TSM_ENGINE')
    cfg = load_config('configs/tsm_demo.yaml')
    assert cfg['TEST']['engine'] == cfg['INFER']['engine'] == 'auto'
    cfg = load_config('configs/tsm_demo.yaml', [f'TEST.infer_model={os.path.dirname(prefix)}'])
    runner = model_for(cfg, 'TEST', use_gpu=False)
    assert isinstance(runner, Predictor)
    assert relative_error(runner(clips(2)).numpy(), want[2]) < 1e-4
    monkeypatch.setenv('TSM_ENGINE', 'openvino')  # a deployment's own default
    assert load_config('configs/tsm_demo.yaml')['INFER']['engine'] == 'openvino'
    monkeypatch.setenv('TSM_ENGINE', 'fastest')
    with pytest.raises(ConfigError, match=r"\$TSM_ENGINE: expected one of paddle, "
                                          r"onnxruntime, openvino, auto, got 'fastest'"):
        load_config('configs/tsm_demo.yaml')


def test_auto_measures_the_engines_once_and_keeps_the_fastest(tmp_path):
    import time
    from engine import fastest_engine
    cache = str(tmp_path / 'cache')
    calls = []

    def timed(engine):
        calls.append(engine)
        pause = {'paddle': 0.02, 'onnxruntime': 0.005, 'openvino': 0.01}[engine]
        return lambda: time.sleep(pause)
    engines = ['paddle', 'onnxruntime', 'openvino']
    assert fastest_engine(['model-a', 'fp32', 2], engines, timed, cache) == 'onnxruntime'
    assert calls == engines  # each measured once
    kept = json.loads((tmp_path / 'cache' / 'exported' / 'engine_choice.json').read_text())
    (choice,) = kept.values()
    assert choice['engine'] == 'onnxruntime'
    assert choice['ms']['paddle'] > choice['ms']['openvino'] > choice['ms']['onnxruntime']

    def refuse(engine):
        raise AssertionError('measured again')
    assert fastest_engine(['model-a', 'fp32', 2], engines, refuse, cache) == 'onnxruntime'
    assert fastest_engine(['model-b', 'fp32', 2], ['paddle'], refuse, cache) == 'paddle'
    # an optional engine that fails the model is left out; Paddle Inference failing is an error

    def failing(engine):
        if engine != 'paddle':
            raise RuntimeError(f'{engine} cannot convert this graph')
        return timed(engine)
    assert fastest_engine(['model-c', 'fp32', 2], engines, failing, cache) == 'paddle'

    def paddle_fails(engine):
        raise RuntimeError('no program')
    with pytest.raises(RuntimeError, match='no program'):
        fastest_engine(['model-d', 'fp32', 2], engines, paddle_fails, cache)
    # another model, precision or set of engines is measured anew
    assert fastest_engine(['model-a', 'bf16', 2], ['paddle', 'openvino'], timed,
                          cache) == 'openvino'
    assert len(json.loads((tmp_path / 'cache' / 'exported' /
                           'engine_choice.json').read_text())) == 3


def test_auto_compares_the_engines_that_run_the_precision_asked():
    pytest.importorskip('onnxruntime')
    from engine import installed_engines
    assert 'onnxruntime' in installed_engines(precision='fp32')
    assert 'onnxruntime' not in installed_engines(precision='bf16')  # fp32 only
    assert installed_engines(precision='bf16')[0] == 'paddle'


def test_auto_runs_an_engine_that_computes_the_model(tmp_path, monkeypatch):
    import engine as engines
    from configs.config import load_config
    from models.weights import write_weights
    model = trained_like('bidirectional')
    write_weights(str(tmp_path / 'best'), model)
    flags = ['MODEL.depth=18', 'MODEL.seg_num=4', 'MODEL.num_classes=7', 'MODEL.shift_ratio=0.25',
             'DATA.target_size=32',
             f'TEST.weights={tmp_path / "best"}', f'DATA.weights_dir={tmp_path / "cache"}',
             'TEST.engine=auto', 'TEST.protocol=ours']
    cfg = load_config('configs/tsm_demo.yaml', flags)
    assert cfg['MODEL'] == dict(cfg['MODEL'], **TSM(**MODEL).settings)
    runner = engines.model_for(cfg, 'TEST', use_gpu=False)
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips(2))).numpy()
    assert relative_error(runner(clips(2)).numpy(), want) < 1e-4
    kept = json.loads((tmp_path / 'cache' / 'exported' / 'engine_choice.json').read_text())
    (choice,) = kept.values()
    assert set(choice['ms']) == set(engines.installed_engines())
    assert engines.model_source(cfg['TEST'], runner)['engine'] in (
        'paddle.inference', choice['engine'])
    # with Paddle Inference alone nothing is measured
    monkeypatch.setattr(engines, 'installed_engines', lambda *args: ['paddle'])
    monkeypatch.setattr(engines, '_seconds', None)  # nothing is timed
    assert isinstance(engines.model_for(cfg, 'TEST', use_gpu=False), Predictor)


INT8_CHILD = """
import json, os, sys
import numpy as np
import engine as engines
from configs.config import load_config
cfg = load_config(sys.argv[1], ['DATA.weights_dir=' + sys.argv[2]])
runner = engines.model_for(cfg, 'TEST', use_gpu=False)
folder = os.path.dirname(runner.files[0])
x = np.random.default_rng(5).standard_normal([3, 2, 3, 32, 32], dtype=np.float32)
print(json.dumps({'precision': runner.precision, 'file': runner.files[0],
                  'graph': open(runner.files[0]).read().count('type="FakeQuantize"'),
                  'stats': json.load(open(os.path.join(folder, 'int8.json'))),
                  'shape': list(runner(x).numpy().shape),
                  'source': engines.model_source(cfg['TEST'], runner)}))
"""


def test_int8_on_openvino_is_a_quantised_copy_calibrated_on_the_training_list(tmp_path):
    """In a child process: NNCF loads torch's and its own libraries, which this process, that
    goes on to decode and encode videos, is kept free of."""
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    import subprocess
    import sys
    from configs.config import ConfigError, load_config
    from tests.tiny import make_demo_data, write_tiny_config
    data = make_demo_data(tmp_path / 'data', seed=4)
    config = write_tiny_config(tmp_path, data, TEST={'engine': 'openvino', 'precision': 'int8'})
    write_weights(str(tmp_path / 'run' / 'TSM_best'), TSM(num_classes=6, seg_num=2, depth=18))
    proc = subprocess.run([sys.executable, '-c', INT8_CHILD, config, str(tmp_path / 'cache')],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got['precision'] == 'int8' and got['file'].endswith('TSM_int8.xml')
    assert got['graph'] >= 20  # every convolution's input and weights are quantised
    assert got['stats']['clips'] == 6  # the 6 training videos
    assert 0 <= got['stats']['same_top1_as_fp32'] <= 1
    assert got['shape'] == [3, 6] and got['source']['precision'] == 'int8'
    for flags, words in ((['TEST.engine=paddle'], 'TEST.precision int8 runs on OpenVINO: set '
                                                  'TEST.engine openvino or auto (now paddle)'),
                         (["TRAIN.filelist=''"], 'TEST.precision int8 is calibrated on clips '
                                                 'of TRAIN.filelist, which is empty')):
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_config(config, flags)


def test_a_failed_build_leaves_no_export(tmp_path, monkeypatch):
    from models.deploy import cache as exported
    from models.weights import write_weights
    cfg = {'MODEL': dict(TSM(**MODEL).settings), 'DATA': dict(DATA)}
    folder = str(tmp_path / 'best')
    write_weights(folder, trained_like('bidirectional'))

    def failing(*args):
        raise RuntimeError('killed while exporting')
    monkeypatch.setattr(exported, 'export_checked', failing)
    with pytest.raises(RuntimeError, match='killed'):
        exported.exported_model(cfg, folder, str(tmp_path / 'cache'))
    assert os.listdir(tmp_path / 'cache' / 'exported') == []


def test_a_protocol_exports_for_its_own_crop_size(tmp_path):
    """TEST.protocol mit-dense crops 256 pixels whatever DATA.target_size says: the cached
    export takes 256-pixel frames and is checked against that size."""
    from configs.config import load_config
    from engine import model_for
    from models.deploy.predictor import exported_clip_shape
    folder = str(tmp_path / 'best')
    write_weights(folder, trained_like('bidirectional'))
    overrides = [f'MODEL.{k}={v}' for k, v in MODEL.items()] + [
        f'TEST.weights={folder}', 'TEST.protocol=mit-dense', 'DATA.target_size=32',
        f'DATA.weights_dir={tmp_path / "cache"}', 'TEST.threads=1']
    cfg = load_config(os.path.join(ROOT, 'configs', 'tsm.yaml'), overrides)
    predictor = model_for(cfg, 'TEST', use_gpu=False)
    assert exported_clip_shape(predictor.files[0]) == [MODEL['seg_num'], 3, 256, 256]
    assert predictor(clips(1)[:, :, :, :1, :1].repeat(256, 3).repeat(256, 4)).shape == [1, 7]


def _corrupt_in_place(path):
    """4000 bytes in the middle of the file changed, its size kept."""
    with open(path, 'r+b') as f:
        f.seek(os.path.getsize(path) // 2)
        block = f.read(4000)
        f.seek(-len(block), 1)
        f.write(bytes(b ^ 0x55 for b in block))


def _truncate(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 3)


def _garbage(path):
    with open(path, 'wb') as f:
        f.write(b'not a program')


def test_a_cached_export_changed_since_its_build_is_rebuilt(tmp_path, caplog):
    from models.deploy.cache import exported_model
    cfg, folder, model, cache = saved_weights(tmp_path)
    built = exported_model(cfg, folder, cache)
    params = model_files(built)[1]
    _corrupt_in_place(params)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert exported_model(cfg, folder, cache) == built
    rebuilt = [r.getMessage() for r in caplog.records if 'rebuilding' in r.getMessage()]
    assert len(rebuilt) == 1
    assert rebuilt[0].startswith(f'rebuilding the exported model {built}: '
                                 f'{os.path.basename(params)} has sha256 ')
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips(2))).numpy()
    assert relative_error(Predictor(built)(clips(2)).numpy(), want) < 1e-4
    assert sorted(os.listdir(os.path.dirname(built))) == [os.path.basename(built)]


@pytest.mark.parametrize('damage, reason', [
    (_corrupt_in_place, 'TSM.pdiparams has sha256 '), (_truncate, 'TSM.pdiparams has sha256 '),
    (_garbage, 'TSM.pdiparams has sha256 '), (os.remove, 'TSM.pdiparams is missing')])
def test_what_changed_in_an_export_is_named(tmp_path, damage, reason):
    from models.deploy.cache import CHECKSUMS, _checksum_problem, _write_checksums
    tmp_path.joinpath('TSM.json').write_text('{"program": 1}')
    tmp_path.joinpath('TSM.pdiparams').write_bytes(bytes(range(256)) * 40)
    _write_checksums(str(tmp_path))
    assert _checksum_problem(str(tmp_path)) is None
    damage(str(tmp_path / 'TSM.pdiparams'))
    assert _checksum_problem(str(tmp_path)).startswith(reason)
    # an export cached by a version that recorded no checksums is not trusted either
    os.remove(tmp_path / CHECKSUMS)
    assert _checksum_problem(str(tmp_path)).startswith('no readable record of its files')


def test_a_missing_onnx_package_is_named(monkeypatch):
    import sys
    from models.deploy.onnx_export import MissingPackage, export_onnx, onnx_logits
    monkeypatch.setitem(sys.modules, 'paddle2onnx', None)  # import fails as when absent
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(MissingPackage, match=r'pip install paddle2onnx onnxruntime'):
        export_onnx('TSM.json', 'TSM.pdiparams', 'TSM.onnx', 13)
    with pytest.raises(MissingPackage, match=r'pip install onnxruntime'):
        onnx_logits('TSM.onnx', None)
