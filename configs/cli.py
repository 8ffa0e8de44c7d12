"""Command-line flags shared by train.py, eval.py and predict.py.

They keep the flags of the old Paddle video zoo, so existing commands keep working; each flag
is a shorthand for a config override, and `-o SECTION.key=value` reaches every other key.
"""
import argparse
import ast
import logging
import os
import random

import numpy as np

from configs.config import ConfigError, load_config

MODEL_NAMES = ('TSM',)
MODES = {'train': 'TRAIN', 'eval': 'TEST', 'predict': 'INFER'}


def _bool(text):
    value = ast.literal_eval(text) if text not in ('true', 'false') else text == 'true'
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f'expected True or False, got {text!r}')
    return value


def build_parser(script):
    p = argparse.ArgumentParser(description=f'TSM video classification: {script}')
    p.add_argument('--model_name', default='TSM', help='model to run; only TSM is provided')
    p.add_argument('--config', default='configs/tsm.yaml', help='YAML config file')
    p.add_argument('-o', '--override', action='append', default=[], metavar='SECTION.key=value',
                   help='override one config key (repeatable)')
    p.add_argument('--use_gpu', type=_bool, default=True,
                   help='use the GPU when Paddle has CUDA (True/False)')
    p.add_argument('--weights', help='weights to evaluate or predict with: a file, URL or name')
    p.add_argument('--save_dir', help="where this run's outputs go")
    p.add_argument('--batch_size', type=int, help='clips per step')
    p.add_argument('--filelist', help='list file of videos for this run')
    p.add_argument('--log_interval', type=int, help='steps between log lines')
    p.add_argument('--valid_interval', type=int, help='epochs between validations')
    p.add_argument('--learning_rate', type=float, help='base learning rate')
    p.add_argument('--epoch', type=int, help='epochs to train')
    p.add_argument('--pretrain', help="start weights: a file, URL, 'imagenet' or '' for none")
    p.add_argument('--resume', help='checkpoint prefix (or .pdparams) to continue training from')
    p.add_argument('--fix_random_seed', type=_bool, nargs='?', const=True, default=False,
                   help='seed every random generator with 0 for a repeatable run')
    p.add_argument('--video_path', help='one video to predict (with --online also a camera '
                   'index such as 0, or a stream URL)')
    p.add_argument('--infer_model', help='eval/predict: an export.py folder, run with '
                   'paddle.inference instead of the dynamic model and --weights')
    p.add_argument('--precision', help='with --infer_model: fp32, bf16 or fp16')
    p.add_argument('--threads', type=int, help='with --infer_model: CPU threads (0 = all)')
    p.add_argument('--online', action='store_true',
                   help='stream frame by frame with an online (uni-directional) model')
    p.add_argument('--every', type=int, default=1, help='with --online: print every N frames')
    return p


def _flag_overrides(args, section):
    """The old flags as config overrides for the script's own section."""
    pairs = {
        f'{section}.batch_size': args.batch_size,
        f'{section}.filelist': args.filelist,
        f'{section}.save_dir': args.save_dir,
        'TRAIN.log_interval': args.log_interval,
        'TRAIN.valid_interval': args.valid_interval,
        'TRAIN.learning_rate': args.learning_rate,
        'TRAIN.epoch': args.epoch,
        'TRAIN.pretrain': args.pretrain,
    }
    if section != 'TRAIN':
        for key in ('weights', 'infer_model', 'precision', 'threads'):
            pairs[f'{section}.{key}'] = getattr(args, key)
    return [{k.split('.')[0]: {k.split('.')[1]: v}} for k, v in pairs.items() if v is not None]


def parse(script, argv=None):
    """(args, cfg) for `script` in MODES; exits with a message naming a bad flag or key."""
    parser = build_parser(script)
    args = parser.parse_args(argv)
    if args.model_name.upper() not in MODEL_NAMES:
        parser.error(f'--model_name {args.model_name!r}: known models: {", ".join(MODEL_NAMES)}')
    section = MODES[script]
    if section == 'TRAIN':
        for flag in ('infer_model', 'precision', 'threads'):
            if getattr(args, flag) is not None:
                parser.error(f'--{flag} is for eval.py and predict.py, not train.py')
    try:
        cfg = load_config(args.config, _flag_overrides(args, section) + args.override)
    except ConfigError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s',
                        datefmt='%H:%M:%S',
                        force=True)  # paddle installs its own root handler at import
    return args, cfg


def select_device(use_gpu):
    """The GPU when asked for and Paddle has CUDA, else the CPU (all usable cores) with a
    one-line notice."""
    import paddle
    if use_gpu and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        return paddle.set_device('gpu')
    if use_gpu:
        logging.info('this Paddle build has no usable CUDA device: running on the CPU')
    set_cpu_threads(usable_cores())
    return paddle.set_device('cpu')


def usable_cores():
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_cpu_threads(threads):
    """CPU math threads of dynamic-mode kernels. Paddle's default is one thread: a ResNet-18
    training step on 2 cores takes 2.33 s with it and 1.99 s with two."""
    import paddle
    core = paddle.base.core if hasattr(paddle, 'base') else paddle.fluid.core
    core.set_num_threads(threads)


def fix_seed(seed=0):
    import paddle
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)
