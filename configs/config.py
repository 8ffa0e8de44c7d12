"""One YAML config for train, eval and predict: defaults, strict overrides, type checks.

The MODEL section is the keyword arguments of `models.TSM`, so the constructor signature is
its schema. The other sections' defaults live in `DEFAULTS` below; a YAML file only needs the
keys it changes. Any key that is not in the schema, or a value whose type differs from the
default's, is an error naming the file and the key: a typo must never become a silent new key.
Values are checked too (`RULES`, and the model's own argument checks), when the config is
loaded: a value that would fail an hour into a run fails before the first step.
"""
import copy
import inspect
import logging
import math
import os
import reprlib

import yaml

import outputs
from models import TSM
from models.amp import AMP_MODES
from models.deploy.engines import CHOICES as ENGINES
from models.deploy.predictor import ALL_PRECISIONS as PRECISIONS
from models.tsm import check_args
from models.weights.published import label_order_problem, published_protocol
from reader.frames import TEMPLATES as FRAME_TEMPLATES, template_problem
from reader.listfile import ListFileError, read_label_names
from reader.protocols import CROPS_PER_CLIP, NAMES as PROTOCOL_NAMES, OURS, PROTOCOLS
from reader.transforms import NUM_CROPS, RESIZE_LIBRARIES, mirror_pairs

logger = logging.getLogger(__name__)


