"""Export TSM as a static inference model for paddle.inference (models/inference.py).

    bash run.sh export TSM ./configs/tsm.yaml --weights W --save_dir DIR [--onnx]

Writes DIR/TSM.json (Paddle 3) or DIR/TSM.pdmodel (Paddle 2.6) with DIR/TSM.pdiparams, taking
clips float32 [N, seg_num, 3, target_size, target_size] with N free, and DIR/TSM.yaml, the MODEL
and DATA sections the model was built and is to be fed with (configs.load_config reads it).
An online model also gets its per-frame step, DIR/TSM_online_step.*; --onnx adds DIR/TSM.onnx.
The exported model (and TSM.onnx) is checked against the dynamic model on random clips
before the run ends.
"""
import inspect
import logging
import os

from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
import numpy as np
import paddle
import yaml

from models import TSM
from models.fused import fuse_shifts
from models.inference import Predictor, model_files
from models.online import export_online_step
from models.weights import load_for_inference

TOLERANCE = 1e-4  # max |exported - dynamic| / max |dynamic| over the logits


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def clip_spec(model_cfg, data_cfg):
    size = data_cfg['target_size']
    return paddle.static.InputSpec([None, model_cfg['seg_num'], 3, size, size], 'float32',
                                   'clips')


def export_static(model, spec, prefix):
    """paddle.jit.save of `model` (in eval mode) for clips `spec`; returns the program file.

    The graph is the model's inference form (models.fused: each shift merged into the
    convolution after it). The spec goes to to_static with full_graph=True: Paddle 3 otherwise
    traces by bytecode and keeps the batch size of the first call; Paddle 2.6 translates the
    AST by default.
    """
    model.eval()
    static = paddle.jit.to_static(fuse_shifts(model), input_spec=[spec], full_graph=True)
    paddle.jit.save(static, prefix)
    return model_files(prefix)[0]


def write_settings(cfg, path, weights):
    """MODEL and DATA as a config file of their own; provenance goes in comments, since the
    config loader rejects unknown sections."""
    header = (f'# Settings of the exported TSM in this folder (weights: {weights}; '
              f'Paddle {paddle.__version__}).\n# Input: clips float32 [N, seg_num, 3, '
              f'target_size, target_size], normalised with DATA.mean / DATA.std.\n')
    with open(path, 'w') as f:
        f.write(header)
        yaml.safe_dump({'MODEL': cfg['MODEL'], 'DATA': cfg['DATA']}, f, sort_keys=False)


def export_onnx(program, params, path, opset):
    """TSM.onnx through paddle2onnx; a UsageError names the missing package."""
    try:
        import paddle2onnx  # here: an optional package, needed by --onnx only
    except ImportError:
        raise cli.UsageError('--onnx needs paddle2onnx (pip install paddle2onnx '
                             'onnxruntime)') from None
    options = {}
    if 'optimize_tool' in inspect.signature(paddle2onnx.export).parameters:
        # paddle2onnx 2.x defaults to polygraphy, which pip-installs onnx_graphsurgeon at run
        # time; onnxoptimizer comes with paddle2onnx, and onnxruntime folds constants itself.
        options['optimize_tool'] = 'onnxoptimizer'
    paddle2onnx.export(program, params, path, opset_version=opset, enable_onnx_checker=True,
                       **options)
    return path


def onnx_logits(path, clips):
    import onnxruntime  # here: optional, as paddle2onnx
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initializer notices are harmless
    session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: clips})[0]


def check(name, got, want):
    error = relative_error(got, want)
    if error > TOLERANCE:
        raise RuntimeError(f'{name}: logits differ from the dynamic model by {error:.2e} '
                           f'(relative), more than {TOLERANCE:.0e}')
    logging.info('%s: logits equal the dynamic model\'s (relative error %.1e)', name, error)


def export(cfg, weights, save_dir, onnx=False, opset=13):
    """Build TSM from cfg['MODEL'], load `weights`, write and check the exported files;
    returns {kind: path} of the files written."""
    model = TSM(**cfg['MODEL'])
    load_for_inference(model, weights, cfg['DATA']['weights_dir'])
    model.eval()
    spec = clip_spec(cfg['MODEL'], cfg['DATA'])
    clips = np.random.default_rng(0).standard_normal([2] + list(spec.shape[1:]), dtype=np.float32)
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips)).numpy()
    os.makedirs(save_dir, exist_ok=True)
    prefix = os.path.join(save_dir, 'TSM')
    write_settings(cfg, prefix + '.yaml', weights)
    written = {'program': export_static(model, spec, prefix), 'settings': prefix + '.yaml'}
    check(written['program'], Predictor(prefix)(clips).numpy(), want)
    if cfg['MODEL']['shift_mode'] == 'online':
        written['online_step'] = export_online_step(model, prefix + '_online_step',
                                                    cfg['DATA']['target_size'])
    if onnx:
        written['onnx'] = export_onnx(*model_files(prefix), prefix + '.onnx', opset)
        check(written['onnx'], onnx_logits(written['onnx'], clips), want)
    for kind, path in written.items():
        logging.info('%s: %s', kind, path)
    return written


def main(argv=None):
    args, cfg = cli.start('export', argv)
    export(cfg, cfg['INFER']['weights'], args.export_dir, args.onnx, args.opset)
    return 0


if __name__ == '__main__':
    cli.run('export', main)
