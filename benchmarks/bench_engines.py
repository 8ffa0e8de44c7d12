"""TSM-ResNet-50 on every CPU engine, ours beside the original network, in one run.

    python benchmarks/bench_engines.py --tsm_repo PATH [--torch_python PYTHON] \
        [--threads 2 --rounds 5 --out_dir output/bench_engines]

PATH is a checkout of mit-han-lab/temporal-shift-module (not part of this project); PYTHON an
interpreter with torch (default: this one), which builds the original TSN with the shift,
saves its weights and exports it to ONNX (benchmarks/torch_export_side.py). Ours is the same
network with the same weights, converted from that file (its logits are compared first), in
its inference form: Paddle Inference (fp32, and bf16 where the CPU has it), and its ONNX form
(paddle2onnx) on ONNX Runtime and OpenVINO (fp32, bf16). The original's ONNX file runs on ONNX
Runtime and OpenVINO, as a user deploying it would. Every case runs one 8x224x224 clip at
batch 1 with the same number of threads; the cases alternate, --rounds times, each after a
pause; medians per clip and per frame, with ratios against the original on OpenVINO in the
same precision. PP-TSMv2 (backbone pplcnet_v2, random weights; 8 frames, and 16 with the
temporal attention, as the published models) runs on the same engines beside them
(--lcnet_frames, none to leave it out), each with the top-1 published for the model of its
shape. Writes OUT_DIR/bench_engines.json, .md (the table) and .png (the plot).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cli  # noqa: E402,F401  first: it loads numpy.random before paddle (2.6)
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.timing import machine, machine_line, paused_seconds  # noqa: E402
from models import TSM  # noqa: E402
from models.device import use_cpu  # noqa: E402
from models.deploy.engines import NAMES, clip_runner, engine_version  # noqa: E402
from models.deploy.onnx_export import export_onnx  # noqa: E402
from models.deploy.predictor import Predictor, bf16_supported, model_files  # noqa: E402
from models.deploy.static import clip_spec, export_static, relative_error  # noqa: E402
from models.weights import load_for_inference  # noqa: E402

PAUSE = 0.5  # seconds before each case: the runtime that ran last lets its threads settle
TOLERANCE = 1e-4  # fp32 logits against their reference, relative


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tsm_repo', required=True, help='a checkout of the original TSM code')
    p.add_argument('--torch_python', default=sys.executable, help='an interpreter with torch')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--seg_num', type=int, default=8)
    p.add_argument('--lcnet_frames', type=int, nargs='*', default=[8, 16],
                   help='PP-TSMv2 clips of these frames (8 and 16 are published)')
    p.add_argument('--out_dir', default='output/bench_engines')
    return p


def original_side(args, folder):
    """The original network's files in `folder` (torch_export_side.py, in a child process)."""
    proc = subprocess.run([args.torch_python,
                           os.path.join(ROOT, 'benchmarks', 'torch_export_side.py'),
                           '--tsm_repo', args.tsm_repo, '--folder', folder,
                           '--depth', str(args.depth), '--seg_num', str(args.seg_num)],
                          capture_output=True, text=True)
    if proc.returncode:  # its own printing (the original code's) only when it failed
        raise RuntimeError(f'the original side failed:\n{proc.stderr[-3000:]}')


def precisions():
    return ('fp32', 'bf16') if bf16_supported() else ('fp32',)


def cases(args, folder, clip):
    """{name: fn() -> logits}, every fp32 case checked against its reference first."""
    model = TSM(num_classes=400, seg_num=args.seg_num, depth=args.depth)
    load_for_inference(model, os.path.join(folder, 'original.pth'))
    model.eval()
    with paddle.no_grad():
        ours = model(paddle.to_tensor(clip)).numpy()
    original = np.load(os.path.join(folder, 'original_logits.npy'))
    error = relative_error(ours, original)
    if error > TOLERANCE:
        raise RuntimeError(f'our converted model differs from the original by {error:.2e}')
    prefix = os.path.join(folder, 'TSM')
    export_static(model, clip_spec(model.settings, {'target_size': args.size}), prefix)
    onnx = export_onnx(*model_files(prefix), prefix + '.onnx', 13)
    flat = clip.reshape(1, -1, *clip.shape[3:])  # the original's input, [1, T * 3, H, W]
    runs = {}
    for precision in precisions():
        runner = Predictor(prefix, threads=args.threads, precision=precision)
        runs[f'ours, Paddle Inference {precision}'] = (lambda r=runner: r(clip).numpy(), ours)
    for engine in ('onnxruntime', 'openvino'):
        for precision in precisions() if engine == 'openvino' else ('fp32',):
            label = NAMES[engine]
            mine = clip_runner(engine, onnx, args.threads, precision)
            theirs = clip_runner(engine, os.path.join(folder, 'original.onnx'), args.threads,
                                 precision)
            runs[f'ours, {label} {precision}'] = (lambda r=mine: r(clip).numpy(), ours)
            runs[f'original, {label} {precision}'] = (lambda r=theirs: r(flat).numpy(),
                                                      original)
    for name, (fn, want) in runs.items():
        error = relative_error(fn(), want)
        if 'fp32' in name and error > TOLERANCE:
            raise RuntimeError(f'{name}: logits differ from the reference by {error:.2e}')
    return {name: fn for name, (fn, _) in runs.items()}, error


# Kinetics-400 top-1 published for each network's shape (1 clip x 1 centre crop): the
# original TSM-R50 (kinetics400-mit), PP-TSMv2 8 frames distilled (pptsmv2-k400-8f-dml) and 16
# frames distilled with the temporal attention (pptsmv2-k400-16f-dml)
PUBLISHED_TOP1 = {'TSM-R50': 71.2, 'PP-TSMv2 8f': 72.45, 'PP-TSMv2 16f': 75.16}


