"""One YAML config for train, eval and predict: defaults, strict overrides, type checks.

The MODEL section is the keyword arguments of `models.TSM`, so the constructor signature is
its schema. The other sections' defaults live in `DEFAULTS` below; a YAML file only needs the
keys it changes. Any key that is not in the schema, or a value whose type differs from the
default's, is an error naming the file and the key: a typo must never become a silent new key.
"""
import copy
import inspect

import yaml

# Kinetics-400 TSM-R50 defaults; every key carries its meaning.
DEFAULTS = {
    'DATA': {
        'data_root': '',          # relative list paths resolve here; '' = the list file's folder
        'short_size': 256,        # short side of frames before cropping
        'target_size': 224,       # network input side
        'scales': [1.0, 0.875, 0.75, 0.66],  # multi-scale crop sides, fractions of the short side
        'flip': True,             # random horizontal flip in training; off for direction classes
        'mean': [0.485, 0.456, 0.406],  # ImageNet RGB mean
        'std': [0.229, 0.224, 0.225],   # ImageNet RGB std
        'dense_sample': False,    # consecutive frames at a fixed stride instead of segments
        'num_workers': 2,         # DataLoader worker processes
        'max_retries': 3,         # decode attempts per video before the item is dropped
        'max_failure_ratio': 0.05,  # dropped items / items seen above this stops the run
        'weights_dir': '',        # download cache of named/URL weights; '' = $TSM_WEIGHTS_HOME
                                  # if set, else ~/.paddle/weights
    },
    'TRAIN': {
        'filelist': 'data/k400/train.list',  # "path label" lines
        'batch_size': 16,         # clips per step
        'epoch': 50,              # epochs to train
        'learning_rate': 0.0025,  # 0.01 per 64 clips in the original recipe, scaled linearly
        'lr_decay': 0.1,          # LR factor at each decay epoch
        'lr_decay_epochs': [20, 40],  # epochs where the LR is multiplied by lr_decay
        'warmup_epochs': 0,       # linear warm-up from 0 over this many epochs
        'momentum': 0.9,          # SGD momentum
        'l2_weight_decay': 1.0e-4,  # L2 regularisation of all parameters
        'clip_norm': 20.0,        # gradient clipping by global norm
        'valid_interval': 1,      # validate every this many epochs (0 = never)
        'log_interval': 10,       # steps between log lines
        'save_dir': 'checkpoints',  # checkpoints, logs and the best model go here
        'pretrain': 'imagenet',   # start weights: a file, a URL, 'imagenet', or '' for none
    },
    'VALID': {
        'filelist': 'data/k400/val.list',  # validation list used during training
        'batch_size': 16,         # clips per step
    },
    'TEST': {
        'filelist': 'data/k400/val.list',  # list evaluated by eval.py
        'batch_size': 16,         # videos per step
        'num_clips': 1,           # temporal views per video (scores averaged)
        'num_crops': 1,           # spatial views per clip: 1 (centre) or 3
        'weights': 'kinetics400',  # a file, a URL, or a name of a published checkpoint
        'save_dir': 'output/eval',  # metrics JSON goes here
        'infer_model': '',        # an export.py folder: run it with paddle.inference instead
        'precision': 'fp32',      # of infer_model: fp32, bf16 (CPUs with bf16) or fp16 (GPU)
        'threads': 0,             # CPU threads of infer_model; 0 = every usable core
    },
    'INFER': {
        'filelist': '',           # videos for predict.py --filelist (labels optional)
        'batch_size': 1,          # videos per step
        'weights': 'kinetics400',  # a file, a URL, or a name of a published checkpoint
        'label_file': 'data/kinetics400_labels.txt',  # class names, line i = label i
        'topk': 5,                # classes printed per video
        'save_dir': 'output/predict',  # predictions JSON goes here
        'online_stride': 1,       # --online: feed every k-th frame of the stream; match the frame
                                  # gap the model was trained with (video frames / seg_num)
        'online_window': 0,       # --online: running prediction over the last k fed frames; 0 = all
        'infer_model': '',        # an export.py folder: run it with paddle.inference instead
        'precision': 'fp32',      # of infer_model: fp32, bf16 (CPUs with bf16) or fp16 (GPU)
        'threads': 0,             # CPU threads of infer_model; 0 = every usable core
    },
}

SECTIONS = ('MODEL',) + tuple(DEFAULTS)


class ConfigError(ValueError):
    """A config file, key or value that does not fit the schema."""


def model_defaults():
    """MODEL defaults read from the TSM constructor, the one place they are written."""
    from models import TSM
    params = inspect.signature(TSM.__init__).parameters
    return {name: p.default for name, p in params.items()
            if name != 'self' and p.default is not inspect.Parameter.empty}


def schema():
    return {'MODEL': model_defaults(), **copy.deepcopy(DEFAULTS)}


def _checked(value, default, where):
    """`value` converted to the type of `default`, or ConfigError naming `where`."""
    if default is None:
        return value
    if isinstance(default, str) and value is None:
        return ''  # YAML's empty value means "none" for path-like keys
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list)
        if ok and default:
            value = [_checked(v, default[0], f'{where}[{i}]') for i, v in enumerate(value)]
    else:
        ok = isinstance(value, type(default))
    if not ok:
        hint = (' (YAML reads 1e-4 as a string: write 1.0e-4)'
                if isinstance(default, float) and isinstance(value, str) else '')
        raise ConfigError(f'{where}: expected {type(default).__name__} like {default!r}, '
                          f'got {type(value).__name__} {value!r}{hint}')
    return value


def _merge(cfg, updates, source):
    if not isinstance(updates, dict):
        raise ConfigError(f'{source}: expected sections {", ".join(SECTIONS)}, got {updates!r}')
    for section, values in updates.items():
        if section not in cfg:
            raise ConfigError(f'{source}: unknown section {section!r}; '
                              f'known: {", ".join(SECTIONS)}')
        if not isinstance(values, dict):
            raise ConfigError(f'{source}: section {section} must be a mapping, got {values!r}')
        for key, value in values.items():
            if key not in cfg[section]:
                raise ConfigError(f'{source}: unknown key {section}.{key}; known keys of '
                                  f'{section}: {", ".join(sorted(cfg[section]))}')
            cfg[section][key] = _checked(value, cfg[section][key], f'{source}: {section}.{key}')


def parse_override(text):
    """'SECTION.key=value' -> {'SECTION': {'key': value}}, the value read as YAML."""
    path, sep, raw = text.partition('=')
    section, dot, key = path.strip().partition('.')
    if not sep or not dot or not key:
        raise ConfigError(f'override {text!r}: expected SECTION.key=value, e.g. TRAIN.epoch=5')
    return {section: {key: yaml.safe_load(raw) if raw.strip() else ''}}


def load_config(path, overrides=()):
    """The schema's defaults, updated by the YAML file at `path`, then by each override:
    a 'SECTION.key=value' string (value read as YAML) or a {SECTION: {key: value}} dict."""
    cfg = schema()
    try:
        with open(path) as f:
            from_file = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f'cannot read config {path}: {e.strerror}') from None
    except yaml.YAMLError as e:
        raise ConfigError(f'config {path} is not valid YAML: {e}') from None
    _merge(cfg, from_file, path)
    for item in overrides:
        if isinstance(item, str):
            _merge(cfg, parse_override(item), f'override {item!r}')
        else:
            _merge(cfg, item, 'command-line flag')
    return cfg
