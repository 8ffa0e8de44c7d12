"""The exported (static) form of a TSM, as export.py writes it and eval/predict cache it.

A folder holds TSM.json (Paddle 3's PIR program) or TSM.pdmodel (Paddle 2.6) with
TSM.pdiparams, taking clips float32 [N, seg_num, 3, target_size, target_size] with N free, and
TSM.yaml, the MODEL and DATA sections it was built with and is to be fed with. The graph is
the model's inference form (models.fused), and every export is checked against the dynamic
model before it is used.
"""
import logging

import numpy as np
import paddle
import yaml

import noise

from ..fused import fuse_shifts
from .predictor import Predictor, model_files

TOLERANCE = 1e-4  # max |exported - dynamic| / max |dynamic| over the logits

log = logging.getLogger(__name__)


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
    with noise.dropped_lines(2):  # the trace's glog warnings about Paddle's own calls
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


def check(name, got, want):
    error = relative_error(got, want)
    if error > TOLERANCE:
        raise RuntimeError(f'{name}: logits differ from the dynamic model by {error:.2e} '
                           f'(relative), more than {TOLERANCE:.0e}')
    log.info('%s: logits equal the dynamic model\'s (relative error %.1e)', name, error)


def export_checked(model, cfg, prefix, weights):
    """Write the exported model of `model` (weights loaded, built from cfg['MODEL']) at
    `prefix` with its TSM.yaml, and check it against the dynamic model on random clips;
    returns (program file, the clips, the dynamic logits) for further checks."""
    spec = clip_spec(cfg['MODEL'], cfg['DATA'])
    clips = np.random.default_rng(0).standard_normal([2] + list(spec.shape[1:]),
                                                     dtype=np.float32)
    model.eval()
    with paddle.no_grad():
        want = model(paddle.to_tensor(clips)).numpy()
    write_settings(cfg, prefix + '.yaml', weights)
    program = export_static(model, spec, prefix)
    check(program, Predictor(prefix)(clips).numpy(), want)
    return program, clips, want
