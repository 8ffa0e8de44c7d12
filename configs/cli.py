"""The scripts' start-up: their flags, the config, logging, the device, and one way to end.

Each script accepts its own flags only (an eval.py --resume is an error, not silently
ignored). They keep the flags of the old Paddle video zoo, so existing commands keep working;
each flag is a shorthand for a config override, and `-o SECTION.key=value` reaches every
other key. `run` calls a script's main and turns the errors a user can cause (a config key, a
list line, a weight file, a download, a checkpoint, an output that cannot be written, a run
that diverged) into one message and exit status 1; a traceback is left only for what is not
one of those, a bug of ours. A flag argparse does not accept is argparse's usage error,
status 2.
"""
import argparse
import ast
import contextlib
import logging
import random
import sys

import numpy as np
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
import paddle

from configs import recorded
from configs.config import ConfigError, load_config
from models import parallel
from models.device import select_device
from models.finite import NonFiniteError
from models.weights import DownloadError, WeightsError
import outputs
from outputs import OutputError
from reader import ListFileError, TooManyFailures
from reader.decode import DecodeError
from reader.stream import StreamError

MODEL_NAMES = ('TSM',)
# The config section a script's flags override.
SECTIONS = {'train': 'TRAIN', 'eval': 'TEST', 'predict': 'INFER', 'export': 'INFER'}
USER_ERRORS = (ConfigError, ListFileError, WeightsError, DownloadError, TooManyFailures,
               StreamError, DecodeError, OutputError, NonFiniteError)


class UsageError(Exception):
    """A flag combination that cannot work (the scripts raise it after parsing)."""


def _bool(text):
    value = ast.literal_eval(text) if text not in ('true', 'false') else text == 'true'
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f'expected True or False, got {text!r}')
    return value


def _config(p):
    p.add_argument('--model_name', default='TSM', help='model to run; only TSM is provided')
    p.add_argument('--config', default='configs/tsm.yaml', help='YAML config file')
    p.add_argument('-o', '--override', action='append', default=[], metavar='SECTION.key=value',
                   help='override one config key (repeatable)')


def _common(p):
    _config(p)
    p.add_argument('--use_gpu', type=_bool, default=True,
                   help='use the GPU when Paddle has CUDA (True/False)')
    p.add_argument('--save_dir', help="where this run's outputs go")
    p.add_argument('--batch_size', type=int, help='clips per step (per device)')
    p.add_argument('--filelist', help='list file of videos for this run')
    p.add_argument('--no_plots', action='store_true', help='write no PNG plots (CSV and JSON '
                   'only)')


def _train(p):
    p.add_argument('--log_interval', type=int, help='steps between log lines')
    p.add_argument('--valid_interval', type=int, help='epochs between validations')
    p.add_argument('--learning_rate', type=float, help='base learning rate')
    p.add_argument('--epoch', type=int, help='epochs to train')
    p.add_argument('--pretrain', help="start weights: a file, URL, 'imagenet' or '' for none")
    p.add_argument('--resume', help="a checkpoint folder (save_dir/TSM_epochN, N from 1) to continue "
                   "from, or 'latest' for the newest complete one in save_dir")
    p.add_argument('--fix_random_seed', type=_bool, nargs='?', const=True, default=False,
                   help='seed every random generator with 0 for a repeatable run')


def _inference(p):
    p.add_argument('--weights', help='weights: a file, checkpoint folder, URL or name')
    p.add_argument('--infer_model', help='an export.py folder to run instead of --weights')
    p.add_argument('--dynamic', action='store_true',
                   help="run the dynamic model instead of the weights' exported model "
                        "(Paddle Inference, built once and cached)")
    p.add_argument('--precision', help='of the exported model: fp32, bf16 (CPUs with it), '
                   'fp16 (GPU) or auto (bf16 where the CPU has it, else fp32)')
    p.add_argument('--threads', type=int, help='CPU threads of the exported model (0 = all)')
    p.add_argument('--engine', help='what runs the exported model: paddle (Paddle Inference), '
                   'onnxruntime, openvino (pip install -r requirements-deploy.txt) or auto '
                   '(the default: the fastest installed, measured once; $TSM_ENGINE sets '
                   'another default)')


