"""Each published test protocol gives the network the pixels its source computes.

The references here are the sources' algorithms written again from their code, with their
own formulas and library (PIL, as torchvision's Resize / CenterCrop and the original
GroupOverSample / GroupFullResSample, and PaddleVideo's Sampler, Scale, CenterCrop and
GroupFullResSample use it), never the reader's code: frame indices as the sources compute
them, PIL images resized, cropped and mirrored by PIL, normalised as float32
(x / 255 - mean) / std. Our reader's clip must equal them to 1e-5.
"""
import cv2
import numpy as np
import pytest
from PIL import Image

from configs.config import load_config
from reader.dataset import read_clip
from reader.protocols import PROTOCOLS
from reader.sampling import sample_indices, source_views
from reader.transforms import random_crop_box, resize_short, train_transform
from tests.videos import sequential_frames, write_index_video

SEG = 8
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


# -- frame indices, as each source writes them (0-based: the sources add 1 for img_00001.jpg)

def mit_test_indices(num_frames, num_segments):
    """ops/dataset.py TSNDataSet._get_test_indices, RGB (new_length 1), less its + 1."""
    tick = (num_frames - 1 + 1) / float(num_segments)
    return [int(tick / 2.0 + tick * x) for x in range(num_segments)]


def mit_twice_indices(num_frames, num_segments):
    """The twice_sample branch of _get_test_indices, RGB (new_length 1), less its + 1."""
    tick = (num_frames - 1 + 1) / float(num_segments)
    return ([int(tick / 2.0 + tick * x) for x in range(num_segments)]
            + [int(tick * x) for x in range(num_segments)])


def mit_dense_indices(num_frames, num_segments):
    """The dense branch of _get_test_indices (PaddleVideo's dense Sampler is the same code)."""
    sample_pos = max(1, 1 + num_frames - 64)
    t_stride = 64 // num_segments
    start_list = np.linspace(0, sample_pos - 1, num=10, dtype=int)
    offsets = []
    for start_idx in start_list.tolist():
        offsets += [(idx * t_stride + start_idx) % num_frames for idx in range(num_segments)]
    return offsets


def paddlevideo_tsm_indices(frames_len, num_seg):
    """Sampler(select_left=True, valid_mode=True), format 'video'."""
    if frames_len > num_seg:
        average_dur_float = frames_len / num_seg
        offsets = [int(average_dur_float / 2.0 + average_dur_float * x) for x in range(num_seg)]
    else:
        offsets = [0] * num_seg
    return [x % frames_len for x in offsets]


def pptsm_indices(frames_len, num_seg, seg_len=1):
    """Sampler(valid_mode=True), PP-TSM's branch, format 'video'."""
    average_dur = int(frames_len / num_seg)
    frames_idx = []
    for i in range(num_seg):
        if average_dur >= seg_len:
            idx = (average_dur - 1) // 2
            idx += i * average_dur
        elif average_dur >= 1:
            idx = i * average_dur
        else:
            idx = i
        for jj in range(idx, idx + seg_len):
            frames_idx.append(int(jj % frames_len))
    return frames_idx


SOURCE_INDICES = {'tick': mit_test_indices, 'tick_or_first': paddlevideo_tsm_indices,
                  'pptsm': pptsm_indices, 'dense_10': mit_dense_indices,
                  'twice': mit_twice_indices}


@pytest.mark.parametrize('sampling', sorted(SOURCE_INDICES))
@pytest.mark.parametrize('seg_num', (3, 8, 16))
def test_sampling_equals_the_sources_for_every_length(sampling, seg_num):
    for n in range(1, 401):
        want = SOURCE_INDICES[sampling](n, seg_num)
        got = source_views(n, seg_num, sampling)
        assert got.dtype == np.int64 and got.tolist() == want, (n, got, want)
        assert 0 <= got.min() and got.max() < n