# Kinetics-400 TSM-R50 defaults; every key carries its meaning.
DEFAULTS = {
    'DATA': {
        'data_root': '',          # relative list paths resolve here; '' = the list file's folder
        'short_size': 256,        # short side of frames before cropping
        'target_size': 224,       # network input side
        'scales': [1.0, 0.875, 0.75, 0.66],  # multi-scale crop sides, fractions of the short side
        'flip': True,             # random horizontal flip in training; off for direction classes
        'flip_label_map': [],     # [[a, b], ...]: classes a flip exchanges (left/right), so a
                                  # flipped clip of class a is learnt as b and b as a
        'mean': [0.485, 0.456, 0.406],  # ImageNet RGB mean
        'std': [0.229, 0.224, 0.225],   # ImageNet RGB std
        'frame_template': '',     # frame file names of frame folders, e.g. img_{:05d}.jpg,
                                  # {:05d}.jpg (SSv1, Jester), {:06d}.jpg; '' = detected
        'dense_sample': False,    # consecutive frames at a fixed stride instead of segments
        'resize': 'cv2',          # bilinear resizing with cv2, or pil (antialiased when it
                                  # shrinks, as the original TSM and PaddleVideo train)
        'num_workers': 2,         # DataLoader worker processes
        'max_retries': 3,         # decode attempts per training item, a new sample each,
                                  # before it is dropped; the other modes try once
        'max_failure_ratio': 0.05,  # dropped items / items seen above this stops the run
        'min_decoded_fraction': 0.5,  # a video of which a smaller fraction of the frames it
                                  # holds decodes is refused, not scored from what is left
        'weights_dir': '',        # download cache of named/URL weights; '' = $TSM_WEIGHTS_HOME
                                  # if set, else ~/.paddle/weights
    },
    'TRAIN': {
        'filelist': 'data/k400/train.list',  # "path label" lines
        'batch_size': 8,          # clips per step on each device (process)
        'accum_steps': 1,         # steps whose gradients are summed before one update
        'epoch': 50,              # epochs to train
        'learning_rate': 0.01,    # for a global batch of lr_reference_batch clips (the original
                                  # recipe: 0.01 per 64); scaled linearly to the global batch,
                                  # batch_size x devices x accum_steps
        'lr_reference_batch': 64,  # the global batch learning_rate is stated for
        'lr_decay': 0.1,          # LR factor at each decay epoch
        'lr_decay_epochs': [20, 40],  # epochs where the LR is multiplied by lr_decay
        'warmup_epochs': 0,       # linear warm-up from 0 over this many epochs
        'momentum': 0.9,          # SGD momentum
        'l2_weight_decay': 1.0e-4,  # L2 regularisation of all parameters
        'clip_norm': 20.0,        # gradient clipping by global norm
        'param_groups': 'plain',  # plain: one rate and decay for all; mit: the original code's
                                  # (biases 2x without decay, BatchNorm without decay, a new
                                  # classifier at 5x, its bias 10x)
        'valid_interval': 1,      # validate every this many epochs (0 = never)
        'log_interval': 10,       # steps between log lines
        'save_dir': 'checkpoints',  # checkpoints, logs and the best model go here
        'keep_checkpoints': 0,    # epoch checkpoints kept, the newest; 0 = all (TSM_best stays)
        'pretrain': 'imagenet',   # start weights: a file, a URL, 'imagenet', or '' for none
        'amp': 'off',             # mixed precision on GPUs: off, fp16 or bf16 (paddle.amp O1,
                                  # fp32 master weights); the CPU trains in fp32
        'sync_bn': False,         # BatchNorm statistics over all GPUs' clips (GPU only)
        'visualdl_dir': '',       # also log the epoch scalars for VisualDL here, when the
                                  # visualdl package is installed ('' = no)
    },
    'VALID': {
        'filelist': 'data/k400/val.list',  # validation list used during training
        'batch_size': 16,         # clips per step
    },
    'TEST': {
        'filelist': 'data/k400/val.list',  # list evaluated by eval.py
        'batch_size': 16,         # videos per step
        'protocol': '',           # test pipeline (reader/protocols.py): a published one such as
                                  # pptsm-dense, or ours; '' = ours when num_clips or num_crops
                                  # is set, else the one the weights' published figure was
                                  # measured with, else ours
        'num_clips': 0,           # temporal views per video (scores averaged); 0 = the
                                  # protocol's (ours: 1)
        'num_crops': 0,           # spatial views per clip: 1 (centre) or 3; 0 = the protocol's
        'weights': 'kinetics400',  # a file, a URL, or a name of a published checkpoint
        'save_dir': 'output/eval',  # metrics JSON goes here
        'infer_model': '',        # an export.py folder to run instead of the weights
        'precision': 'fp32',      # of the exported model: fp32, bf16 (CPUs with bf16), fp16
                                  # (GPU), auto (bf16 where the CPU has it, else fp32) or
                                  # int8 (engine openvino: NNCF, calibrated on TRAIN.filelist)
        'threads': 0,             # CPU threads of the exported model; 0 = every usable core
        'engine': 'auto',         # what runs the exported model: paddle (Paddle Inference),
                                  # onnxruntime or openvino (requirements-deploy.txt), or
                                  # auto: the fastest installed here, measured once per model
                                  # and kept (Paddle Inference on a GPU, or when the others
                                  # are not installed); $TSM_ENGINE, when set, is the default
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
        'online_window': 12,      # --online: running prediction over the last k fed frames; 0 = all
        'online_confirm': 1,      # --online: steps in a row a new class must win to become the label
        'online_ignore': [],      # --online: classes (index or name) never shown as the label
        'online_merge': [],       # --online: [[class, counted as], ...], by index or name
        'protocol': '',           # as TEST.protocol, for INFER.weights; ours takes TEST's counts
        'infer_model': '',        # an export.py folder to run instead of the weights
        'precision': 'fp32',      # of the exported model: fp32, bf16 (CPUs with bf16), fp16
                                  # (GPU) or auto (bf16 where the CPU has it, else fp32)
        'threads': 0,             # CPU threads of the exported model; 0 = every usable core
        'engine': 'auto',         # what runs the exported model (and the --online step):
                                  # paddle, onnxruntime, openvino or auto, as TEST.engine
    },
}

SECTIONS = ('MODEL',) + tuple(DEFAULTS)
# YAML nodes a config may hold once its aliases are expanded: the schema has about a hundred,
# and a few nested aliases (a "billion laughs") would otherwise expand to billions.
MAX_NODES = 10_000
SHOWN = 80  # characters of a value shown in a message


class ConfigError(ValueError):
    """A config file, key or value that does not fit the schema."""


def model_defaults():
    """MODEL defaults read from the TSM constructor, the one place they are written."""
    params = inspect.signature(TSM.__init__).parameters
    return {name: p.default for name, p in params.items()
            if name != 'self' and p.default is not inspect.Parameter.empty}


def shown(value):
    """`value`'s repr cut to about SHOWN characters, built without writing the whole repr."""
    brief = reprlib.Repr()
    brief.maxlevel, brief.maxstring, brief.maxother = 3, SHOWN, SHOWN
    text = brief.repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + '...'


