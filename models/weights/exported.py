"""The exported inference model of a weights file, built once and kept beside the cache.

eval.py and predict.py run a TSM through Paddle Inference unless told --dynamic: on the CPU
its oneDNN passes fold BatchNorm and fuse ReLU into the convolutions, which Paddle's eager
kernels never do (2.3x faster on R50, see the README). The export of a weights file for a
config is built the first time (models.static.export_checked: checked against the dynamic
model) and kept in <cache>/exported/<key>, the key a digest of the weights file's bytes, the
MODEL settings, the frame size and the Paddle version (2.6 and 3 write other programs), so a
changed file or setting builds anew. A folder is built under a temporary name and renamed
whole: a half-built export never serves.
"""
import hashlib
import json
import logging
import os
import shutil

import paddle

from ..inference import model_files
from ..static import export_checked
from ..tsm import TSM
from . import load_for_inference
from .download import cache_folder, sha256sum
from .published import local_path

log = logging.getLogger(__name__)

EXPORTED = 'exported'


def _digest(path):
    """sha256 of a weights file, or of a fluid parameter folder's files in name order."""
    if os.path.isfile(path):
        return sha256sum(path)
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        digest.update(name.encode() + sha256sum(os.path.join(path, name)).encode())
    return digest.hexdigest()


def _key(weights_file, cfg):
    record = {'weights': _digest(weights_file), 'model': cfg['MODEL'],
              'target_size': cfg['DATA']['target_size'], 'paddle': paddle.__version__}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


def _folder(key, cache_dir):
    return os.path.join(cache_folder(cache_dir), EXPORTED, key)


def exported_model(cfg, spec, cache_dir=None):
    """The folder of the exported model of weights `spec` (a file, folder, URL or name) for
    cfg's MODEL and DATA.target_size, building it when the cache has none."""
    path = local_path(spec, cache_dir)
    if path is not None:
        folder = _folder(_key(path, cfg), cache_dir)
        if os.path.isdir(folder):
            return folder
    model = TSM(**cfg['MODEL'])
    path = load_for_inference(model, spec, cache_dir)  # downloads and checks when needed
    folder = _folder(_key(path, cfg), cache_dir)
    if os.path.isdir(folder):
        return folder
    log.info('building the exported model of %s for this config (once; kept in %s)', spec,
             folder)
    tmp = f'{folder}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        export_checked(model, cfg, os.path.join(tmp, 'TSM'), spec)
        model_files(tmp)  # both files are there
        try:
            os.rename(tmp, folder)
        except OSError:  # another process published the same export meanwhile
            if not os.path.isdir(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