def _predict(p):
    p.add_argument('--video_path', help='one video or frame folder to predict (with --online '
                   'also a camera index such as 0, or a stream URL)')
    p.add_argument('--online', action='store_true',
                   help='stream frame by frame with an online (uni-directional) model')
    p.add_argument('--every', type=int, default=1, help='with --online: print every N frames')
    p.add_argument('--fps', type=float, help='with --online and a frame folder as --video_path: '
                   'its frames per second (frames carry no times; Jester and '
                   'Something-Something V1 have 12)')
    p.add_argument('--window', type=float, help='a long video: classify windows of this many '
                   'seconds and merge them into segments (a timeline)')
    p.add_argument('--stride', type=float, help='with --window: seconds between window '
                   'starts (default: half a window)')
    p.add_argument('--threshold', type=float, default=0.0, help='with --window or --online: '
                   'a window or frame scored below this is "no action"')
    p.add_argument('--verbose', action='store_true', help='with --window: also print every '
                   'window (TSM_timeline.json holds them all)')
    p.add_argument('--annotate', metavar='OUT.mp4', help='with --window or --online: write '
                   'the video with the current label drawn on it')
    p.add_argument('--show', action='store_true', help='with --online: a window with the video '
                   'or camera, the running label, its score and the frames per second (q or '
                   'Esc closes it); needs OpenCV with a GUI (opencv-python) and a display')


def _export(p):
    p.add_argument('--weights', help='weights to export: a file, checkpoint folder, URL or '
                   'name (default: INFER.weights)')
    p.add_argument('--save_dir', dest='export_dir', default='output/export',
                   help='folder of the exported files')
    p.add_argument('--onnx', action='store_true', help='also write TSM.onnx with paddle2onnx')
    p.add_argument('--opset', type=int, default=13, help='ONNX opset version for --onnx')


FLAGS = {'train': (_common, _train), 'eval': (_common, _inference),
         'predict': (_common, _inference, _predict), 'export': (_config, _export)}


def build_parser(script):
    p = argparse.ArgumentParser(prog=f'{script}.py',
                                description=f'TSM video classification: {script}')
    for add in FLAGS[script]:
        add(p)
    return p


def _flag_overrides(args, section):
    """The old flags as config overrides for the script's own section."""
    pairs = {f'{section}.{key}': getattr(args, key, None)
             for key in ('batch_size', 'filelist', 'save_dir', 'weights', 'infer_model',
                         'precision', 'threads', 'engine')}
    pairs.update({f'TRAIN.{key}': getattr(args, key, None)
                  for key in ('log_interval', 'valid_interval', 'learning_rate', 'epoch',
                              'pretrain')})
    return [{k.split('.')[0]: {k.split('.')[1]: v}} for k, v in pairs.items() if v is not None]


def parse(script, argv=None):
    """(args, cfg) for `script` in SECTIONS; eval, predict and export take the settings their
    weights record as defaults (configs.recorded). A flag argparse does not accept exits with
    its usage message (status 2); a config key or value that does not fit raises ConfigError,
    which `run` turns into one line and status 1, as every other user error."""
    parser = build_parser(script)
    args = parser.parse_args(argv)
    if args.model_name.upper() not in MODEL_NAMES:
        parser.error(f'--model_name {args.model_name!r}: known models: {", ".join(MODEL_NAMES)}')
    if script == 'train':
        return args, load_config(args.config, overrides(args, script))
    # eval, predict and export run weights: those of a run bring its settings
    return args, recorded.load_config(args.config, overrides(args, script), SECTIONS[script])


def overrides(args, script):
    """The script's flags and its -o items, as config overrides, in the order they apply."""
    return _flag_overrides(args, SECTIONS[script]) + args.override


LOG_FORMAT = '%(asctime)s %(levelname)s %(message)s'


def setup_logging():
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt='%H:%M:%S',
                        force=True)  # paddle installs its own root handler at import


@contextlib.contextmanager
def logging_to(path):
    """Every line logged inside the block also appended to the text file `path`, dated (a
    run's log outlives a day, and a resumed run continues it)."""
    with outputs.writing(path):
        handler = logging.FileHandler(path, mode='a', encoding='utf-8')
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt='%Y-%m-%d %H:%M:%S'))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def start(script, argv=None):
    """The start of every script: flags and config, logging, device. Returns (args, cfg)."""
    setup_logging()  # first: a config error is logged as one line as the others are
    args, cfg = parse(script, argv)
    if parallel.rank() != 0:  # one voice: the other ranks say only what goes wrong
        logging.getLogger().setLevel(logging.WARNING)
    select_device(getattr(args, 'use_gpu', False))  # export builds its graph on the CPU
    return args, cfg


def run(script, main, argv=None):
    """Exit with main(argv)'s status; a user's error ends in one line naming what to fix."""
    try:
        status = main(argv)
    except USER_ERRORS + (UsageError,) as e:
        logging.error('%s.py: %s', script, e)
        sys.exit(1)
    except KeyboardInterrupt:
        logging.error('%s.py: interrupted', script)
        sys.exit(130)  # the shell's status for a command stopped by Ctrl-C
    except Exception:
        # a rank whose peer failed stops with a communication error: name the peer's cause
        for path, line in parallel.peer_errors() if parallel.world_size() > 1 else []:
            logging.error('%s.py: another process of the job failed first (%s): %s', script,
                          path, line)
        raise
    sys.exit(status or 0)


def fix_seed(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)
