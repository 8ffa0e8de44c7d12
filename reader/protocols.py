"""Test protocols: the complete test pipeline behind each published top-1, as a named preset.

A published figure holds only for the pixels that produced it. Each source samples its test
frames with its own formula (reader/sampling.py `source_views`), resizes with PIL's bilinear
filter with its own rule for the long side, crops with its own offsets and averages its views'
logits; our own pipeline ('ours') differs in each (see the README's note on protocols).
TEST.protocol (and INFER.protocol) names a preset; configs.config resolves an empty value to
the protocol the weights were published with, or 'ours'.

Frames come as the reader decodes them (uint8 RGB [T, H, W, 3]); the sources read JPEG frames
their extraction scripts wrote (mit: ffmpeg, rescaled to 331 pixels high; PaddleVideo: OpenCV,
at full size), a step of data preparation that no test pipeline includes.
"""
import collections

import numpy as np

from .transforms import normalize, resize_frames

OURS = 'ours'  # this project's pipeline: DATA's sizes, resize and normalisation, TEST's counts
SHORT_SIDE = 256  # every source resizes the short side to 256 before cropping
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AVERAGES = ('softmax', 'logits')  # how view scores combine: mean of softmax, or of logits

# sampling: a reader.sampling SOURCE_SAMPLINGS formula; long_side: 'trunc' keeps the aspect
# ratio and truncates the long side (torchvision Resize, PaddleVideo Scale with
# fixed_ratio False), '4:3' makes it int(256 * 4 / 3) = 341 whatever the aspect
# (PaddleVideo Scale's default fixed_ratio); crops: 'centre' (offsets round((W - c) / 2),
# Python's round half to even, as torchvision's and PaddleVideo's CenterCrop), 'ten' (the
# corners and centre on a grid of (W - c) // 4 steps, each followed by its mirror image:
# mit GroupOverSample), 'three' (left, right and centre on that grid, vertically at
# 2 * ((H - c) // 4): GroupFullResSample); average: of the views, 'logits' for every source.
Protocol = collections.namedtuple(
    'Protocol', 'about sampling num_clips long_side crop_size crops average')

PROTOCOLS = {
    # mit-han-lab/temporal-shift-module test_models.py --test_crops=1: 71.2 (kinetics400-mit);
    # also its Something-Something "efficient setting" (centre crop x 1 clip: SSv1 45.6)
    'mit-1crop': Protocol('original TSM, 1 clip x centre crop', 'tick', 1, 'trunc', 224,
                          'centre', 'logits'),
    # --test_crops=3 --twice_sample --full_res: its Something-Something "accurate setting"
    # (full resolution x 2 clips: SSv1 47.2, SSv2 61.2)
    'mit-twice': Protocol('original TSM, 2 clips (twice_sample) x 3 full-resolution 256 crops',
                          'twice', 2, 'trunc', 256, 'three', 'logits'),
    # the same with --test_crops=10: 72.8 (kinetics400-mit)
    'mit-10crop': Protocol('original TSM, 1 clip x 10 crops (corners, centre, mirrored)',
                           'tick', 1, 'trunc', 224, 'ten', 'logits'),
    # --dense_sample --test_crops=3 --full_res: 74.1 (kinetics400-mit-dense)
    'mit-dense': Protocol('original TSM dense, 10 clips x 3 full-resolution 256 crops',
                          'dense_10', 10, 'trunc', 256, 'three', 'logits'),
    # PaddleVideo configs/recognition/tsm/tsm_k400_frames.yaml test: 71.06 (kinetics400)
    'paddlevideo-tsm': Protocol('PaddleVideo TSM, 1 clip x centre crop', 'tick_or_first', 1,
                                'trunc', 224, 'centre', 'logits'),
    # PaddleVideo pptsm_k400_frames_uniform.yaml test: 74.54, distilled 75.11, R101 76.35;
    # pptsm_mv2_k400_videos_uniform.yaml's is the same (Sampler valid_mode, Scale 256 at
    # 4:3, CenterCrop 224): MobileNetV2 68.09
    'pptsm-uniform': Protocol('PaddleVideo PP-TSM uniform, 1 clip x centre crop of 341x256',
                              'pptsm', 1, '4:3', 224, 'centre', 'logits'),
    # PaddleVideo pptsm_k400_frames_dense.yaml test: 75.69, distilled 76.16, R101 77.15
    'pptsm-dense': Protocol('PaddleVideo PP-TSM dense, 10 clips x 3 crops of 341x256',
                            'dense_10', 10, '4:3', 224, 'three', 'logits'),
}
NAMES = (OURS,) + tuple(PROTOCOLS)
CROPS_PER_CLIP = {'centre': 1, 'ten': 10, 'three': 3}