def _expanded_nodes(root):
    """The nodes of YAML node `root` counted as if each alias were a copy of its anchor,
    capped at MAX_NODES + 1 (each distinct node is visited once); None when an alias sits
    inside its own anchor."""
    counts, open_nodes, stack = {}, set(), [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = ([] if isinstance(node, yaml.ScalarNode) else
                    [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value)
        if finished:
            open_nodes.discard(id(node))
            counts[id(node)] = min(1 + sum(counts[id(c)] for c in children), MAX_NODES + 1)
        elif id(node) in open_nodes:
            return None
        elif id(node) not in counts:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return counts[id(root)]


def load_yaml(stream, source):
    """yaml.safe_load of `stream`, refusing a document whose aliases expand beyond MAX_NODES
    nodes or into themselves (ConfigError naming `source`) before anything is built."""
    loader = yaml.SafeLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        count = _expanded_nodes(node)
        if count is None or count > MAX_NODES:
            raise ConfigError(f'{source}: ' + (
                'a YAML alias (*name) inside its own anchor (&name)' if count is None else
                f'more than {MAX_NODES} YAML values once its aliases (*name) are expanded '
                f'(a config has about a hundred)'))
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_problem(e):
    """YAMLError `e` in one line: ' at line L, column C: what'."""
    mark = getattr(e, 'problem_mark', None)
    where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
    return f'{where}: {getattr(e, "problem", None) or str(e).splitlines()[0]}'


def schema():
    """Every section with its defaults; $TSM_ENGINE, when set, is the default engine (a
    deployment that has chosen, or a test suite that runs Paddle Inference alone)."""
    cfg = {'MODEL': model_defaults(), **copy.deepcopy(DEFAULTS)}
    engine = os.environ.get('TSM_ENGINE')
    if engine:
        if engine not in ENGINES:
            raise ConfigError(f"$TSM_ENGINE: expected one of {', '.join(ENGINES)}, "
                              f"got {engine!r}")
        for section in ('TEST', 'INFER'):
            cfg[section]['engine'] = engine
    return cfg


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
        if ok and not math.isfinite(value):  # YAML's .inf and .nan are floats too
            raise ConfigError(f'{where}: expected a finite number, got {value!r}')
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
                          f'got {type(value).__name__} {shown(value)}{hint}')
    return value


def _merge(cfg, updates, source):
    if not isinstance(updates, dict):
        raise ConfigError(f'{source}: expected sections {", ".join(SECTIONS)}, got '
                          f'{shown(updates)}')
    for section, values in updates.items():
        if section not in cfg:
            raise ConfigError(f'{source}: unknown section {section!r}; '
                              f'known: {", ".join(SECTIONS)}')
        if not isinstance(values, dict):
            raise ConfigError(f'{source}: section {section} must be a mapping, got '
                              f'{shown(values)}')
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
        raise ConfigError(f'override {shown(text)}: expected SECTION.key=value, '
                          f'e.g. TRAIN.epoch=5')
    try:
        value = load_yaml(raw, f'override {shown(text)}') if raw.strip() else ''
    except yaml.YAMLError as e:
        raise ConfigError(f'override {shown(text)}: the value is not valid YAML'
                          f'{_yaml_problem(e)}') from None
    return {section: {key: value}}


def read_sources(path, overrides=()):
    """[(source, {SECTION: {key: value}})]: the YAML file at `path`, then each override, a
    'SECTION.key=value' string (value read as YAML) or a {SECTION: {key: value}} dict (a
    command-line flag); `source` names each in messages."""
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8')
        from_file = load_yaml(text, path) or {}
    except OSError as e:
        raise ConfigError(f'cannot read config {path}: {e.strerror}') from None
    except UnicodeDecodeError as e:
        raise ConfigError(f'config {path} is not UTF-8 text (byte {e.start} is '
                          f'{e.object[e.start]:#04x}): save it as UTF-8') from None
    except yaml.YAMLError as e:
        raise ConfigError(f'config {path} is not valid YAML{_yaml_problem(e)}') from None
    return [(path, from_file)] + [
        (f'override {shown(item)}', parse_override(item)) if isinstance(item, str)
        else ('command-line flag', item) for item in overrides]


def merged(sources):
    """The schema's defaults updated by each of `sources` in turn (read_sources), each key
    and type checked; values are checked by `checked`."""
    cfg = schema()
    for source, updates in sources:
        _merge(cfg, updates, source)
    return cfg


def checked(cfg, path):
    """`cfg` once its values are checked (check_values) and its protocols resolved; `path`
    names the config file in messages."""
    check_values(cfg, path)
    check_int8(cfg, path)
    resolve_protocols(cfg, path)
    warn_mirrored_classes(cfg, path)
    check_label_order(cfg, path)
    return cfg


def check_int8(cfg, path):
    """int8 is OpenVINO's, calibrated on TRAIN.filelist: both must be there."""
    for section in ('TEST', 'INFER'):
        settings = cfg[section]
        if settings['precision'] != 'int8':
            continue
        if settings['engine'] not in ('openvino', 'auto'):
            raise ConfigError(f"{path}: {section}.precision int8 runs on OpenVINO: set "
                              f"{section}.engine openvino or auto (now {settings['engine']})")
        if not cfg['TRAIN']['filelist']:
            raise ConfigError(f'{path}: {section}.precision int8 is calibrated on clips of '
                              f'TRAIN.filelist, which is empty')


class _Dumper(yaml.SafeDumper):
    """Sections and keys one a line, lists on the line of their key, as the configs are."""


_Dumper.add_representer(list, lambda dumper, value: dumper.represent_sequence(
    'tag:yaml.org,2002:seq', value, flow_style=True))


def write_config(path, cfg, header):
    """`cfg` as a YAML config load_config reads back, after the comment lines `header`;
    written through a temporary file (outputs.replacing)."""
    with outputs.replacing(path) as f:
        f.write(''.join(f'# {line}\n' for line in header))
        yaml.dump(cfg, f, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                  width=100)


def load_config(path, overrides=()):
    """The schema's defaults, updated by the YAML file at `path`, then by each override:
    a 'SECTION.key=value' string (value read as YAML) or a {SECTION: {key: value}} dict."""
    return checked(merged(read_sources(path, overrides)), path)


# Frames are resized to short_size before cropping: a side beyond 4K video's is a typo,
# and costs gigabytes of memory per clip before anything fails.
MAX_SIDE = 4096


def _label_pairs(pairs):
    """Whether `pairs` is [[a, b], ...] of distinct class indices, none in two pairs."""
    if not all(isinstance(p, list) and len(p) == 2 and
               all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in p)
               for p in pairs):
        return False
    classes = [c for p in pairs for c in p]
    return len(classes) == len(set(classes))


