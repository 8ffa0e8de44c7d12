"""Run an exported TSM (export.py) with paddle.inference, callable like the model.

On the CPU the graph runs on oneDNN, which folds each BatchNorm into its convolution and fuses
the ReLUs; `precision='bf16'` also runs the convolutions in bfloat16 where the CPU has bf16
instructions (AVX512-BF16 / AMX). On a CUDA build of Paddle the graph runs on the GPU, through
TensorRT when asked for and compiled in.
"""
import os

import numpy as np
import paddle

import noise

from ..workarounds import mkl
from ..device import cuda_available

PRECISIONS = ('fp32', 'bf16', 'fp16', 'auto')  # auto: bf16 on a CPU that has it, else fp32
# of any engine: int8 is OpenVINO's (models.deploy.engines)
ALL_PRECISIONS = PRECISIONS + ('int8',)
MODEL_NAME = 'TSM'  # export.py writes DIR/TSM.json (Paddle 3) or DIR/TSM.pdmodel (Paddle 2.6)


def model_files(path_prefix):
    """(program file, parameters file) that paddle.jit.save wrote for `path_prefix`: the
    program is .json under Paddle 3's PIR and .pdmodel under Paddle 2.6; either may be read."""
    if os.path.isdir(path_prefix):
        path_prefix = os.path.join(path_prefix, MODEL_NAME)
    params = path_prefix + '.pdiparams'
    for ext in ('.json', '.pdmodel'):
        if os.path.isfile(path_prefix + ext):
            if not os.path.isfile(params):
                raise FileNotFoundError(f'{params}: missing parameters of the exported model '
                                        f'{path_prefix + ext}')
            return path_prefix + ext, params
    raise FileNotFoundError(f'{path_prefix}: no .json or .pdmodel program; export one with '
                            f'bash run.sh export TSM CONFIG --weights W --save_dir DIR')


def bf16_cpu():
    """True when this CPU and Paddle build run bfloat16 kernels natively."""
    core = paddle.base.core if hasattr(paddle, 'base') else paddle.fluid.core
    return bool(getattr(core, 'supports_bfloat16', lambda: False)())


def bf16_supported():
    """bf16_cpu(), unless the user capped oneDNN below its bfloat16 kernels."""
    return bf16_cpu() and mkl.onednn_runs_bf16()


def tensorrt_available():
    return tuple(paddle.inference.get_trt_compile_version()) != (0, 0, 0)


def resolve_precision(precision, on_gpu):
    """The precision `precision` names here: 'auto' becomes bf16 on a CPU with bfloat16
    instructions (several times faster than fp32: docs/speed.md) and fp32 elsewhere."""
    if precision == 'auto':
        return 'bf16' if not on_gpu and bf16_supported() else 'fp32'
    return precision


def _check_precision(precision, on_gpu):
    if precision not in PRECISIONS:
        raise ValueError(f'precision: expected one of {PRECISIONS}, got {precision!r}')
    if precision == 'bf16' and (on_gpu or not bf16_cpu()):
        raise ValueError('precision bf16: needs the CPU (use_gpu=False) with bfloat16 '
                         'instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo); this '
                         'machine or build has none: use fp32')
    if precision == 'bf16' and not bf16_supported():
        raise ValueError('precision bf16: %s=%s caps oneDNN below its bfloat16 kernels: use '
                         'fp32, or unset it' % mkl.onednn_cap())
    if precision == 'fp16' and not on_gpu:
        raise ValueError('precision fp16: only on the GPU; on the CPU use fp32 or bf16')


def _gpu_config(config, precision, tensorrt, max_batch):
    half = precision == 'fp16' and not tensorrt  # with TensorRT, its engine takes the precision
    config.enable_use_gpu(256, 0, *([paddle.inference.PrecisionType.Half] if half else []))
    if not tensorrt:
        return
    if not tensorrt_available():
        raise ValueError('tensorrt=True: this Paddle build has no TensorRT')
    kind = (paddle.inference.PrecisionType.Half if precision == 'fp16'
            else paddle.inference.PrecisionType.Float32)
    config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch,
                                  min_subgraph_size=3, precision_mode=kind,
                                  use_static=False, use_calib_mode=False)


