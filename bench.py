"""Speed of TSM on this machine: inference, a training step, the reader, and the matmul peak.

    bash run.sh bench TSM ./configs/tsm.yaml [--batch_sizes 1 4] [--repeats 5] [--save_dir DIR]
                                             [--engine paddle onnxruntime openvino]

Every figure is the median of --repeats timed runs after --warmup untimed ones. Inference is
timed for the dynamic model (eval, no_grad) and the exported one on each --engine (Paddle
Inference's Predictor, ONNX Runtime, OpenVINO: fp32, and bf16 where the engine and CPU have
it); "fraction of peak" is the clip's convolution and linear FLOPs, counted from the layers,
per second over the best fp32 matmul rate of this machine.
Weights are random: speed does not depend on them. Writes DIR/TSM_bench.json and prints a
markdown table.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
import numpy as np
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
import paddle
import paddle.nn as nn

from benchmarks.media import write_video
from benchmarks.timing import clip_flops, machine, matmul_peak, median_seconds
from configs.cli import setup_logging
from models.device import use_cpu
from models.deploy.engines import ENGINES
from models.deploy.static import clip_spec, export_static


def build_parser():
    p = argparse.ArgumentParser(description='TSM video classification: benchmark')
    p.add_argument('--model_name', default='TSM', help='model to time; only TSM is provided')
    p.add_argument('--config', default='configs/tsm.yaml', help='YAML config (MODEL, DATA)')
    p.add_argument('-o', '--override', action='append', default=[], metavar='SECTION.key=value',
                   help='override one config key (repeatable)')
    p.add_argument('--save_dir', default='output/bench', help='where TSM_bench.json and TSM_bench.md go')
    p.add_argument('--batch_sizes', type=int, nargs='+', default=[1, 4], help='inference batches')
    p.add_argument('--train_batch', type=int, default=2, help='clips per training step')
    p.add_argument('--repeats', type=int, default=5, help='timed runs per figure (median)')
    p.add_argument('--warmup', type=int, default=2, help='untimed runs before timing')
    p.add_argument('--engine', nargs='+', default=['paddle'], choices=ENGINES,
                   help='engines that run the exported model (models.deploy.engines)')
    p.add_argument('--threads', type=int, default=2, help='CPU threads (dynamic model, matmul and Predictor)')
    p.add_argument('--matmul_size', type=int, default=2048, help='side of the peak matmul')
    p.add_argument('--video_size', type=int, nargs=2, default=[340, 256], metavar=('W', 'H'),
                   help='frame size of the generated H.264 video for the reader')
    p.add_argument('--video_frames', type=int, default=250, help='frames of that video')
    return p


def inference_rows(engines, clip_shape, args, flops, peak):
    """One row per (engine, batch size)."""
    rows = []
    for name, run in engines.items():
        for batch in args.batch_sizes:
            clips = np.random.default_rng(0).standard_normal([batch] + clip_shape,
                                                             dtype=np.float32)
            seconds = median_seconds(lambda: run(clips), args.repeats, args.warmup)
            rate = flops * batch / seconds / 1e9
            rows.append({'engine': name, 'batch_size': batch,
                         'batch_ms': round(seconds * 1e3, 2),
                         'clip_ms': round(seconds * 1e3 / batch, 2),
                         'clips_per_s': round(batch / seconds, 3),
                         'gflops_per_s': round(rate, 2),
                         'fraction_of_peak': round(rate / peak, 4)})
            logging.info('%s batch %d: %.1f ms per clip', name, batch, rows[-1]['clip_ms'])
    return rows


def inference_engines(cfg, workdir, threads, engines=('paddle',)):
    """{name: fn(clips ndarray) -> logits ndarray}: the dynamic model and the exported model
    on each of `engines`, in fp32 and bf16 where the engine and the CPU have it."""
    from models import TSM
    from models.deploy.engines import clip_runner
    from models.deploy.onnx_export import export_onnx
    from models.deploy.predictor import Predictor, bf16_supported, model_files
    dynamic = TSM(**cfg['MODEL'])
    dynamic.eval()

    @paddle.no_grad()
    def run_dynamic(clips):
        return dynamic(paddle.to_tensor(clips)).numpy()

    prefix = os.path.join(workdir, 'TSM')
    # A model of its own: to_static converts the layer it is given.
    export_static(TSM(**cfg['MODEL']), clip_spec(cfg['MODEL'], cfg['DATA']), prefix)
    runs = {'dynamic': run_dynamic}
    precisions = ('fp32', 'bf16') if bf16_supported() else ('fp32',)
    onnx = None
    for engine in engines:
        if engine != 'paddle' and onnx is None:
            onnx = export_onnx(*model_files(prefix), prefix + '.onnx', 13)
        for precision in precisions if engine != 'onnxruntime' else ('fp32',):
            if engine == 'paddle':
                runner, name = Predictor(prefix, threads=threads, precision=precision), 'predictor'
            else:
                runner, name = clip_runner(engine, onnx, threads, precision), engine
            runs[f'{name}_{precision}'] = lambda clips, r=runner: r(clips).numpy()
    return runs


def train_step(cfg, clip_shape, batch, repeats, warmup):
    """Median ms of forward + backward + SGD-momentum step on `batch` random clips."""
    from models import TSM
    model = TSM(**cfg['MODEL'])
    model.train()
    optimizer = paddle.optimizer.Momentum(0.001, momentum=0.9, parameters=model.parameters())
    clips = paddle.randn([batch] + clip_shape)
    labels = paddle.randint(0, cfg['MODEL']['num_classes'], [batch])

    def step():
        loss = nn.functional.cross_entropy(model(clips), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss.numpy()

    seconds = median_seconds(step, repeats, warmup)
    return {'batch_size': batch, 'step_ms': round(seconds * 1e3, 2),
            'clips_per_s': round(batch / seconds, 3)}


def reader_times(cfg, workdir, args):
    """The reader on a generated H.264 video and on its extracted frames: ms per clip of
    reader.dataset.read_clip (open, sample, decode, transform) in 'train' and 'test'; the
    reference, a sequential decode to RGB of every frame up to the last one a test clip
    samples; and DataLoader clips/s with DATA.num_workers workers. {'skipped': reason}
    without the reader or PyAV."""
    try:
        import av  # noqa: F401 (writes the video)
        from reader.dataset import read_clip
    except ImportError as e:
        return {'skipped': f'reader or PyAV not importable: {e}'}
    from reader.extraction import write_frames
    width, height = args.video_size
    path = write_video(os.path.join(workdir, 'bench.mp4'), width, height, args.video_frames)
    folder = os.path.join(workdir, 'bench_frames')
    os.makedirs(folder)
    write_frames(path, folder, 0, 95, 'cv2')
    rng = np.random.default_rng(0)
    result = {'video': {'codec': 'h264', 'width': width, 'height': height,
                        'frames': args.video_frames}}
    for source, where in (('mp4', path), ('frames', folder)):
        for mode in ('train', 'test'):
            seconds = median_seconds(lambda: read_clip(where, cfg, mode, rng), args.repeats, args.warmup)
            result[f'{source}_{mode}_ms_per_clip'] = round(seconds * 1e3, 2)
    seconds = median_seconds(lambda: sequential_decode(path, cfg), args.repeats, args.warmup)
    result['sequential_decode_ms'] = round(seconds * 1e3, 2)
    for source, where in (('mp4', path), ('frames', folder)):
        result[f'{source}_loader_clips_per_s'] = loader_rate(cfg, workdir, where, source)
    result['loader_workers'] = cfg['DATA']['num_workers']
    return result


def sequential_decode(path, cfg):
    """Every frame to RGB up to the last one a test clip samples, with plain PyAV (one
    thread): what a reader that converts every frame it decodes would cost."""
    import av
    from reader.sampling import sample_indices
    from reader.decode import open_video
    with open_video(path) as video:
        last = int(max(sample_indices(video.num_frames, cfg['MODEL']['seg_num'], 'test')))
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for index, frame in enumerate(container.decode(stream)):
            frame.to_ndarray(format='rgb24')
            if index == last:
                break


def loader_rate(cfg, workdir, where, name, items=32, batch=4):
    """Clips/s of a training DataLoader over `items` copies of one video (or frame folder),
    after its first batch (worker start-up excluded)."""
    from reader import make_loader
    listfile = os.path.join(workdir, f'{name}.list')
    with open(listfile, 'w') as f:
        f.writelines(f'{where} 0\n' for _ in range(items))
    settings = dict(cfg, TRAIN=dict(cfg['TRAIN'], filelist=listfile, batch_size=batch),
                    DATA=dict(cfg['DATA'], data_root=''))
    batches = iter(make_loader(settings, 'train', seed=0))
    next(batches)
    start = time.perf_counter()
    count = sum(int(clips.shape[0]) for clips, _, _ in batches)
    return round(count / (time.perf_counter() - start), 2)


def predict_peak_rss(cfg, args, workdir):
    """Peak resident memory (MB) of `python predict.py` on the generated video with random
    weights, as the child reports it (Linux /proc)."""
    import subprocess
    from models import TSM
    from models.weights import write_weights
    folder = os.path.join(workdir, 'random')
    write_weights(folder, TSM(**cfg['MODEL']))
    labels = os.path.join(workdir, 'labels.txt')
    with open(labels, 'w') as f:
        f.writelines(f'class{i}\n' for i in range(cfg['MODEL']['num_classes']))
    overrides = [flag for o in args.override + [f'INFER.label_file={labels}']
                 for flag in ('-o', o)]
    root = os.path.dirname(os.path.abspath(__file__))
    argv = ['predict.py', '--config', args.config, *overrides, '--weights',
            folder, '--use_gpu', 'False', '--video_path',
            os.path.join(workdir, 'bench.mp4'), '--save_dir', os.path.join(workdir, 'predict')]
    # VmHWM, the peak of this process image: ru_maxrss would keep the parent's resident
    # size at the fork that started the child
    code = ('import runpy, sys\n'
            f'sys.argv = {argv!r}\n'
            'try:\n'
            '    runpy.run_path("predict.py", run_name="__main__")\n'
            'finally:\n'
            '    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]\n'
            '    print("peak_rss_kb", hwm.split()[1])\n')
    proc = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                          text=True, cwd=root)
    kb = int(proc.stdout.split('peak_rss_kb')[-1])
    return round(kb / 1024, 1)


def markdown(result):
    m = result['machine']
    lines = [f"{m['cpu']}, {m['cores']} cores, Paddle {m['paddle']}, load average "
             f"{m['load_average']}; matmul peak {result['matmul_peak_gflops']:.0f} GFLOP/s; "
             f"clip {result['clip_gflops']:.2f} GFLOPs", '',
             '| engine | batch | ms/clip | clips/s | GFLOP/s | of fp32 peak |',
             '|---|---|---|---|---|---|']
    for r in result['inference']:
        lines.append(f"| {r['engine']} | {r['batch_size']} | {r['clip_ms']:.1f} | "
                     f"{r['clips_per_s']:.2f} | {r['gflops_per_s']:.1f} | "
                     f"{100 * r['fraction_of_peak']:.0f}% |")
    t = result['train_step']
    lines.append(f"\ntraining step (batch {t['batch_size']}): {t['step_ms']:.0f} ms")
    r = result['reader']
    if 'skipped' in r:
        lines.append(f"reader: skipped ({r['skipped']})")
        return '\n'.join(lines)
    v = r['video']
    lines += ['', f"reader, {v['width']}x{v['height']} H.264 of {v['frames']} frames and its "
                  f"JPEG frames ({r['loader_workers']} loader workers):", '',
              '| source | train ms/clip | test ms/clip | loader clips/s |', '|---|---|---|---|']
    for source in ('mp4', 'frames'):
        lines.append(f"| {source} | {r[source + '_train_ms_per_clip']:.1f} | "
                     f"{r[source + '_test_ms_per_clip']:.1f} | "
                     f"{r[source + '_loader_clips_per_s']:.1f} |")
    lines.append(f"\nsequential decode to the last sampled frame: "
                 f"{r['sequential_decode_ms']:.1f} ms; predict.py peak memory "
                 f"{result['predict_peak_rss_mb']:.0f} MB")
    return '\n'.join(lines)


def bench(cfg, args):
    use_cpu(args.threads)
    seg_num, size = cfg['MODEL']['seg_num'], cfg['DATA']['target_size']
    clip_shape = [seg_num, 3, size, size]
    result = {'machine': machine(), 'model': dict(cfg['MODEL'], target_size=size),
              'settings': {'repeats': args.repeats, 'warmup': args.warmup,
                           'threads': args.threads}}
    from models import TSM
    flops = clip_flops(TSM(**cfg['MODEL']), clip_shape)
    peak = matmul_peak(args.matmul_size, args.repeats)
    result.update(clip_gflops=round(flops / 1e9, 4), matmul_peak_gflops=round(peak, 2))
    with tempfile.TemporaryDirectory() as workdir:
        engines = inference_engines(cfg, workdir, args.threads, args.engine)
        result['inference'] = inference_rows(engines, clip_shape, args, flops,
                                             peak)
        result['train_step'] = train_step(cfg, clip_shape, args.train_batch, args.repeats,
                                           args.warmup)
        result['reader'] = reader_times(cfg, workdir, args)
        if 'skipped' not in result['reader']:
            result['predict_peak_rss_mb'] = predict_peak_rss(cfg, args, workdir)
    result['machine']['load_average_end'] = [round(v, 2) for v in os.getloadavg()]
    return result


def main(argv=None):
    from configs.config import ConfigError, load_config
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model_name.upper() != 'TSM':
        parser.error(f'--model_name {args.model_name!r}: known models: TSM')
    if args.repeats < 1 or args.warmup < 0 or min(args.batch_sizes) < 1:
        parser.error('--repeats and --batch_sizes must be >= 1, --warmup >= 0')
    try:
        cfg = load_config(args.config, args.override)
    except ConfigError as e:
        parser.error(str(e))
    setup_logging()
    paddle.set_device('cpu')
    result = bench(cfg, args)
    os.makedirs(args.save_dir, exist_ok=True)
    out = os.path.join(args.save_dir, 'TSM_bench.json')
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    table = markdown(result)
    with open(os.path.join(args.save_dir, 'TSM_bench.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
    logging.info('written to %s and TSM_bench.md', out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