def _ascending(values):
    return all(v >= 0 for v in values) and list(values) == sorted(set(values))


# (section, key, test, what is expected): value checks of single keys.
RULES = [
    ('DATA', 'short_size', lambda v: 1 <= v <= MAX_SIDE, f'an int in [1, {MAX_SIDE}]'),
    ('DATA', 'target_size', lambda v: v >= 1, 'an int >= 1'),
    ('DATA', 'scales', lambda v: v and all(0 < x <= 1 for x in v),
     'a non-empty list of fractions in (0, 1]'),
    ('DATA', 'mean', lambda v: len(v) == 3, 'three values, R G B'),
    ('DATA', 'std', lambda v: len(v) == 3 and all(x > 0 for x in v),
     'three positive values, R G B'),
    ('DATA', 'num_workers', lambda v: v >= 0, 'an int >= 0'),
    ('DATA', 'max_retries', lambda v: v >= 1, 'an int >= 1'),
    ('DATA', 'max_failure_ratio', lambda v: 0 <= v <= 1, 'a fraction in [0, 1]'),
    ('DATA', 'min_decoded_fraction', lambda v: 0 <= v <= 1, 'a fraction in [0, 1]'),
    ('TRAIN', 'batch_size', lambda v: v >= 1, 'an int >= 1'),
    ('TRAIN', 'accum_steps', lambda v: v >= 1, 'an int >= 1'),
    ('TRAIN', 'epoch', lambda v: v >= 1, 'an int >= 1'),
    ('TRAIN', 'learning_rate', lambda v: v > 0, 'a positive number'),
    ('TRAIN', 'lr_reference_batch', lambda v: v >= 1, 'an int >= 1'),
    ('TRAIN', 'keep_checkpoints', lambda v: v >= 0, 'an int >= 0 (0: all)'),
    ('TRAIN', 'amp', lambda v: v in AMP_MODES, f'one of {", ".join(AMP_MODES)}'),
    ('TRAIN', 'lr_decay', lambda v: 0 < v <= 1, 'a factor in (0, 1]'),
    ('TRAIN', 'lr_decay_epochs', _ascending,
     'ascending epochs >= 0 without repeats, or [] for no decay'),
    ('TRAIN', 'warmup_epochs', lambda v: v >= 0, 'a number >= 0'),
    ('TRAIN', 'momentum', lambda v: 0 <= v < 1, 'a value in [0, 1)'),
    ('TRAIN', 'l2_weight_decay', lambda v: v >= 0, 'a number >= 0'),
    ('TRAIN', 'clip_norm', lambda v: v > 0, 'a positive number'),
    ('TRAIN', 'param_groups', lambda v: v in ('plain', 'mit'), 'plain or mit'),
    ('TRAIN', 'valid_interval', lambda v: v >= 0, 'an int >= 0 (0: never)'),
    ('TRAIN', 'log_interval', lambda v: v >= 0, 'an int >= 0'),
    ('VALID', 'batch_size', lambda v: v >= 1, 'an int >= 1'),
] + [rule for section in ('TEST', 'INFER') for rule in [
    (section, 'batch_size', lambda v: v >= 1, 'an int >= 1'),
    (section, 'precision', lambda v: v in PRECISIONS, f'one of {", ".join(PRECISIONS)}'),
    (section, 'threads', lambda v: v >= 0, 'an int >= 0 (0: every usable core)'),
    (section, 'engine', lambda v: v in ENGINES, f'one of {", ".join(ENGINES)}'),
    (section, 'protocol', lambda v: v in ('',) + PROTOCOL_NAMES,
     f"'' (the weights' own) or one of {', '.join(PROTOCOL_NAMES)}"),
]] + [
    ('DATA', 'flip_label_map', _label_pairs,
     'pairs [[a, b], ...] of two different class indices >= 0, each class in one pair'),
    ('DATA', 'frame_template', lambda v: not v or not template_problem(v),
     f"'' (detected) or a .jpg name with one integer field, such as "
     f"{', '.join(FRAME_TEMPLATES)}"),
    ('DATA', 'resize', lambda v: v in RESIZE_LIBRARIES, f'one of {", ".join(RESIZE_LIBRARIES)}'),
    ('TEST', 'num_clips', lambda v: v >= 0, "an int >= 1, or 0 for the protocol's"),
    ('TEST', 'num_crops', lambda v: v in (0,) + NUM_CROPS,
     f"one of {NUM_CROPS}, or 0 for the protocol's"),
    ('INFER', 'topk', lambda v: v >= 1, 'an int >= 1'),
    ('INFER', 'online_stride', lambda v: v >= 1, 'an int >= 1'),
    ('INFER', 'online_window', lambda v: v >= 0, 'an int >= 0 (0: every frame)'),
    ('INFER', 'online_confirm', lambda v: v >= 1, 'an int >= 1'),
    ('INFER', 'online_ignore', lambda v: all(_class_ref(c) for c in v),
     'a list of classes, each an index >= 0 or a name'),
    ('INFER', 'online_merge', lambda v: all(isinstance(p, list) and len(p) == 2
                                            and all(_class_ref(c) for c in p) for p in v),
     'pairs [[class, counted as], ...], each class an index >= 0 or a name'),
]