def lcnet_cases(args, folder, frames):
    """{name: fn} of PP-TSMv2 with `frames` frames on every engine, fp32 checked against the
    dynamic model first."""
    model = TSM(num_classes=400, seg_num=frames, backbone='pplcnet_v2', shift_ratio=1 / frames,
                temporal_attention=frames == 16, dropout=0.2)
    model.eval()
    clip = np.random.default_rng(frames).standard_normal([1, frames, 3, args.size, args.size],
                                                         dtype=np.float32)
    with paddle.no_grad():
        want = model(paddle.to_tensor(clip)).numpy()
    prefix = os.path.join(folder, f'PPTSMv2_{frames}')
    export_static(model, clip_spec(model.settings, {'target_size': args.size}), prefix)
    onnx = export_onnx(*model_files(prefix), prefix + '.onnx', 13)
    runs = {}
    for engine in ('paddle', 'onnxruntime', 'openvino'):
        for precision in precisions() if engine != 'onnxruntime' else ('fp32',):
            runner = (Predictor(prefix, threads=args.threads, precision=precision)
                      if engine == 'paddle' else clip_runner(engine, onnx, args.threads,
                                                             precision))
            runs[f'ours PP-TSMv2 {frames}f, {NAMES[engine]} {precision}'] = (
                lambda r=runner: r(clip).numpy())
    for name, fn in runs.items():
        error = relative_error(fn(), want)
        if 'fp32' in name and error > TOLERANCE:
            raise RuntimeError(f'{name}: logits differ from the dynamic model by {error:.2e}')
    return runs


def top1(name):
    return next((v for k, v in PUBLISHED_TOP1.items() if f' {k}' in name),
                PUBLISHED_TOP1['TSM-R50'])


def table(rows):
    lines = ['| network, engine | ms per clip | ms per frame | published top-1 | vs original '
             'TSM-R50 on OpenVINO, same precision |', '|---|---|---|---|---|']
    for name, row in rows.items():
        ratio = f"{row['vs_original_openvino']:.2f}" if row['vs_original_openvino'] else '-'
        lines.append(f"| {name} | {row['ms']:.1f} | {row['ms_per_frame']:.1f} | "
                     f"{row['top1']} | {ratio} |")
    return '\n'.join(lines)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(rows)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    colours = ['tab:gray' if not n.startswith('ours') else
               'tab:green' if 'PP-TSMv2' in n else 'tab:blue' for n in names]
    bars = ax.barh(names, [rows[n]['ms'] for n in names], color=colours)
    ax.bar_label(bars, fmt='%.0f ms', padding=3)
    ax.set_xlabel('ms per clip (median)')
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, 1.15 * max(r['ms'] for r in rows.values()))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    args = build_parser().parse_args()
    use_cpu(args.threads)
    paddle.set_device('cpu')
    versions = {e: engine_version(e).split('-')[0] for e in ('onnxruntime', 'openvino')}
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        clip = np.random.default_rng(3).standard_normal(
            [1, args.seg_num, 3, args.size, args.size], dtype=np.float32)
        np.save(os.path.join(folder, 'clip.npy'), clip)
        original_side(args, folder)
        with open(os.path.join(folder, 'resnet.txt')) as f:
            resnet = f.read()
        runs, _ = cases(args, folder, clip)
        frames_of = {name: args.seg_num for name in runs}
        for frames in args.lcnet_frames:
            lcnet = lcnet_cases(args, folder, frames)
            runs.update(lcnet)
            frames_of.update({name: frames for name in lcnet})
        for _ in range(args.rounds):
            for name, fn in runs.items():
                times.setdefault(name, []).append(paused_seconds(fn, PAUSE))
    medians = {name: float(np.median(v)) for name, v in times.items()}
    rows = {}
    for name, seconds in medians.items():
        precision = name.rsplit(' ', 1)[1]
        reference = medians.get(f'original, OpenVINO {precision}')
        rows[name] = {'ms': 1e3 * seconds, 'ms_per_frame': 1e3 * seconds / frames_of[name],
                      'top1': top1(name),
                      'vs_original_openvino': seconds / reference if reference else None}
    os.makedirs(args.out_dir, exist_ok=True)
    line = machine_line(**versions)
    out = os.path.join(args.out_dir, 'bench_engines')
    with open(out + '.json', 'w') as f:
        json.dump({'machine': dict(machine(), threads=args.threads, **versions),
                   'original_resnet_built_by': resnet,
                   'clip': [args.seg_num, 3, args.size, args.size], 'depth': args.depth,
                   'rounds': args.rounds, 'per_clip': rows, 'all_seconds': times}, f, indent=2)
    text = table(rows)
    with open(out + '.md', 'w') as f:
        f.write(f'{line}, {args.threads} threads, TSM-ResNet-{args.depth} '
                f'{args.seg_num}x{args.size}x{args.size} and PP-TSMv2 '
                f'{"/".join(map(str, args.lcnet_frames)) or "-"} frames at {args.size}, batch '
                f'1, median of {args.rounds}\n\n'
                f'{text}\n')
    plot(rows, out + '.png', f'TSM-R{args.depth} {args.seg_num}x{args.size}x{args.size} (blue, '
                             f'grey: original), PP-TSMv2 (green), '
                             f'batch 1, {args.threads} threads\n{line}')
    print(f'machine: {line}, {args.threads} threads')
    print(text)
    print(f'wrote {out}.json, .md and .png')


if __name__ == '__main__':
    main()