def test_where_the_sources_and_our_sampling_part():
    # 217 frames: the sources take 122 149 176 in segments 4..6, our integer bounds the
    # centre one frame earlier; PP-TSM takes the left one of two middle frames.
    assert source_views(217, 8, 'tick')[4:7].tolist() == [122, 149, 176]
    assert sample_indices(217, 8, 'test')[4:7].tolist() == [121, 148, 175]
    assert source_views(300, 8, 'pptsm').tolist() == [18, 55, 92, 129, 166, 203, 240, 277]
    assert source_views(8, 8, 'tick_or_first').tolist() == [0] * 8  # PaddleVideo: > seg only
    assert source_views(5, 8, 'tick').tolist() == [0, 0, 1, 2, 2, 3, 4, 4]
    # twice_sample: the second clip half a tick (here 1.25 frames) before the first
    assert source_views(10, 4, 'twice').tolist() == [1, 3, 6, 8, 0, 2, 5, 7]


# -- pixels: resize, crops and normalisation through PIL, as the sources do

def torchvision_resize(img, size):
    """torchvision.transforms.Resize(int) on a PIL image: short side to size, the long side
    truncated, the image kept when its short side is already size."""
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        return img.resize((size, int(size * h / w)), Image.BILINEAR)
    return img.resize((int(size * w / h), size), Image.BILINEAR)


def paddlevideo_scale(img, short_size, fixed_ratio):
    """PaddleVideo Scale (backend pillow, do_round False, keep_ratio None)."""
    w, h = img.size
    if (w <= h and w == short_size) or (h <= w and h == short_size):
        return img
    if w <= h:
        ow = short_size
        oh = int(short_size * 4.0 / 3.0) if fixed_ratio else int(h * short_size / w)
    else:
        oh = short_size
        ow = int(short_size * 4.0 / 3.0) if fixed_ratio else int(w * short_size / h)
    return img.resize((ow, oh), Image.BILINEAR)


def centre_crop(img, size):
    """torchvision CenterCrop / PaddleVideo CenterCrop (do_round): round((W - c) / 2)."""
    w, h = img.size
    x1, y1 = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return [img.crop((x1, y1, x1 + size, y1 + size))]


def over_sample(img, size):
    """mit GroupOverSample (flip): fill_fix_offset(False) offsets, each crop then its mirror."""
    w, h = img.size
    w_step, h_step = (w - size) // 4, (h - size) // 4
    offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step),
               (2 * w_step, 2 * h_step)]
    out = []
    for o_w, o_h in offsets:
        crop = img.crop((o_w, o_h, o_w + size, o_h + size))
        out += [crop, crop.copy().transpose(Image.FLIP_LEFT_RIGHT)]
    return out


def full_res_sample(img, size):
    """GroupFullResSample (flip False), mit's and PaddleVideo's: left, right, centre."""
    w, h = img.size
    w_step, h_step = (w - size) // 4, (h - size) // 4
    offsets = [(0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 2 * h_step)]
    return [img.crop((o_w, o_h, o_w + size, o_h + size)) for o_w, o_h in offsets]


# protocol -> (resize, crops, crop side), each a function of PIL images
SOURCE_PIXELS = {
    'mit-1crop': (lambda im: torchvision_resize(im, 256), centre_crop, 224),
    'mit-10crop': (lambda im: torchvision_resize(im, 256), over_sample, 224),
    'mit-dense': (lambda im: torchvision_resize(im, 256), full_res_sample, 256),
    # test_models.py --full_res: GroupFullResSample(scale_size, scale_size), 256 both
    'mit-twice': (lambda im: torchvision_resize(im, 256), full_res_sample, 256),
    'paddlevideo-tsm': (lambda im: paddlevideo_scale(im, 256, False), centre_crop, 224),
    'pptsm-uniform': (lambda im: paddlevideo_scale(im, 256, True), centre_crop, 224),
    'pptsm-dense': (lambda im: paddlevideo_scale(im, 256, True), full_res_sample, 224),
}


def to_input(crops):
    """PIL crops of one view's frames -> float32 [T, 3, c, c], (x / 255 - mean) / std."""
    x = np.stack([np.asarray(c, dtype=np.float32) for c in crops]) / 255.0
    return ((x - MEAN) / STD).transpose(0, 3, 1, 2)


