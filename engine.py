"""What runs a clip model for eval.py and predict.py: the exported model through Paddle
Inference (the default), ONNX Runtime or OpenVINO (TEST/INFER.engine; exported once, checked
and cached), or the dynamic TSM; and the record of which one ran, for their JSON outputs.
"""
import logging
import os

from configs import cli
from models import TSM
from models.device import usable_cores
from models.deploy.engines import NAMES, clip_runner
from models.deploy.onnx_export import MissingPackage
from models.deploy.predictor import Predictor, check_matches, model_files
from models.weights import load_for_inference
from models.deploy.cache import exported_model
from reader.protocols import input_size


def model_for(cfg, section, use_gpu, dynamic=False):
    """What eval.py and predict.py run for cfg[section] (TEST or INFER): the exported model
    in `infer_model` through paddle.inference when set; else the exported model of `weights`
    (built once, cached: models.deploy.cache); the dynamic TSM with `weights` when
    `dynamic`, or for an online model (its per-frame scores come from the dynamic graph).
    An exported model takes frames of the section's input size: the protocol's crop
    (reader.protocols.input_size), else DATA.target_size."""
    settings = cfg[section]
    sized = dict(cfg, DATA=dict(cfg['DATA'], target_size=input_size(cfg, section.lower())))
    if settings['infer_model']:
        if settings['engine'] != 'paddle':
            return _runner(settings['infer_model'], sized, section)
        return _predictor(settings['infer_model'], sized, section, use_gpu)
    if dynamic or cfg['MODEL']['shift_mode'] == 'online':
        if settings['precision'] not in ('fp32', 'auto'):
            raise cli.UsageError(f'{section}.precision {settings["precision"]}: the dynamic '
                                 f'model computes in fp32; drop --dynamic to run it exported')
        model = TSM(**cfg['MODEL'])
        load_for_inference(model, settings['weights'], cfg['DATA']['weights_dir'])
        model.eval()  # returns None under Paddle 2.6
        return model
    engine = settings['engine']
    try:
        folder = exported_model(sized, settings['weights'], cfg['DATA']['weights_dir'], engine)
    except MissingPackage as e:
        raise cli.UsageError(f'{section}.engine: {e}') from None
    if engine != 'paddle':
        return _runner(folder, sized, section)
    return _predictor(folder, sized, section, use_gpu)


def _runner(folder, cfg, section):
    """The exported model's ONNX file in `folder` on cfg[section]['engine']."""
    settings = cfg[section]
    onnx = os.path.join(folder, 'TSM.onnx')
    if not os.path.isfile(onnx):  # an export.py folder written without --onnx
        raise cli.UsageError(f"{section}.engine {settings['engine']} runs {onnx}, which is not "
                             f"there: export with --onnx")
    try:
        check_matches(model_files(folder)[0], cfg)
        runner = clip_runner(settings['engine'], onnx, settings['threads'] or usable_cores(),
                             settings['precision'])
    except (ValueError, MissingPackage) as e:  # a precision or package this machine lacks
        raise cli.UsageError(f'{section}: {e}') from None
    runner.engine = settings['engine']
    logging.info('running %s with %s (CPU, %s)', runner.files[0], NAMES[runner.engine],
                 runner.precision)
    return runner


def _predictor(folder, cfg, section, use_gpu):
    settings = cfg[section]
    try:
        check_matches(model_files(folder)[0], cfg)
        predictor = Predictor(folder, use_gpu, settings['threads'] or usable_cores(),
                              settings['precision'])
    except (ValueError, FileNotFoundError) as e:  # a wrong export folder or precision
        raise cli.UsageError(f'{section}: {e}') from None
    logging.info('running %s with Paddle Inference (%s, %s)', folder,
                 'GPU' if predictor.on_gpu else 'CPU', predictor.precision)
    return predictor


def model_source(settings, model):
    """What a TEST or INFER section ran, for the JSON outputs."""
    source = {'infer_model': settings['infer_model']} if settings['infer_model'] else {
        'weights': settings['weights']}
    if isinstance(model, Predictor):
        return dict(source, engine='paddle.inference', exported=model.files[0],
                    precision=model.precision)
    if hasattr(model, 'engine'):  # an ONNX file on another runtime
        return dict(source, engine=model.engine, exported=model.files[0],
                    precision=model.precision)
    return dict(source, engine='dynamic', precision='fp32')
