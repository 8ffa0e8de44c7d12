"""What runs a clip model for eval.py and predict.py: the exported model through Paddle
Inference, ONNX Runtime or OpenVINO (TEST/INFER.engine; exported once, checked and cached),
or the dynamic TSM; and the record of which one ran, for their JSON outputs.

Engine 'auto', the default, runs the fastest of the installed engines: the first time a
model meets a machine, each engine's export is built and timed on a clip (or a frame of the
online step) and the choice is kept in <cache>/exported/engine_choice.json, keyed by the
exported model, the precision, the threads, the CPU and the engines' versions; later runs read
it. An engine whose export cannot be built or checked is left out with a warning. An export
folder (infer_model) under auto runs on Paddle Inference: its program is always there.
"""
import importlib.util
import json
import logging
import os
import platform
import time

import numpy as np

from configs import cli
from models import TSM
from models.device import usable_cores
from models.deploy.engines import (ENGINES, INT8_FILE, NAMES, clip_runner, engine_precision,
                                   engine_version)
from models.deploy.onnx_export import MissingPackage
from models.deploy.predictor import Predictor, check_matches, model_files
from models.weights import load_for_inference
from models.weights.cache import cache_folder, sha256sum
from models.workarounds.mkl import cpu_info
from models.deploy.cache import EXPORTED, exported_model
import outputs
from reader.dataset import read_clip
from reader.listfile import read_list
from reader.protocols import input_size

INT8_CLIPS = 32  # calibration clips drawn from TRAIN.filelist for an int8 copy


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
        if settings['engine'] == 'auto':  # it times the exports it builds from weights
            logging.info('%s.engine auto: an export folder runs on Paddle Inference; name '
                         'onnxruntime or openvino to run its TSM.onnx', section)
        elif settings['engine'] != 'paddle':
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
    if engine == 'auto' and settings['precision'] == 'int8':
        engine = 'openvino'  # the one engine that runs int8
    if engine == 'auto':
        return _fastest(sized, section, use_gpu)
    calibration = int8_calibration(sized) if settings['precision'] == 'int8' else None
    try:
        folder = exported_model(sized, settings['weights'], cfg['DATA']['weights_dir'], engine,
                                calibration)
    except MissingPackage as e:
        raise cli.UsageError(f'{section}.engine: {e}') from None
    if engine != 'paddle':
        return _runner(folder, sized, section)
    return _predictor(folder, sized, section, use_gpu)


def int8_calibration(cfg):
    """(what names them, fn() -> clips): INT8_CLIPS clips of TRAIN.filelist (a fixed draw),
    read as the model is fed at test time, for NNCF's int8 calibration."""
    path, root = cfg['TRAIN']['filelist'], cfg['DATA']['data_root']

    def clips():
        items = read_list(path, root)
        picked = sorted(np.random.default_rng(0).permutation(len(items))[:INT8_CLIPS])
        logging.info('int8: calibrating on %d clips of %s', len(picked), path)
        return np.stack([read_clip(items[i][0], cfg, 'test')[0] for i in picked])
    return f'{sha256sum(path)} {os.path.abspath(root)} {INT8_CLIPS}', clips


def installed_engines(use_gpu=False, precision='fp32'):
    """The engines this machine can run an exported model on at `precision`: Paddle
    Inference, and on the CPU the optional packages that import (with paddle2onnx, which
    writes their ONNX form)."""
    import paddle
    if use_gpu and paddle.device.is_compiled_with_cuda():
        return ['paddle']  # the other two run on the CPU here
    found = []
    onnx = importlib.util.find_spec('paddle2onnx') is not None
    for engine in ENGINES:
        try:
            engine_version(engine)
            if engine != 'paddle':
                engine_precision(engine, precision)
                if not onnx:
                    continue
            found.append(engine)
        except (MissingPackage, ValueError):  # absent, or not at this precision
            pass
    return found


def _fastest(cfg, section, use_gpu):
    """The exported model on the fastest installed engine (module docstring)."""
    settings, cache_dir = cfg[section], cfg['DATA']['weights_dir']
    engines = installed_engines(use_gpu, settings['precision'])
    run = {}

    def runner(engine):
        if engine not in run:
            folder = exported_model(cfg, settings['weights'], cache_dir, engine)
            choice = dict(cfg, **{section: dict(settings, engine=engine)})
            run[engine] = (_predictor(folder, choice, section, use_gpu) if engine == 'paddle'
                           else _runner(folder, choice, section))
        return run[engine]

    def timed(engine):
        clips = runner(engine)
        return lambda: clips(clip)

    clip = np.random.default_rng(0).standard_normal(
        [1, cfg['MODEL']['seg_num'], 3] + [cfg['DATA']['target_size']] * 2, dtype=np.float32)
    key = [os.path.basename(exported_model(cfg, settings['weights'], cache_dir)),
           settings['precision'], settings['threads'] or usable_cores()]
    return runner(fastest_engine(key, engines, timed, cache_dir))


def fastest_engine(key, engines, timed, cache_dir):
    """The fastest of `engines` for `key` (what is run, as a JSON-able list): the one engine
    when there is one; else read from the choices kept in the cache, or measured with
    timed(engine) -> fn() (the median of 3 runs after one) and kept."""
    if len(engines) == 1:
        return engines[0]
    path = os.path.join(cache_folder(cache_dir), EXPORTED, 'engine_choice.json')
    key = json.dumps(key + [_cpu(), {e: engine_version(e) for e in engines}])
    try:
        with open(path) as f:
            choices = json.load(f)
    except (OSError, ValueError):
        choices = {}
    if key in choices and choices[key]['engine'] in engines:
        return choices[key]['engine']
    ms = {}
    for engine in engines:
        try:
            fn = timed(engine)
            fn()
        except Exception as e:  # noqa: BLE001  an optional engine that fails this model
            if engine == 'paddle':
                raise
            logging.warning('engine auto: %s left out, it cannot run this model (%s: %s)',
                            NAMES[engine], type(e).__name__, str(e).splitlines()[0][:200])
            continue
        ms[engine] = 1e3 * float(np.median([_seconds(fn) for _ in range(3)]))
    engine = min(ms, key=ms.get)
    logging.info('engine auto: %s, the fastest here (%s; measured once, kept in %s)',
                 NAMES[engine], ', '.join(f'{NAMES[e]} {t:.1f} ms' for e, t in ms.items()),
                 path)
    choices[key] = {'engine': engine, 'ms': {e: round(t, 2) for e, t in ms.items()}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with outputs.replacing(path) as f:
        json.dump(choices, f, indent=1)
    return engine


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu():
    """The CPU's model name, for the choice's key."""
    return cpu_info()['model'] or platform.processor() or platform.machine()


def _runner(folder, cfg, section):
    """The exported model's ONNX file in `folder` on cfg[section]['engine']."""
    settings = cfg[section]
    onnx = os.path.join(folder, 'TSM.onnx')
    if settings['precision'] == 'int8' and not settings['infer_model']:
        onnx = os.path.join(folder, INT8_FILE)
        with open(os.path.join(folder, 'int8.json')) as f:
            stats = json.load(f)
        logging.info('int8 copy: the top class of fp32 on %.0f%% of its %d calibration clips',
                     100 * stats['same_top1_as_fp32'], stats['clips'])
    elif settings['precision'] == 'int8':
        raise cli.UsageError(f'{section}.precision int8 is built from weights (--weights), '
                             f'not from an export folder')
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
