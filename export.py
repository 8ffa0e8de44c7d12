"""Export TSM as a static inference model for paddle.inference (models/deploy/predictor.py).

    bash run.sh export TSM ./configs/tsm.yaml --weights W --save_dir DIR [--onnx]

Writes DIR/TSM.json (Paddle 3) or DIR/TSM.pdmodel (Paddle 2.6) with DIR/TSM.pdiparams, taking
clips float32 [N, seg_num, 3, target_size, target_size] with N free, and DIR/TSM.yaml, the MODEL
and DATA sections the model was built and is to be fed with (configs.load_config reads it).
An online model also gets its per-frame step, DIR/TSM_online_step.*; --onnx adds DIR/TSM.onnx
(and DIR/TSM_online_step.onnx). The exported model (and TSM.onnx) is checked against the
dynamic model on random clips, and each step frame by frame against the dynamic stream,
before the run ends.
"""
import os
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)

import console
import outputs
from models import TSM
from models.deploy.onnx_export import MissingPackage, export_onnx, onnx_logits
from models.deploy.predictor import model_files
from models.deploy.step import STEP_NAME, export_checked_step
from models.deploy.static import check, export_checked
from models.weights import load_for_inference

def export(cfg, weights, save_dir, onnx=False, opset=13):
    """Build TSM from cfg['MODEL'], load `weights`, write and check the exported files;
    returns {kind: path} of the files written."""
    model = TSM(**cfg['MODEL'])
    load_for_inference(model, weights, cfg['DATA']['weights_dir'])
    os.makedirs(save_dir, exist_ok=True)
    prefix = os.path.join(save_dir, 'TSM')
    program, clips, want = export_checked(model, cfg, prefix, weights)
    written = {'program': program, 'settings': prefix + '.yaml'}
    try:
        if onnx:
            written['onnx'] = export_onnx(*model_files(prefix), prefix + '.onnx', opset)
            check(written['onnx'], onnx_logits(written['onnx'], clips), want)
        if cfg['MODEL']['shift_mode'] == 'online':
            written['online_step'], step_onnx = export_checked_step(
                model, os.path.join(save_dir, STEP_NAME), cfg['DATA']['target_size'],
                opset if onnx else None)
            if step_onnx:
                written['online_onnx'] = step_onnx
    except MissingPackage as e:
        raise cli.UsageError(str(e)) from None
    return written


def _files(program):
    """[program, parameters] of the exported program file `program`."""
    return list(model_files(os.path.splitext(program)[0]))


def summary(written, seconds):
    """The closing lines: what was exported and checked, in how long, and the files."""
    engines = 'Paddle Inference and ONNX Runtime' if 'onnx' in written else 'Paddle Inference'
    rows = [('model', _files(written['program'])), ('settings', [written['settings']])]
    if 'online_step' in written:
        rows.append(('online step', _files(written['online_step'])))
    if 'onnx' in written:
        rows.append(('ONNX', [written['onnx']] + ([written['online_onnx']]
                                                  if 'online_onnx' in written else [])))
    return ([f'exported in {console.duration(seconds)}, checked against the dynamic model '
             f'on {engines}'] + console.written(rows))


def main(argv=None):
    args, cfg = cli.start('export', argv)
    outputs.writable_folder(args.export_dir, '--save_dir')  # before the weights are fetched
    started = time.time()
    written = export(cfg, cfg['INFER']['weights'], args.export_dir, args.onnx, args.opset)
    console.log_lines(summary(written, time.time() - started))
    return 0


if __name__ == '__main__':
    cli.run('export', main)
