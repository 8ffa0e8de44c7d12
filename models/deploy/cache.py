"""The exported inference model of a weights file, built once and kept beside the cache.

eval.py and predict.py run a TSM through Paddle Inference unless told --dynamic: on the CPU
its oneDNN passes fold BatchNorm and fuse ReLU into the convolutions, which Paddle's eager
kernels never do (docs/speed.md). The export of a weights file for a
config is built the first time (models.deploy.static.export_checked: checked against the dynamic
model) and kept in <cache>/exported/<key>, the key a digest of the weights file's bytes, the
MODEL settings, the frame size and the Paddle version (2.6 and 3 write other programs), so a
changed file or setting builds anew. For ONNX Runtime and OpenVINO (models.deploy.engines) the
folder also holds the ONNX file, checked on that engine, and the key names the engine and its
version. A folder is built under a temporary name and renamed
whole: a half-built export never serves. The build records the sha256 of each file it wrote
(checksums.json) and every use checks them: a folder whose files changed since (a disk
error, a hand edit, a build of an earlier version with no record) is built again.
"""
import hashlib
import json
import logging
import os
import shutil

import paddle

from ..tsm import TSM
from ..weights import load_for_inference
from ..weights.cache import cache_folder, sha256sum
from ..weights.published import local_path
from .engines import INT8_FILE, clip_runner, engine_version, quantise_int8, step_runner
from .onnx_export import ONNX_OPSET, export_onnx
from .predictor import model_files
from .static import check, export_checked
from .step import STEP_NAME, check_step, export_checked_step

log = logging.getLogger(__name__)

EXPORTED = 'exported'
CHECKSUMS = 'checksums.json'


def _digest(path):
    """sha256 of a weights file, or of a fluid parameter folder's files in name order."""
    if os.path.isfile(path):
        return sha256sum(path)
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        digest.update(name.encode() + sha256sum(os.path.join(path, name)).encode())
    return digest.hexdigest()


def _key(weights_file, cfg, kind, engine, calibration=None):
    record = {'weights': _digest(weights_file), 'model': cfg['MODEL'],
              'target_size': cfg['DATA']['target_size'], 'paddle': paddle.__version__}
    if kind != 'clip':  # the clip export's key is what it was before steps were cached
        record['kind'] = kind
    if engine != 'paddle':
        record['engine'] = [engine, engine_version(engine)]
    if calibration:
        record['int8'] = [calibration[0], engine_version('nncf')]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


def _folder(key, cache_dir):
    return os.path.join(cache_folder(cache_dir), EXPORTED, key)


def _write_checksums(folder):
    sums = {name: sha256sum(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}
    with open(os.path.join(folder, CHECKSUMS), 'w') as f:
        json.dump(sums, f, indent=1)


def _checksum_problem(folder):
    """Why the files of `folder` are not those its build wrote, or None."""
    try:
        with open(os.path.join(folder, CHECKSUMS)) as f:
            sums = json.load(f)
    except (OSError, ValueError) as exc:
        return f'no readable record of its files ({CHECKSUMS}: {exc})'
    if not isinstance(sums, dict) or not sums:
        return f'{CHECKSUMS} lists no files'
    for name, recorded in sorted(sums.items()):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f'{name} is missing'
        actual = sha256sum(path)
        if actual != recorded:
            return f'{name} has sha256 {actual}, not the {recorded} written'
    return None


def _cached(folder):
    """True for a folder whose files are those its build wrote; one whose are not is
    removed, to be built again."""
    if not os.path.isdir(folder):
        return False
    problem = _checksum_problem(folder)
    if problem is None:
        return True
    log.warning('rebuilding the exported model %s: %s', folder, problem)
    aside = f'{folder}.bad-{os.getpid()}'
    try:
        os.rename(folder, aside)  # at once: another process may be building it meanwhile
    except FileNotFoundError:  # another process removed it first
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return False


def exported_model(cfg, spec, cache_dir=None, engine='paddle', calibration=None):
    """The folder of the exported model of weights `spec` (a file, folder, URL or name) for
    cfg's MODEL and DATA.target_size, building it when the cache has no good one; for an
    `engine` other than 'paddle' it holds TSM.onnx too, checked on that engine. With
    `calibration` (what names the clips, fn() -> the clips), OpenVINO's int8 copy
    (engines.INT8_FILE) too, and int8.json: how often it keeps fp32's top class on them."""
    return _exported(cfg, spec, cache_dir, 'clip', engine, calibration)


def exported_step(cfg, spec, cache_dir=None, engine='paddle'):
    """The folder holding TSM_online_step, the exported per-frame step of the online model
    of weights `spec` for cfg's MODEL and DATA.target_size (checked frame by frame against
    the dynamic stream when built), with TSM_online_step.onnx too for an `engine` other than
    'paddle', building it when the cache has no good one."""
    return _exported(cfg, spec, cache_dir, 'online_step', engine)


def _exported(cfg, spec, cache_dir, kind, engine, calibration=None):
    engine_version(engine)  # a missing package is named before anything is built
    path = local_path(spec, cache_dir)
    if path is not None:
        folder = _folder(_key(path, cfg, kind, engine, calibration), cache_dir)
        if _cached(folder):
            return folder
    model = TSM(**cfg['MODEL'])
    path = load_for_inference(model, spec, cache_dir)  # downloads and checks when needed
    folder = _folder(_key(path, cfg, kind, engine, calibration), cache_dir)
    if _cached(folder):
        return folder
    what = 'model' if kind == 'clip' else 'online step'
    log.info('building the exported %s of %s for this config (once; kept in %s)', what, spec,
             folder)
    tmp = f'{folder}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        if kind == 'clip':
            prefix = os.path.join(tmp, 'TSM')
            _, clips, want = export_checked(model, cfg, prefix, spec)
            model_files(tmp)  # both files are there
            if engine != 'paddle':  # checked in fp32, as the Paddle Inference export
                onnx = export_onnx(*model_files(prefix), prefix + '.onnx', ONNX_OPSET)
                check(f'{onnx} on {engine}', clip_runner(engine, onnx, 2, 'fp32')(clips).numpy(),
                      want)
            if calibration:
                stats = quantise_int8(onnx, calibration[1](), os.path.join(tmp, INT8_FILE))
                with open(os.path.join(tmp, 'int8.json'), 'w') as f:
                    json.dump(stats, f)
        else:
            prefix = os.path.join(tmp, STEP_NAME)
            _, onnx = export_checked_step(model, prefix, cfg['DATA']['target_size'],
                                          None if engine == 'paddle' else ONNX_OPSET)
            if engine == 'openvino':  # export_checked_step checked it on ONNX Runtime
                check_step(f'{onnx} on openvino', step_runner(engine, onnx, 2, 'fp32'), model,
                           cfg['DATA']['target_size'])
        _write_checksums(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process published the same export meanwhile
            if not os.path.isdir(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