def make_config(path_prefix, use_gpu=False, threads=2, precision='fp32', tensorrt=False,
                max_batch=16):
    """The paddle.inference.Config used by `Predictor` (exposed for inspection)."""
    program, params = model_files(path_prefix)
    on_gpu = use_gpu and cuda_available()
    precision = resolve_precision(precision, on_gpu)
    _check_precision(precision, on_gpu)
    config = paddle.inference.Config(program, params)
    if on_gpu:
        _gpu_config(config, precision, tensorrt, max_batch)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        config.enable_mkldnn()
        if precision == 'bf16':
            config.enable_mkldnn_bfloat16()
    config.switch_ir_optim(True)
    config.disable_glog_info()
    return config


def exported_config(program):
    """The TSM.yaml export.py writes next to `program` as a dict, or None when there is none."""
    path = os.path.join(os.path.dirname(program), MODEL_NAME + '.yaml')
    if not os.path.isfile(path):
        return None
    import yaml
    with open(path) as f:
        return yaml.safe_load(f) or {}


def check_matches(program, cfg):
    """ValueError naming each key where the config differs from what `program` was exported
    with: the class count, seg_num and target_size fix the graph's shapes and labels."""
    exported = exported_config(program)
    if exported is None:
        return
    keys = [('MODEL', 'num_classes'), ('MODEL', 'seg_num'), ('DATA', 'target_size')]
    wrong = [f'{s}.{k}: config {cfg[s][k]!r}, exported {exported.get(s, {}).get(k)!r}'
             for s, k in keys if exported.get(s, {}).get(k) != cfg[s][k]]
    if wrong:
        raise ValueError(f'{program} was exported for another config: ' + '; '.join(wrong))


def exported_clip_shape(program):
    """[seg_num, 3, target_size, target_size] from the TSM.yaml next to `program`, or None."""
    cfg = exported_config(program)
    if cfg is None:
        return None
    try:
        size = cfg['DATA']['target_size']
        return [cfg['MODEL']['seg_num'], 3, size, size]
    except (KeyError, TypeError):
        raise ValueError(f'{program}: its {MODEL_NAME}.yaml lacks MODEL.seg_num or '
                         f'DATA.target_size') from None


class Predictor:
    """An exported TSM: `Predictor(prefix)(clips [N, T, 3, H, W]) -> logits [N, K]`.

    `path_prefix` is the prefix given to export.py (DIR/TSM) or DIR itself. `clips` may be a
    paddle Tensor or a numpy array; the logits come back as a float32 paddle Tensor. `eval()`
    does nothing, so code written for the dynamic model (eval.view_scores) takes it as is.
    `use_gpu` falls back to the CPU when Paddle has no CUDA device.
    """

    def __init__(self, path_prefix, use_gpu=False, threads=2, precision='fp32',
                 tensorrt=False):
        if not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f'threads: expected an int >= 1, got {threads!r}')
        self.files = model_files(path_prefix)
        self.clip_shape = exported_clip_shape(self.files[0])
        config = make_config(path_prefix, use_gpu, threads, precision, tensorrt)
        self.on_gpu = config.use_gpu()
        self.precision = resolve_precision(precision, self.on_gpu)  # what really runs
        self.predictor = paddle.inference.create_predictor(config)
        names = self.predictor.get_input_names()
        if len(names) != 1:
            raise ValueError(f'{self.files[0]}: expected one input (the clips), got {names}')
        self.input = self.predictor.get_input_handle(names[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.ran = False

    def eval(self):
        return self

    def __call__(self, clips):
        if isinstance(clips, paddle.Tensor):
            clips = clips.numpy()
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        if clips.ndim != 5:
            raise ValueError(f'Predictor input: expected rank 5 [N, T, 3, H, W], got shape '
                             f'{list(clips.shape)}')
        if self.clip_shape and list(clips.shape[1:]) != self.clip_shape:
            raise ValueError(f'Predictor input: {self.files[0]} takes clips [N] + '
                             f'{self.clip_shape}, got shape {list(clips.shape)}')
        self.input.reshape(list(clips.shape))
        self.input.copy_from_cpu(clips)
        self.ran = run_quietly(self.predictor, self.ran)
        return paddle.to_tensor(self.output.copy_to_cpu())


def run_quietly(predictor, ran):
    """predictor.run(), the first one (`ran` False) with the line it prints dropped: the name
    of a kernel oneDNN picks. Returns True, what `ran` is after it."""
    if ran:
        predictor.run()
    else:
        with noise.dropped_lines(1):
            predictor.run()
    return True