def protocol_of(cfg, mode):
    """The Protocol of `mode`'s section (TEST or INFER), or None for our own pipeline: always
    in 'train' and 'valid', and where the section's protocol is 'ours'."""
    if mode in ('train', 'valid'):
        return None
    name = cfg[mode.upper()]['protocol']
    if name not in NAMES:
        raise ValueError(f'{mode.upper()}.protocol: expected one of {NAMES}, got {name!r}')
    return PROTOCOLS.get(name)


# What a mode reads, resolved from the config once: the protocol (None: our own pipeline), the
# views of a video (clips x crops per clip), the side of the network's input frames and how the
# views' scores combine (one of AVERAGES).
Reading = collections.namedtuple('Reading', 'protocol num_clips num_crops size average')


def reading(cfg, mode):
    """The Reading of `mode`: 1 x 1 view in train and valid; the protocol's views, crop and
    average; or for our own pipeline the section's num_clips / num_crops (INFER falls back to
    TEST's when it has no keys of its own, 0 meaning 1), DATA.target_size and 'softmax'."""
    protocol = protocol_of(cfg, mode)
    if protocol is not None:
        return Reading(protocol, protocol.num_clips, CROPS_PER_CLIP[protocol.crops],
                       protocol.crop_size, protocol.average)
    size = cfg['DATA']['target_size']
    if mode in ('train', 'valid'):
        return Reading(None, 1, 1, size, 'softmax')
    section = cfg[mode.upper()]
    return Reading(None, section.get('num_clips', cfg['TEST']['num_clips']) or 1,
                   section.get('num_crops', cfg['TEST']['num_crops']) or 1, size, 'softmax')


def view_counts(cfg, mode):
    """(clips, crops per clip) of one video (see `reading`)."""
    how = reading(cfg, mode)
    return how.num_clips, how.num_crops


def view_average(cfg, mode):
    """How the views of one video combine into its scores (one of AVERAGES)."""
    return reading(cfg, mode).average


def input_size(cfg, mode):
    """The side of the network's input frames: the protocol's crop, else DATA.target_size."""
    return reading(cfg, mode).size


def resized_size(height, width, long_side):
    """(height, width) a source resizes a height x width frame to, or None when it keeps
    the frame as it is (its short side is already SHORT_SIDE: every source skips those)."""
    if min(height, width) == SHORT_SIDE:
        return None
    if long_side == '4:3':
        long = int(SHORT_SIDE * 4.0 / 3.0)
        return (long, SHORT_SIDE) if width <= height else (SHORT_SIDE, long)
    if width < height:
        return int(SHORT_SIDE * height / width), SHORT_SIDE
    return SHORT_SIDE, int(SHORT_SIDE * width / height)


def crop_boxes(height, width, size, crops):
    """[(top, left, mirrored)] of the crops of a height x width frame, in the source's order."""
    if crops == 'centre':
        return [(int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), False)]
    h_step, w_step = (height - size) // 4, (width - size) // 4
    if crops == 'three':
        return [(2 * h_step, c * w_step, False) for c in (0, 4, 2)]
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) steps: corners, centre
    return [(r * h_step, c * w_step, mirrored) for r, c in grid for mirrored in (False, True)]


def protocol_clip(frames, protocol):
    """One clip's frames uint8 [T, H, W, 3] -> its views float32 [crops, T, 3, c, c]."""
    size = resized_size(*frames.shape[1:3], protocol.long_side)
    if size is not None:
        frames = resize_frames(frames, size[1], size[0], 'pil')
    c = protocol.crop_size
    views = []
    for top, left, mirrored in crop_boxes(*frames.shape[1:3], c, protocol.crops):
        view = frames[:, top:top + c, left:left + c]
        views.append(normalize(view[:, :, ::-1] if mirrored else view, IMAGENET_MEAN,
                               IMAGENET_STD))
    return np.stack(views)


def protocol_views(frames, seg_num, protocol):
    """The views of one video, float32 [V, T, 3, c, c] clip-major, from its frames
    source_views named (uint8 [clips * T, H, W, 3])."""
    return np.concatenate([protocol_clip(frames[k:k + seg_num], protocol)
                           for k in range(0, len(frames), seg_num)])
