"""Where weights come from: a local file, a URL, or the name of a published checkpoint.

Named and URL weights are downloaded once into the cache (models/download.py). Any layout
models/convert.py knows is accepted (our .pdparams, PaddleVideo, the old Paddle zoo's
.pdparams and fluid .tar.gz, the original PyTorch .pth, torchvision) and converted in
memory. A download is converted against the model before it is published in the cache,
so a file for another network never lands there under the final name.
train.py starts from `load_for_training`, eval.py and predict.py from `load_for_inference`.
"""
import logging
import os

from models.convert import convert_file
from models.download import fetch

log = logging.getLogger(__name__)

# Published checkpoints. No checksums are published with them, so each download is checked
# by converting it for the model instead (names and shapes must match).
# seg_num: segments the checkpoint was trained with (PaddleVideo shifts 1/seg_num).
PUBLISHED = {
    'kinetics400': {
        'urls': ['https://videotag.bj.bcebos.com/PaddleVideo-release2.1/TSM/TSM_k400.pdparams'],
        'about': 'PaddleVideo TSM-R50 Kinetics-400, 8 segments, top-1 71.06 '
                 '(1 clip x 1 centre crop)',
        'seg_num': 8,
    },
    'imagenet': {
        'urls': ['https://videotag.bj.bcebos.com/PaddleVideo/PretrainModel/'
                 'ResNet50_pretrain.pdparams'],
        'about': 'PaddleVideo ResNet-50 ImageNet classifier, the start of Kinetics training',
    },
    'kinetics400-zoo': {
        'urls': ['https://paddlemodels.bj.bcebos.com/video_classification/TSM.pdparams'],
        'about': 'old Paddle video zoo TSM-R50 Kinetics-400, 8 segments',
        'seg_num': 8,
    },
    'imagenet-zoo': {
        'urls': ['https://paddlemodels.bj.bcebos.com/video_classification/'
                 'ResNet50_pretrained.tar.gz'],
        'about': 'old Paddle video zoo ResNet-50 ImageNet weights (fluid parameter files)',
    },
    'kinetics400-mit': {
        'urls': ['https://file.lzhu.me/projects/tsm/models/'
                 'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth',
                 'https://hanlab18.mit.edu/projects/tsm/models/'
                 'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth'],
        'about': 'original PyTorch TSM-R50 Kinetics-400, 8 segments, uniform sampling, '
                 'top-1 71.2 (1 clip x 1 crop); reading it needs PyTorch',
        'seg_num': 8,
    },
}


def _source_seg_num(spec):
    return PUBLISHED.get(spec, {}).get('seg_num', 8)


def resolve(spec, model=None, for_training=False, cache_dir=None):
    """A local path for `spec`: an existing file or folder as is, a URL or published name
    downloaded into `cache_dir` (None or '': $TSM_WEIGHTS_HOME, else ~/.paddle/weights). With
    `model`, a download is converted for it before it is cached, and rejected (not cached)
    when it does not fit."""
    if os.path.exists(spec):
        return spec
    verify = None
    if model is not None:
        def verify(path):
            convert_file(path, model, seg_num=_source_seg_num(spec), for_training=for_training)
        verify.__name__ = f'a conversion for the {type(model).__name__} model'
    if spec in PUBLISHED:
        entry = PUBLISHED[spec]
        log.info('weights %r: %s', spec, entry['about'])
        return fetch(entry['urls'], sha256=entry.get('sha256'), cache_dir=cache_dir,
                     verify=verify)
    if spec.startswith(('http://', 'https://')):
        return fetch([spec], cache_dir=cache_dir, verify=verify)
    known = ', '.join(sorted(PUBLISHED))
    raise FileNotFoundError(f'weights {spec!r}: no such file, and not a URL or one of the '
                            f'published names ({known})')


def _load(model, spec, for_training, cache_dir):
    path = resolve(spec, model, for_training, cache_dir)
    state = convert_file(path, model, seg_num=_source_seg_num(spec), for_training=for_training)
    # A skipped classifier keeps its current values (set_state_dict warns on absent keys).
    full = dict(model.state_dict())
    full.update(state)
    model.set_state_dict(full)
    return path


def load_for_inference(model, spec, cache_dir=None):
    """All of the model's parameters from `spec`; any mismatch is an error. `cache_dir`:
    where downloads go (None or '': the default of `resolve`)."""
    if not spec:
        raise ValueError('no weights given: pass --weights FILE (or set TEST/INFER.weights)')
    path = _load(model, spec, False, cache_dir)
    log.info('loaded weights %s', path)


def load_for_training(model, spec, cache_dir=None):
    """Start weights from `spec` (the classifier skipped when class counts differ); '' starts
    from random initialisation."""
    if not spec:
        log.info('no pretrain weights: training from random initialisation')
        return
    path = _load(model, spec, True, cache_dir)
    log.info('loaded pretrain weights %s', path)
