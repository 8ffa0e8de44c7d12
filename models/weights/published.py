"""Published checkpoints by name, and where any weights spec points: a file, a folder, a URL.

Named and URL weights are downloaded once into the cache (models/weights/cache.py) and
checked by converting them for the model before they are published there, so a file for
another network never lands in the cache under its final name. No checksums are published
with these files, so that conversion is their check.
"""
import logging
import os

from .checkpoint import MODEL_FILE, is_checkpoint, read_state
from .cache import cache_path
from .download import fetch
from .errors import WeightsError

log = logging.getLogger(__name__)

# The MODEL settings the Kinetics-400 TSM-R50 checkpoints were trained with (the keys of
# convert.COMPUTATION); loading compares a model's settings with them.
R50_K400 = {'backbone': 'resnet', 'depth': 50, 'num_classes': 400, 'seg_num': 8,
            'shift_mode': 'bidirectional', 'shift_place': 'residual', 'shift_ratio': 0.125,
            'shift_every': 1}
# PP-TSM: PaddleVideo's ResNetTweaksTSM, ResNet-vd with the same shift (1/num_seg = 1/8
# each way in every block).
PPTSM_R50 = dict(R50_K400, backbone='resnet_vd')
PPTSM_R101 = dict(PPTSM_R50, depth=101)
# PP-TSM MobileNetV2: PaddleClas's MobileNetV2 (its first block expands too), the same shift
# in its ten blocks that add their input
PPTSM_MV2 = dict(R50_K400, backbone='mobilenet_v2_pp')
# PP-TSMv2: PaddleVideo's PPTSM_v2 (PP-LCNetV2, one shift of 1/seg_num before its third
# stage); the 16-frame distilled model adds the temporal attention (its config's
# use_temporal_att), the others have none.
PPTSMV2_8 = dict(R50_K400, backbone='pplcnet_v2', temporal_attention=False)
PPTSMV2_16 = dict(PPTSMV2_8, seg_num=16, shift_ratio=0.0625)
PPTSMV2_16_LTA = dict(PPTSMV2_16, temporal_attention=True)
_PPTSM_URL = 'https://videotag.bj.bcebos.com/PaddleVideo-release2.1/PPTSM/'
_PPTSMV2_URL = 'https://videotag.bj.bcebos.com/PaddleVideo-release2.3/'
_PPTSM_R101_URL = 'https://videotag.bj.bcebos.com/PaddleVideo-release2.2/'
_MIT_URLS = ('https://file.lzhu.me/projects/tsm/models/',
             'https://hanlab18.mit.edu/projects/tsm/models/')
# The original code's Something-Something TSMs (V1 and V2 alike): 174 classes, 8 or 16
# segments; its ResNet-101 shifts every other block (n_round 2 when layer3 has 23 blocks).
R50_STH = dict(R50_K400, num_classes=174)
R50_STH_16 = dict(R50_STH, seg_num=16)
R101_STH = dict(R50_STH, depth=101, shift_every=2)
# Their outputs are in the order of the original's category.txt: SSv1's sorts the names of
# something-something-v1-labels.csv (data/make_lists.py sthv1 --label_order sorted writes
# it); SSv2's follows the index of something-something-v2-labels.json.
_STHV1_LABELS = ('class names: labels.txt of data/make_lists.py sthv1 ... --label_order '
                 'sorted')
STHV2_LABELS = 'data/sthv2_labels.txt'
# The original code's MobileNetV2 TSMs: its Kinetics-400 model (archs/mobilenet_v2.py, ten
# shifted blocks) and its online demo's gesture model (online_demo/mobilenet_v2_tsm.py: the
# same network with a uni-directional shift, 27 Jester classes in sorted order, the order of
# its demo's list and of data/jester_labels.txt).
MV2_K400 = dict(R50_K400, backbone='mobilenet_v2')
MV2_JESTER_ONLINE = dict(MV2_K400, num_classes=27, shift_mode='online')
JESTER_LABELS = 'data/jester_labels.txt'
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mit(file_name, about, model, protocol, labels=None, also=None):
    """A published entry of the original PyTorch code (its two mirrors, then the folder
    `also`); `labels`: the class-name file this project ships for it, or 'sorted' when the
    user's names, sorted, are in the order of its outputs; `protocol` None where no figure
    is published."""
    entry = {'urls': [u + file_name for u in _MIT_URLS + ((also,) if also else ())],
             'about': f'original PyTorch {about}; reading it needs PyTorch', 'model': model}
    if protocol:
        entry['protocol'] = protocol
    if labels == 'sorted':
        entry['label_order'] = labels
    elif labels:
        entry['labels'] = labels
    return entry