def _class_ref(value):
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and value != '')


def check_values(cfg, source):
    """ConfigError naming the first key of `cfg` whose value cannot work; `source` names
    the config file in the message."""
    for section, key, test, expected in RULES:
        value = cfg[section][key]
        if not test(value):
            raise ConfigError(f'{source}: {section}.{key}: expected {expected}, '
                              f'got {shown(value)}')
    try:
        check_args(**cfg['MODEL'])
    except ValueError as e:  # the model's own message names the argument
        raise ConfigError(f'{source}: MODEL.{e}') from None
    data, train = cfg['DATA'], cfg['TRAIN']
    beyond = [c for pair in data['flip_label_map'] for c in pair
              if c >= cfg['MODEL']['num_classes']]
    if beyond:
        raise ConfigError(f'{source}: DATA.flip_label_map names class {beyond[0]}, not below '
                          f'MODEL.num_classes {cfg["MODEL"]["num_classes"]}')
    if data['target_size'] > data['short_size']:
        raise ConfigError(f'{source}: DATA.target_size {data["target_size"]} is larger than '
                          f'DATA.short_size {data["short_size"]}: validation and test crops '
                          f'of target_size must fit in frames resized to short_size')
    early = [e for e in train['lr_decay_epochs'] if e < train['warmup_epochs']]
    if early:
        raise ConfigError(f'{source}: TRAIN.lr_decay_epochs {early} come before the warm-up '
                          f'ends (TRAIN.warmup_epochs {train["warmup_epochs"]}): no decay may '
                          f'come inside it')