def source_clip(frames, name):
    """The network input of the source of protocol `name` for decoded RGB frames [N, H, W, 3],
    views [V, T, 3, c, c] clip-major (mit's dense test orders them crop-major: reordered)."""
    resize, crop, _ = SOURCE_PIXELS[name]
    sampling = PROTOCOLS[name].sampling
    indices = SOURCE_INDICES[sampling](len(frames), SEG)
    clips = [indices[k:k + SEG] for k in range(0, len(indices), SEG)]
    views = []
    for clip in clips:
        per_frame = [crop(resize(Image.fromarray(frames[i])), SOURCE_PIXELS[name][2])
                     for i in clip]  # [T][crops]
        views += [to_input([f[v] for f in per_frame]) for v in range(len(per_frame[0]))]
    return np.stack(views)


# frames, W, H: 402x300 becomes 343x256, where round((343 - 224) / 2) = 60 is not the floor
VIDEOS = [(217, 402, 300), (37, 300, 400), (5, 160, 120), (1, 256, 320)]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """{(frames, W, H): (path, decoded frames)}: landscape and portrait, shrunk and enlarged
    to 256, and one whose short side is 256 already."""
    root = tmp_path_factory.mktemp('protocol_videos')
    out = {}
    for n, w, h in VIDEOS:
        path = write_index_video(str(root / f'v{n}_{w}x{h}.mp4'), n, w, h, codec='h264')
        out[(n, w, h)] = path, sequential_frames(path)
    return out


def config(tmp_path, name):
    path = tmp_path / 'c.yaml'
    path.write_text(f'MODEL: {{seg_num: {SEG}}}\nTEST: {{protocol: {name}}}\n')
    return load_config(str(path))


@pytest.mark.parametrize('video', VIDEOS, ids=lambda v: '%d-%dx%d' % v)
@pytest.mark.parametrize('name', sorted(SOURCE_PIXELS))
def test_reader_input_equals_the_source(videos, tmp_path, name, video):
    path, frames = videos[video]
    got = read_clip(path, config(tmp_path, name), 'test')
    want = source_clip(frames, name)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5


def test_jpeg_frames_read_as_the_sources_read_them(videos, tmp_path):
    # PaddleVideo's extraction writes JPEGs with OpenCV and its FrameDecoder opens them with
    # PIL; our frame folders decode with OpenCV: the same pixels.
    path, frames = videos[(37, 300, 400)]
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f'img_{i + 1:05d}.jpg'), frame[:, :, ::-1])
    read = np.stack([np.asarray(Image.open(folder / f'img_{i + 1:05d}.jpg').convert('RGB'))
                     for i in range(len(frames))])
    got = read_clip(str(folder), config(tmp_path, 'paddlevideo-tsm'), 'test')
    assert np.abs(got - source_clip(read, 'paddlevideo-tsm')).max() <= 1e-5


def test_pil_resize_in_our_pipeline_and_training(videos):
    _, frames = videos[(37, 300, 400)]
    frames = frames[:3]
    pil = resize_short(frames, 256, 'pil')
    want = [np.asarray(Image.fromarray(f).resize((256, round(400 * 256 / 300)), Image.BILINEAR))
            for f in frames]
    np.testing.assert_array_equal(pil, np.stack(want))
    # the multi-scale crop resized to the input side with PIL (DATA.resize: pil)
    scales = [1.0, 0.875, 0.75, 0.66]
    got, _ = train_transform(frames, 256, 224, scales, False, MEAN, STD,
                             np.random.default_rng(7), 'pil')
    top, left, ch, cw = random_crop_box(*pil.shape[1:3], scales, np.random.default_rng(7))
    crops = [Image.fromarray(f[top:top + ch, left:left + cw]).resize((224, 224), Image.BILINEAR)
             for f in pil]
    assert np.abs(got - to_input(crops)).max() <= 1e-5
