"""Generate the built-in demo data: six classes of synthetic videos that differ only in time order.

    python data/make_demo.py --out data/demo [--train_per_class 100 --val_per_class 30
                                              --seed 0 --size 64 --frames 24 --force]

Classes come in pairs (move_left/move_right, rotate_cw/rotate_ccw, grow/shrink). Within a pair,
one class is the other played backwards, and both draw their parameters from the same
distribution, so any single frame is equally likely under either class: a model that averages
frames without order (TSN) sits at chance within each pair, a model that mixes time (TSM) does not.

Writes <out>/videos/<class>/<name>.mp4, <out>/train.list and <out>/val.list
("videos/<class>/<name>.mp4 <label>", relative to <out>), <out>/labels.txt (line i = label i)
and <out>/demo.json (the arguments and each video's frame count; a rerun with the same
arguments is skipped).
"""
import argparse
import json
import os
import shutil
import sys
import time

import cv2
import numpy as np

# label order; each class is (motion, reversed): the reversed class is the same motion played
# backwards. Image y points down, so a growing angle turns clockwise on screen.
CLASSES = {
    'move_left': ('move', True),
    'move_right': ('move', False),
    'rotate_cw': ('rotate', False),
    'rotate_ccw': ('rotate', True),
    'grow': ('scale', False),
    'shrink': ('scale', True),
}
FPS = 25
SPLITS = ('train', 'val')


def sample_params(motion, rng, size):
    """Random parameters of one video of `motion` ('move', 'rotate' or 'scale').

    The direction of a pair is not an argument: both classes of a pair draw from this same
    distribution, which is what makes single frames carry no information about direction.
    """
    margin = size / 8  # the demo config centre-crops 56 of 64 px: keep shapes inside the crop
    bright = bool(rng.random() < 0.5)  # shape lighter or darker than the background, never close
    shape_rgb = rng.uniform(160, 255, 3) if bright else rng.uniform(0, 95, 3)
    bg_rgb = rng.uniform(20, 90, 3) if bright else rng.uniform(165, 235, 3)
    params = {'motion': motion, 'size': size, 'shape_rgb': shape_rgb.tolist(),
              'bg_rgb': bg_rgb.tolist(), 'texture_seed': int(rng.integers(2 ** 31)),
              'noise_seed': int(rng.integers(2 ** 31))}
    if motion == 'move':
        radius = rng.uniform(0.06, 0.12) * size
        dx = rng.uniform(0.3, 0.45) * size   # long enough to see, short enough to fit the crop
        dy = rng.uniform(-0.08, 0.08) * size  # a little drift so the path is not always flat
        x0 = rng.uniform(margin + radius, size - margin - radius - dx)
        y0 = rng.uniform(margin + radius + abs(dy), size - margin - radius - abs(dy))
        params.update(radius=radius, start=[x0, y0], end=[x0 + dx, y0 + dy],
                      square=bool(rng.random() < 0.5))
    elif motion == 'rotate':
        radius = rng.uniform(0.18, 0.26) * size
        # at most half a turn, so 8 sampled frames step < 25 degrees and the sense is unambiguous
        params.update(radius=radius, centre=rng.uniform(margin + radius, size - margin - radius, 2).tolist(),
                      angle0=rng.uniform(0, 2 * np.pi), sweep=rng.uniform(0.5, 1.0) * np.pi)
    elif motion == 'scale':
        r0 = rng.uniform(0.06, 0.1) * size
        r1 = r0 * rng.uniform(1.8, 2.4)
        params.update(radius=r0, end_radius=r1, square=bool(rng.random() < 0.5),
                      centre=rng.uniform(margin + r1, size - margin - r1, 2).tolist())
    else:
        raise ValueError(f'unknown motion {motion!r}; expected move, rotate or scale')
    return params