def warn_mirrored_classes(cfg, source):
    """Log a warning naming the classes of INFER.label_file that a horizontal flip
    exchanges (left/right, clockwise/counterclockwise) and DATA.flip_label_map does not
    pair, when DATA.flip is on: training would learn each from the other's mirror image."""
    data, path = cfg['DATA'], cfg['INFER']['label_file']
    if not data['flip'] or not os.path.isfile(path):
        return
    try:
        names = read_label_names(path, cfg['MODEL']['num_classes'])
    except ListFileError:
        return  # not this model's names: train.py and predict.py report that
    mapped = {tuple(sorted(pair)) for pair in data['flip_label_map']}
    unmapped = [pair for pair in mirror_pairs(names) if pair not in mapped]
    if unmapped:
        shown_pairs = ', '.join(f'{i} {names[i]!r} / {j} {names[j]!r}' for i, j in unmapped)
        logger.warning('%s: DATA.flip is on, and a horizontal flip turns these classes of %s '
                       'into each other: %s; set DATA.flip_label_map: %s (or DATA.flip: false)',
                       source, path, shown_pairs,
                       sorted([list(p) for p in mapped] + [list(p) for p in unmapped]))


def check_label_order(cfg, source):
    """ConfigError when INFER.label_file does not name the classes in the order the
    published weights of TEST or INFER output them (the lists made with it number the
    classes in its order, so scores and predictions would be silently misnamed)."""
    path = cfg['INFER']['label_file']
    specs = {cfg[s]['weights'] for s in ('TEST', 'INFER') if not cfg[s]['infer_model']}
    if not os.path.isfile(path):
        return
    try:
        names = read_label_names(path, cfg['MODEL']['num_classes'])
    except ListFileError:
        return  # not this model's names: eval.py and predict.py report that
    for spec in sorted(specs):
        problem = label_order_problem(spec, names, path)
        if problem:
            raise ConfigError(f'{source}: INFER.label_file {problem}')


def _weights_protocol(settings):
    """The protocol a TEST or INFER section's weights were published with, '' when none is
    (a local file or folder, a URL; an exported infer_model runs instead of the weights)."""
    return '' if settings['infer_model'] else published_protocol(settings['weights'])


def resolve_protocols(cfg, source):
    """Set each empty TEST/INFER.protocol: ours when TEST.num_clips or num_crops is set (the
    config chose its views: our own pipeline's keys), else the protocol of the section's
    weights, else ours. A protocol the config names must agree with TEST.num_clips and
    num_crops where those are set: ConfigError naming the keys. `source` names the file."""
    test = cfg['TEST']
    counted = test['num_clips'] or test['num_crops']
    named = PROTOCOLS.get(test['protocol'])
    for section in ('TEST', 'INFER'):
        settings = cfg[section]
        own = '' if counted else _weights_protocol(settings)
        settings['protocol'] = settings['protocol'] or own or OURS
    if named is None:
        return
    counts = {'num_clips': named.num_clips, 'num_crops': CROPS_PER_CLIP[named.crops]}
    for key, count in counts.items():
        if test[key] not in (0, count):
            raise ConfigError(
                f"{source}: TEST.{key} {test[key]} contradicts TEST.protocol "
                f"{test['protocol']!r}, which has {named.num_clips} clips x "
                f"{counts['num_crops']} crops: remove TEST.{key}, or set TEST.protocol: "
                f"{OURS} for our own pipeline")