def _pptsmv2(file_name, about, model, distilled=False):
    """A published PP-TSMv2; a distilled one is its student's file, else the distillation
    file (the student is read out of it, models/weights/lcnet.py)."""
    files = [file_name + '_student', file_name] if distilled else [file_name]
    return {'urls': [_PPTSMV2_URL + f + '.pdparams' for f in files],
            'about': f'PaddleVideo PP-TSMv2 (PP-LCNetV2) Kinetics-400, {about} (1 clip x 1 '
                     f'centre crop)',
            'model': model, 'protocol': 'pptsm-uniform'}


# 'protocol' (reader/protocols.py) is the test pipeline that produced the published top-1;
# evaluation uses it unless the config names another (TEST.protocol). 'labels': the
# class-name file (INFER.label_file) in the order of the weights' outputs, where this
# project ships it; 'label_order': 'sorted' where the outputs follow the sorted names.
PUBLISHED = {
    'kinetics400': {
        'urls': ['https://videotag.bj.bcebos.com/PaddleVideo-release2.1/TSM/TSM_k400.pdparams'],
        'about': 'PaddleVideo TSM-R50 Kinetics-400, 8 segments, top-1 71.06 '
                 '(1 clip x 1 centre crop)',
        'model': R50_K400,
        'protocol': 'paddlevideo-tsm',
    },
    'imagenet': {
        'urls': ['https://videotag.bj.bcebos.com/PaddleVideo/PretrainModel/'
                 'ResNet50_pretrain.pdparams'],
        'about': 'PaddleVideo ResNet-50 ImageNet classifier, the start of Kinetics training',
    },
    'kinetics400-zoo': {
        'urls': ['https://paddlemodels.bj.bcebos.com/video_classification/TSM.pdparams'],
        'about': 'old Paddle video zoo TSM-R50 Kinetics-400, 8 segments',
        'model': R50_K400,
    },
    'imagenet-zoo': {
        'urls': ['https://paddlemodels.bj.bcebos.com/video_classification/'
                 'ResNet50_pretrained.tar.gz'],
        'about': 'old Paddle video zoo ResNet-50 ImageNet weights (fluid parameter files)',
    },
    'kinetics400-mit': {
        'urls': [u + 'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth'
                 for u in _MIT_URLS],
        'about': 'original PyTorch TSM-R50 Kinetics-400, 8 segments, uniform sampling, '
                 'top-1 71.2 (1 clip x 1 crop; 72.8 with protocol mit-10crop); reading it '
                 'needs PyTorch',
        'model': R50_K400,
        'protocol': 'mit-1crop',
    },
    'kinetics400-mit-dense': {
        'urls': [u + 'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth'
                 for u in _MIT_URLS],
        'about': 'original PyTorch TSM-R50 Kinetics-400, 8 segments, dense sampling, '
                 'top-1 74.1 (10 clips x 3 full-resolution crops); reading it needs PyTorch',
        'model': R50_K400,
        'protocol': 'mit-dense',
    },
    'kinetics400-mit-mv2-dense': _mit(
        'TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_dense.pth',
        'TSM-MobileNetV2 Kinetics-400, 8 segments, dense sampling, top-1 69.5 (10 clips x 3 '
        'full-resolution crops)', MV2_K400, 'mit-dense'),
    'jester-mit-mv2-online': _mit(
        'mobilenetv2_jester_online.pth.tar',
        "online TSM-MobileNetV2 of its online gesture demo, Jester's 27 classes, shift from "
        'the previous frame only; no accuracy published; class names ' + JESTER_LABELS,
        MV2_JESTER_ONLINE, None, JESTER_LABELS, also='https://hanlab.mit.edu/projects/tsm/models/'),
    'pptsm-k400-uniform': {
        'urls': [_PPTSM_URL + 'ppTSM_k400_uniform.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-50-vd Kinetics-400, uniform sampling, top-1 74.54 '
                 '(1 clip x 1 centre crop)',
        'model': PPTSM_R50,
        'protocol': 'pptsm-uniform',
    },
    'pptsm-k400-dense': {
        'urls': [_PPTSM_URL + 'ppTSM_k400_dense.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-50-vd Kinetics-400, dense sampling, top-1 75.69 '
                 '(10 clips x 3 crops)',
        'model': PPTSM_R50,
        'protocol': 'pptsm-dense',
    },
    'pptsm-k400-uniform-distill': {
        'urls': [_PPTSM_URL + 'ppTSM_k400_uniform_distill.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-50-vd Kinetics-400, distilled, uniform sampling, '
                 'top-1 75.11 (1 clip x 1 centre crop)',
        'model': PPTSM_R50,
        'protocol': 'pptsm-uniform',
    },
    'pptsm-k400-dense-distill': {
        'urls': [_PPTSM_URL + 'ppTSM_k400_dense_distill.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-50-vd Kinetics-400, distilled, dense sampling, '
                 'top-1 76.16 (10 clips x 3 crops)',
        'model': PPTSM_R50,
        'protocol': 'pptsm-dense',
    },
    'pptsm-k400-uniform-mv2': {
        'urls': ['https://videotag.bj.bcebos.com/PaddleVideo-release2.3/'
                 'ppTSM_mv2_k400.pdparams'],
        'about': 'PaddleVideo PP-TSM MobileNetV2 Kinetics-400, uniform sampling, top-1 68.09 '
                 '(1 clip x 1 centre crop)',
        'model': PPTSM_MV2,
        'protocol': 'pptsm-uniform',
    },
    'pptsm-k400-uniform-distill-r101': {
        'urls': [_PPTSM_R101_URL + 'ppTSM_k400_uniform_distill_r101.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-101-vd Kinetics-400, distilled, uniform '
                 'sampling, top-1 76.35 (1 clip x 1 centre crop)',
        'model': PPTSM_R101,
        'protocol': 'pptsm-uniform',
    },
    'pptsm-k400-dense-r101': {
        'urls': [_PPTSM_R101_URL + 'ppTSM_k400_dense_r101.pdparams'],
        'about': 'PaddleVideo PP-TSM ResNet-101-vd Kinetics-400, dense sampling, top-1 77.15 '
                 '(10 clips x 3 crops)',
        'model': PPTSM_R101,
        'protocol': 'pptsm-dense',
    },
    'pptsmv2-k400-8f': _pptsmv2('PPTSMv2_k400_8f', '8 frames, top-1 71.81', PPTSMV2_8),
    'pptsmv2-k400-16f': _pptsmv2('PPTSMv2_k400_16f', '16 frames, top-1 73.1', PPTSMV2_16),
    'pptsmv2-k400-8f-dml': _pptsmv2('PPTSMv2_k400_8f_dml', '8 frames, distilled from PP-TSM '
                                    'R50, top-1 72.45', PPTSMV2_8, distilled=True),
    'pptsmv2-k400-16f-dml': _pptsmv2('PPTSMv2_k400_16f_dml', '16 frames, distilled from '
                                     'PP-TSM R50, temporal attention, top-1 75.16',
                                     PPTSMV2_16_LTA, distilled=True),
    'pplcnetv2-imagenet': {
        'urls': ['https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/'
                 'PPLCNetV2_base_ssld_pretrained.pdparams'],
        'about': "PaddleClas PP-LCNetV2 ImageNet classifier (SSLD), PP-TSMv2's start",
    },
    'sthv1-mit': _mit('TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth',
                      'TSM-R50 Something-Something V1, 8 segments, top-1 45.6 (1 clip x '
                      '1 centre crop; 47.2 with protocol mit-twice); ' + _STHV1_LABELS,
                      R50_STH, 'mit-1crop', 'sorted'),
    'sthv1-mit-16': _mit('TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth',
                         'TSM-R50 Something-Something V1, 16 segments, top-1 47.2 (1 clip '
                         'x 1 centre crop; 48.4 with protocol mit-twice); ' + _STHV1_LABELS,
                         R50_STH_16, 'mit-1crop', 'sorted'),
    'sthv1-mit-r101': _mit('TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth',
                           'TSM-R101 Something-Something V1, 8 segments, top-1 46.9 (1 clip '
                           'x 1 centre crop; 48.7 with protocol mit-twice); '
                           + _STHV1_LABELS, R101_STH, 'mit-1crop', 'sorted'),
    'sthv2-mit': _mit('TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth',
                      'TSM-R50 Something-Something V2, 8 segments, top-1 61.2 (2 clips x '
                      '3 full-resolution crops); class names ' + STHV2_LABELS,
                      R50_STH, 'mit-twice', STHV2_LABELS),
    'sthv2-mit-16': _mit('TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth',
                         'TSM-R50 Something-Something V2, 16 segments, top-1 63.1 (2 clips '
                         'x 3 full-resolution crops); class names ' + STHV2_LABELS,
                         R50_STH_16, 'mit-twice', STHV2_LABELS),
    'sthv2-mit-r101': _mit('TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth',
                           'TSM-R101 Something-Something V2, 8 segments, top-1 63.3 (2 clips '
                           'x 3 full-resolution crops); class names ' + STHV2_LABELS,
                           R101_STH, 'mit-twice', STHV2_LABELS),
}



def published_protocol(spec):
    """The test protocol that produced the published figure of weights `spec`, or '' where
    none is published (a local file or folder, a URL, an ImageNet backbone)."""
    return PUBLISHED.get(spec, {}).get('protocol', '')


def label_order_problem(spec, names, path):
    """Why the class names `names` (of the file `path`) do not name the outputs of the
    published weights `spec` in order, or '' when they do or nothing says."""
    entry = PUBLISHED.get(spec, {})
    if len(names) != entry.get('model', {}).get('num_classes', len(names)):
        return ''  # other classes (fine-tuning): loading these weights for them is refused
    if entry.get('labels'):
        with open(os.path.join(_REPO, entry['labels']), encoding='utf-8') as f:
            theirs = [line.strip() for line in f if line.strip()]
        if names != theirs:
            return (f'{path} does not name the classes in the order the weights {spec!r} '
                    f'output them: use {entry["labels"]} (lists numbered in its order)')
    if entry.get('label_order') == 'sorted' and names != sorted(names):
        return (f'{path} is not in sorted order, the order the weights {spec!r} output the '
                f'classes in: write the lists with data/make_lists.py ... --label_order sorted')
    return ''


def recorded_settings(spec):
    """The MODEL settings `spec` (a published name or a local path) was trained with, or
    None where nothing records them (an ImageNet backbone, a bare .pdparams)."""
    if spec in PUBLISHED:
        return PUBLISHED[spec].get('model')
    folder = checkpoint_of(spec)
    return read_state(folder)['model'] if folder else None


def checkpoint_of(spec):
    """The checkpoint folder whose weights `spec` names (the folder, or its weights file),
    else None."""
    folder = spec if os.path.isdir(spec) else os.path.dirname(os.path.abspath(spec))
    if is_checkpoint(folder) and (spec == folder or os.path.basename(spec) == MODEL_FILE):
        return folder
    return None


def local_path(spec, cache_dir=None):
    """The local file of `spec` when it needs no download (a path, or a name or URL already
    in the cache), else None."""
    if os.path.exists(spec):
        return resolve(spec)
    source = _download_source(spec)
    if source is None:
        return None
    urls, name = source
    path = cache_path(urls, cache_dir=cache_dir, name=name)
    return path if os.path.isfile(path) else None


def _download_source(spec):
    """(mirror URLs, published name or None) of a name or URL, else None."""
    if spec in PUBLISHED:
        return PUBLISHED[spec]['urls'], spec
    if spec.startswith(('http://', 'https://')):
        return [spec], None
    return None


def resolve(spec, verify=None, cache_dir=None):
    """A local path for `spec`: an existing file or folder as is (a checkpoint folder: its
    weights file), a URL or published name downloaded into `cache_dir` ('' or None:
    $TSM_WEIGHTS_HOME, else ~/.paddle/weights). verify(path) checks a download before it is
    cached, raising when the file does not fit."""
    if os.path.exists(spec):
        return os.path.join(spec, MODEL_FILE) if is_checkpoint(spec) else spec
    if spec in PUBLISHED:
        entry = PUBLISHED[spec]
        log.info('weights %r: %s', spec, entry['about'])
        return fetch(entry['urls'], sha256=entry.get('sha256'), cache_dir=cache_dir,
                     verify=verify, name=spec)
    if spec.startswith(('http://', 'https://')):
        return fetch([spec], cache_dir=cache_dir, verify=verify)
    known = ', '.join(sorted(PUBLISHED))
    raise WeightsError(f'weights {spec!r}: no such file or folder, and not a URL or one of '
                       f'the published names ({known})')