def _background(params):
    """Background colour plus a smooth random texture, the same in every frame of a video."""
    size = params['size']
    coarse = np.random.default_rng(params['texture_seed']).uniform(-20, 20, (4, 4, 3))
    texture = cv2.resize(coarse.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    # uint8 because OpenCV anti-aliases only 8-bit images
    return np.clip(np.round(np.asarray(params['bg_rgb'], np.float32) + texture), 0, 255).astype(np.uint8)


def _draw_shape(img, params, t):
    """Draw the shape at progress t in [0, 1] of the forward motion (anti-aliased, sub-pixel)."""
    colour = tuple(params['shape_rgb'])
    motion = params['motion']
    if motion == 'rotate':
        # an arrowhead: not symmetric under any rotation, so its angle is always readable
        cx, cy = params['centre']
        r = params['radius']
        a = params['angle0'] + t * params['sweep']
        pts = [(cx + rad * np.cos(a + da), cy + rad * np.sin(a + da))
               for rad, da in ((r, 0.0), (0.6 * r, 2.5), (0.2 * r, np.pi), (0.6 * r, -2.5))]
    else:
        if motion == 'move':
            (x0, y0), (x1, y1) = params['start'], params['end']
            cx, cy, r = x0 + t * (x1 - x0), y0 + t * (y1 - y0), params['radius']
        else:
            (cx, cy), r = params['centre'], params['radius'] + t * (params['end_radius'] - params['radius'])
        if not params['square']:
            cv2.circle(img, (round(cx * 16), round(cy * 16)), round(r * 16), colour, -1, cv2.LINE_AA, 4)
            return
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    poly = np.round(np.asarray(pts) * 16).astype(np.int32)  # 4 fractional bits (shift=4)
    cv2.fillPoly(img, [poly], colour, cv2.LINE_AA, 4)


def render(cls, params, num_frames):
    """uint8 RGB frames [num_frames, size, size, 3] of class `cls` with the given parameters.

    The forward motion is drawn; the reversed class of a pair gets the same frames, noise
    included, in reverse order. render(a, p, n)[::-1] == render(b, p, n) for a pair (a, b).
    """
    motion, backwards = CLASSES[cls]
    if motion != params['motion']:
        raise ValueError(f'class {cls!r} needs {motion!r} parameters, got {params["motion"]!r}')
    if num_frames < 2:
        raise ValueError(f'num_frames must be >= 2, got {num_frames}')
    background = _background(params)
    noise = np.random.default_rng(params['noise_seed'])
    frames = []
    for k in range(num_frames):
        img = background.copy()
        _draw_shape(img, params, k / (num_frames - 1))
        img = img + noise.normal(0, 6, img.shape)  # sensor-like noise, new in every frame
        frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    frames = np.stack(frames)
    return frames[::-1].copy() if backwards else frames


def write_video(path, frames):
    """Write RGB frames as an MPEG-4 Part 2 ('mp4v') file that OpenCV and PyAV both read."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), FPS, (width, height))
    if not writer.isOpened():
        raise OSError(f'{path}: cv2.VideoWriter could not open an mp4v writer')
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def make_split(out, split, per_class, seed, size, frames):
    """Render and write one split; returns its list lines and {relative path: frame count}."""
    lines, counts = [], {}
    for label, cls in enumerate(CLASSES):
        os.makedirs(os.path.join(out, 'videos', cls), exist_ok=True)
        for i in range(per_class):
            # one stream per video: a video does not change when the counts of others change
            rng = np.random.default_rng([seed, SPLITS.index(split), label, i])
            num_frames = int(rng.integers(frames, frames + frames // 2 + 1))
            params = sample_params(CLASSES[cls][0], rng, size)
            rel = f'videos/{cls}/{split}_{i:04d}.mp4'
            write_video(os.path.join(out, rel), render(cls, params, num_frames))
            lines.append(f'{rel} {label}')
            counts[rel] = num_frames
    return lines, counts


def generate(out, train_per_class, val_per_class, seed, size, frames, force=False):
    """Write the demo dataset into `out`; returns (demo.json content, skipped)."""
    args = {'train_per_class': train_per_class, 'val_per_class': val_per_class, 'seed': seed,
            'size': size, 'frames': frames}
    meta_path = os.path.join(out, 'demo.json')
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get('args') == args and not force:
            return meta, True
        # ours (it has demo.json) and stale: clear it so no video of an older run lingers
        shutil.rmtree(os.path.join(out, 'videos'), ignore_errors=True)
    elif os.path.isdir(out) and os.listdir(out) and not force:
        raise FileExistsError(f'{out}: folder is not empty and has no demo.json; '
                              'pass --force or choose another --out')
    os.makedirs(out, exist_ok=True)
    counts = {}
    for split, per_class in zip(SPLITS, (train_per_class, val_per_class)):
        lines, split_counts = make_split(out, split, per_class, seed, size, frames)
        counts.update(split_counts)
        with open(os.path.join(out, f'{split}.list'), 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
    with open(os.path.join(out, 'labels.txt'), 'w') as f:
        f.write(''.join(cls + '\n' for cls in CLASSES))
    meta = {'args': args, 'classes': list(CLASSES), 'num_frames': counts}
    with open(meta_path, 'w') as f:  # written last: a run cut short is never taken as complete
        json.dump(meta, f, indent=1)
    return meta, False


def parse_args(argv):
    p = argparse.ArgumentParser(description='Generate the demo videos (classes differ only in time order).')
    p.add_argument('--out', default='data/demo', help='output folder')
    p.add_argument('--train_per_class', type=int, default=100, help='training videos per class')
    p.add_argument('--val_per_class', type=int, default=30, help='validation videos per class')
    p.add_argument('--seed', type=int, default=0, help='random seed (same seed, same data)')
    p.add_argument('--size', type=int, default=64, help='frame width and height in pixels')
    p.add_argument('--frames', type=int, default=24,
                   help='minimum frames per video; each video draws its length in [frames, 1.5 * frames]')
    p.add_argument('--force', action='store_true', help='regenerate even if demo.json matches')
    args = p.parse_args(argv)
    for key in ('train_per_class', 'val_per_class'):
        if getattr(args, key) < 0:
            p.error(f'--{key} must be >= 0')
    if args.size < 32:
        p.error(f'--size must be >= 32, got {args.size}')
    if args.frames < 2:
        p.error(f'--frames must be >= 2, got {args.frames}')
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    meta, skipped = generate(args.out, args.train_per_class, args.val_per_class, args.seed,
                             args.size, args.frames, args.force)
    a = meta['args']
    status = 'up to date (demo.json matches; --force to regenerate)' if skipped else 'written'
    print(f"demo data {status}: {len(CLASSES)} classes, {a['train_per_class'] * len(CLASSES)} train + "
          f"{a['val_per_class'] * len(CLASSES)} val videos, {a['size']}x{a['size']}, "
          f"{a['frames']}-{a['frames'] + a['frames'] // 2} frames, in {args.out} "
          f"({time.time() - start:.1f} s)")


if __name__ == '__main__':
    sys.exit(main())
