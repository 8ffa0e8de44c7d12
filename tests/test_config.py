import time

import pytest

from configs import cli
from configs.cli import parse
from configs.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / 'c.yaml'
    path.write_text(text)
    return str(path)


def test_shipped_configs_load():
    for name in ('tsm', 'tsm_demo', 'tsn_demo', 'pptsm', 'tsm_mv2_jester_online'):
        cfg = load_config(f'configs/{name}.yaml')
        assert set(cfg) == {'MODEL', 'DATA', 'TRAIN', 'VALID', 'TEST', 'INFER'}
    assert load_config('configs/tsm.yaml')['MODEL']['depth'] == 50
    assert load_config('configs/tsn_demo.yaml')['MODEL']['shift_mode'] == 'none'
    gestures = load_config('configs/tsm_mv2_jester_online.yaml')
    assert gestures['MODEL']['backbone'] == 'mobilenet_v2'
    assert gestures['MODEL']['shift_mode'] == 'online'
    assert gestures['INFER']['weights'] == gestures['TRAIN']['pretrain'] == 'jester-mit-mv2-online'
    # fine-tuning a trained start, as the original's scripts/finetune_tsm_ucf101_rgb_8f.sh:
    # --lr 0.001 --lr_steps 10 20 --epochs 25 --batch-size 64 --gd 20, flip off (gestures)
    train = gestures['TRAIN']
    assert (train['learning_rate'], train['lr_reference_batch'], train['epoch'],
            train['lr_decay_epochs'], train['clip_norm']) == (0.001, 64, 25, [10, 20], 20.0)
    assert gestures['DATA']['flip'] is False


@pytest.mark.parametrize('name, classes, protocol', [
    ('tsm_sthv1', 174, 'mit-1crop'), ('tsm_sthv2', 174, 'mit-twice'),
    ('tsm_jester', 27, 'mit-1crop')])
def test_the_20bn_recipes_are_the_original_something_something_command(name, classes,
                                                                          protocol):
    cfg = load_config(f'configs/{name}.yaml')
    train = cfg['TRAIN']
    # main.py something RGB --num_segments 8 --gd 20 --lr 0.01 --lr_steps 20 40 --epochs 50
    # --batch-size 64 --dropout 0.5 --npb, weight decay its default 5e-4, flip off
    assert (cfg['MODEL']['num_classes'], cfg['MODEL']['seg_num'], cfg['MODEL']['dropout']) == (
        classes, 8, 0.5)
    assert (train['learning_rate'], train['lr_reference_batch'], train['epoch']) == (
        0.01, 64, 50)
    assert (train['lr_decay_epochs'], train['l2_weight_decay'], train['clip_norm']) == (
        [20, 40], 5.0e-4, 20.0)
    assert cfg['DATA']['flip'] is False and cfg['TEST']['protocol'] == protocol


def test_model_section_is_the_constructor_signature():
    cfg = load_config('configs/tsm.yaml')
    from models import TSM
    TSM(**cfg['MODEL'])  # every key is an argument, or this raises TypeError
    assert cfg['MODEL']['shift_ratio'] == 0.125


def test_defaults_fill_missing_keys(tmp_path):
    cfg = load_config(write(tmp_path, 'TRAIN:\n  epoch: 3\n'))
    assert cfg['TRAIN']['epoch'] == 3
    assert cfg['TRAIN']['momentum'] == 0.9
    assert cfg['MODEL']['seg_num'] == 8


@pytest.mark.parametrize('text, words', [
    ('TRAIN:\n  epochs: 3\n', ['TRAIN.epochs', 'unknown key']),
    ('TRIAN:\n  epoch: 3\n', ['TRIAN', 'unknown section']),
    ('MODEL:\n  num_layers: 50\n', ['MODEL.num_layers']),
    ('TRAIN:\n  epoch: three\n', ['TRAIN.epoch', 'expected int']),
    ('TRAIN:\n  l2_weight_decay: 1e-4\n', ['TRAIN.l2_weight_decay', '1.0e-4']),
    ('DATA:\n  flip: 1\n', ['DATA.flip', 'expected bool']),
    ('DATA:\n  mean: [0.5, x, 0.5]\n', ['DATA.mean[1]']),
    ('TRAIN: 3\n', ['section TRAIN']),
])
def test_bad_keys_and_types_name_the_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    for word in words + [path]:
        assert word in str(e.value)


@pytest.mark.parametrize('text, words', [
    ('DATA:\n  short_size: 224\n  target_size: 256\n',
     ['DATA.target_size 256 is larger than DATA.short_size 224']),
    ('TEST:\n  num_crops: 2\n', ['TEST.num_crops', 'one of (1, 3)', 'got 2']),
    ('TEST:\n  num_clips: -1\n', ['TEST.num_clips', 'got -1']),
    ('TEST:\n  protocol: mit\n', ['TEST.protocol', 'pptsm-dense', "got 'mit'"]),
    ('DATA:\n  resize: cubic\n', ['DATA.resize', 'cv2, pil']),
    ('TEST:\n  protocol: mit-10crop\n  num_crops: 3\n',
     ["TEST.num_crops 3 contradicts TEST.protocol 'mit-10crop', which has 1 clips x 10 crops",
      'TEST.protocol: ours']),
    ('TRAIN:\n  lr_decay_epochs: [40, 20]\n', ['TRAIN.lr_decay_epochs', 'ascending']),
    ('TRAIN:\n  warmup_epochs: 5\n  lr_decay_epochs: [2, 20]\n',
     ['TRAIN.lr_decay_epochs [2]', 'warm-up']),
    ('TRAIN:\n  batch_size: 0\n', ['TRAIN.batch_size', 'got 0']),
    ('DATA:\n  scales: [1.0, 1.5]\n', ['DATA.scales', '(0, 1]']),
    ('DATA:\n  std: [0.2, 0.0, 0.2]\n', ['DATA.std']),
    ('INFER:\n  precision: int4\n', ['INFER.precision', 'fp32', 'int8']),
    ('INFER:\n  precision: int8\n', ['INFER.precision int8 runs on OpenVINO', 'INFER.engine']),
    ('MODEL:\n  depth: 42\n', ['MODEL.depth', '42']),
    ('MODEL:\n  shift_ratio: 0.75\n', ['MODEL.shift_ratio', '0.75']),
    ('DATA:\n  short_size: 100000\n', ['DATA.short_size', '[1, 4096]', 'got 100000']),
    ('TRAIN:\n  learning_rate: .inf\n', ['TRAIN.learning_rate', 'finite', 'inf']),
    ('TRAIN:\n  clip_norm: .nan\n', ['TRAIN.clip_norm', 'finite', 'nan']),
    ('DATA:\n  mean: [0.5, -.inf, 0.5]\n', ['DATA.mean[1]', 'finite']),
    ('DATA:\n  flip_label_map: [[1, 2, 3]]\n', ['DATA.flip_label_map', 'pairs [[a, b]']),
    ('DATA:\n  flip_label_map: [[1, 2], [2, 5]]\n', ['DATA.flip_label_map', 'one pair']),
    ('DATA:\n  flip_label_map: [[3, 3]]\n', ['DATA.flip_label_map', 'two different']),
    ('MODEL:\n  num_classes: 10\nDATA:\n  flip_label_map: [[3, 10]]\n',
     ['DATA.flip_label_map names class 10, not below MODEL.num_classes 10']),
    ("DATA:\n  frame_template: 'img_{:05d}.png'\n", ['DATA.frame_template', '{:06d}.jpg']),
])
def test_values_that_cannot_work_name_the_key_at_load(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    for word in words + [path]:
        assert word in str(e.value)


def test_protocol_comes_from_the_weights_unless_the_config_names_one(tmp_path):
    cfg = load_config('configs/tsm.yaml')
    assert cfg['TEST']['protocol'] == cfg['INFER']['protocol'] == 'paddlevideo-tsm'
    cfg = load_config('configs/pptsm.yaml', ['TEST.weights=pptsm-k400-dense-distill'])
    assert (cfg['TEST']['protocol'], cfg['INFER']['protocol']) == ('pptsm-dense',
                                                                   'pptsm-uniform')
    # a local checkpoint folder or an exported model records no protocol: our own pipeline,
    # with TEST's counts (the demo configs)
    assert load_config('configs/tsm_demo.yaml')['TEST']['protocol'] == 'ours'
    cfg = load_config('configs/tsm.yaml', ['TEST.infer_model=output/export'])
    assert cfg['TEST']['protocol'] == 'ours'
    # counts in the config choose our own pipeline's views, as before protocols existed
    cfg = load_config(write(tmp_path, 'TEST:\n  weights: pptsm-k400-dense\n  num_clips: 2\n'))
    assert (cfg['TEST']['protocol'], cfg['INFER']['protocol']) == ('ours', 'ours')
    cfg = load_config('configs/tsm.yaml', ['TEST.protocol=mit-dense', 'TEST.num_clips=10'])
    assert cfg['TEST']['protocol'] == 'mit-dense'


def test_no_decay_is_an_empty_list(tmp_path):
    assert load_config(write(tmp_path, 'TRAIN:\n  lr_decay_epochs: []\n'))['TRAIN'][
        'lr_decay_epochs'] == []


def test_override_that_is_not_yaml_names_the_override(tmp_path):
    with pytest.raises(ConfigError, match=r"override 'TRAIN.lr_decay_epochs=\[1': the value "
                                          r"is not valid YAML"):
        load_config(write(tmp_path, ''), ['TRAIN.lr_decay_epochs=[1'])


def test_int_is_accepted_for_float(tmp_path):
    cfg = load_config(write(tmp_path, 'TRAIN:\n  learning_rate: 1\n'))
    assert cfg['TRAIN']['learning_rate'] == 1.0 and isinstance(cfg['TRAIN']['learning_rate'], float)


def test_overrides_apply_in_order_and_are_checked(tmp_path):
    path = write(tmp_path, 'TRAIN:\n  epoch: 3\n')
    cfg = load_config(path, ['TRAIN.epoch=5', 'DATA.scales=[1.0, 0.5]', {'TRAIN': {'epoch': 7}}])
    assert cfg['TRAIN']['epoch'] == 7 and cfg['DATA']['scales'] == [1.0, 0.5]
    with pytest.raises(ConfigError, match='TRAIN.epcoh'):
        load_config(path, ['TRAIN.epcoh=5'])
    with pytest.raises(ConfigError, match='SECTION.key=value'):
        load_config(path, ['epoch=5'])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match='nope.yaml'):
        load_config(str(tmp_path / 'nope.yaml'))
    with pytest.raises(ConfigError, match='not valid YAML'):
        load_config(write(tmp_path, 'TRAIN: [\n'))


def test_old_zoo_flags_map_to_the_scripts_section():
    args, cfg = parse('eval', ['--config', 'configs/tsm.yaml', '--batch_size', '3',
                               '--filelist', 'my list.txt', '--weights', 'w.pdparams',
                               '--save_dir', 'out', '--use_gpu', 'False'])
    assert cfg['TEST']['batch_size'] == 3 and cfg['TEST']['filelist'] == 'my list.txt'
    assert cfg['TEST']['weights'] == 'w.pdparams' and cfg['TEST']['save_dir'] == 'out'
    assert args.use_gpu is False
    args, cfg = parse('train', ['--config', 'configs/tsm.yaml', '--epoch', '2',
                                '--learning_rate', '0.1', '--pretrain', '', '--fix_random_seed',
                                '-o', 'TRAIN.epoch=4'])
    assert cfg['TRAIN']['epoch'] == 4  # -o comes after the flags
    assert cfg['TRAIN']['learning_rate'] == 0.1 and cfg['TRAIN']['pretrain'] == ''
    assert args.fix_random_seed is True


@pytest.mark.parametrize('script, flag', [('eval', '--resume'), ('eval', '--epoch'),
                                          ('train', '--online'), ('train', '--weights'),
                                          ('predict', '--pretrain'), ('export', '--use_gpu')])
def test_each_script_takes_its_own_flags_only(capsys, script, flag):
    with pytest.raises(SystemExit):
        parse(script, ['--config', 'configs/tsm.yaml', flag, 'x'])
    assert f'unrecognized arguments: {flag}' in capsys.readouterr().err


def test_unknown_model_and_bad_override_exit_with_the_name(capsys):
    with pytest.raises(SystemExit):
        parse('train', ['--model_name', 'I3D'])
    assert "'I3D'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match='TRAIN.nope'):
        parse('train', ['-o', 'TRAIN.nope=1'])


def alias_bomb(levels=9):
    """A "billion laughs": each level a list of nine aliases of the level before, 9**9 strings
    in about 300 bytes."""
    names = 'abcdefghi'[:levels]
    lines = ['- &a [' + ','.join(['lol'] * 9) + ']']
    lines += [f'- &{name} [' + ','.join([f'*{before}'] * 9) + ']'
              for before, name in zip(names, names[1:])]
    return '\n'.join(lines) + '\n'


def test_an_alias_bomb_is_refused_at_once_naming_the_file(tmp_path):
    path = write(tmp_path, alias_bomb())
    assert len(alias_bomb()) == 315
    began = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert time.perf_counter() - began < 2
    message = str(e.value)
    assert message.startswith(path) and 'aliases' in message and '\n' not in message
    assert len(message) < 200
    with pytest.raises(ConfigError, match='inside its own anchor'):
        load_config(write(tmp_path, 'DATA:\n  mean: &m [0.5, *m, 0.5]\n'))
    with pytest.raises(ConfigError, match='aliases'):
        load_config('configs/tsm.yaml', [f'DATA.mean={alias_bomb(7)}'])
    # a few aliases stay usable
    cfg = load_config(write(tmp_path, 'VALID:\n  batch_size: &b 4\nTEST:\n  batch_size: *b\n'))
    assert cfg['VALID']['batch_size'] == cfg['TEST']['batch_size'] == 4


@pytest.mark.parametrize('text', ['DATA:\n  flip: "%s"\n', 'DATA:\n  scales: [0.5, "%s"]\n',
                                  'TRAIN:\n  amp: "%s"\n', '["%s"]\n'])
def test_a_long_value_is_shown_cut_short(tmp_path, text):
    path = write(tmp_path, text % ('x' * 100_000))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert path in str(e.value) and 'xxxxx' in str(e.value) and len(str(e.value)) < 400


def test_yaml_that_does_not_parse_is_one_line_with_its_line(tmp_path):
    path = write(tmp_path, 'TRAIN:\n  epoch: [1, 2\n  lr: 3\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (f"config {path} is not valid YAML at line 3, column 5: expected "
                            f"',' or ']', but got ':'")


def start_only(argv):
    cli.start('train', argv)
    return 0


@pytest.mark.parametrize('content, words', [
    (b'TRAIN:\n  epochs: 3\n', ['unknown key TRAIN.epochs']),
    (b'TRAIN:\n  save_dir: caf\xe9\n', ['is not UTF-8 text (byte 22 is 0xe9)']),
    (b'TRAIN: [\n', ['is not valid YAML']),
])
def test_config_errors_exit_1_in_one_line(tmp_path, capsys, content, words):
    """As the README says of every user error: one line naming the file, exit status 1."""
    path = tmp_path / 'c.yaml'
    path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        cli.run('train', start_only, ['--config', str(path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and 'Traceback' not in err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and str(path) in errors[0]
    for word in words:
        assert word in errors[0]


MIRRORED = ['move_left', 'rotate_cw', 'grow', 'move_right', 'rotate_ccw', 'shrink']


@pytest.mark.parametrize('data, warned', [
    ('{}', [(0, 3), (1, 4)]),
    ('{flip_label_map: [[3, 0]]}', [(1, 4)]),
    ('{flip_label_map: [[0, 3], [1, 4]]}', []),
    ('{flip: false}', []),
])
def test_flip_on_warns_naming_the_mirrored_classes_the_map_leaves(tmp_path, caplog, data,
                                                                     warned):
    (tmp_path / 'labels.txt').write_text('\n'.join(MIRRORED) + '\n')
    path = write(tmp_path, f'MODEL: {{num_classes: 6}}\nDATA: {data}\n'
                           f'INFER: {{label_file: {tmp_path / "labels.txt"}}}\n')
    with caplog.at_level('WARNING'):
        load_config(path)
    messages = [r.getMessage() for r in caplog.records if 'DATA.flip is on' in r.getMessage()]
    if not warned:
        assert messages == []
        return
    assert len(messages) == 1
    for i, j in warned:
        assert f"{i} '{MIRRORED[i]}' / {j} '{MIRRORED[j]}'" in messages[0]
    assert messages[0].count(' / ') == len(warned)
    assert 'set DATA.flip_label_map: [[0, 3], [1, 4]]' in messages[0]


STHV2 = open('data/sthv2_labels.txt', encoding='utf-8').read().splitlines()
NAMED = [f'class {i:03d}' for i in range(174)]


@pytest.mark.parametrize('weights, names, problem', [
    ('TEST.weights=sthv2-mit', STHV2, None),
    ('INFER.weights=sthv2-mit-16', STHV2[1:] + STHV2[:1],
     'does not name the classes in the order the weights \'sthv2-mit-16\' output them: use '
     'data/sthv2_labels.txt (lists numbered in its order)'),
    ('TEST.weights=sthv1-mit', NAMED, None),
    ('TEST.weights=sthv1-mit-r101', NAMED[::-1],
     'is not in sorted order, the order the weights \'sthv1-mit-r101\' output the classes '
     'in: write the lists with data/make_lists.py ... --label_order sorted'),
    ('TEST.weights=checkpoints/x/TSM_best', NAMED[::-1], None),  # nothing says its order
])
def test_published_weights_refuse_class_names_in_another_order(tmp_path, weights, names,
                                                               problem):
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join(names) + '\n')
    path = write(tmp_path, f'MODEL: {{num_classes: 174}}\nDATA: {{flip: false}}\n'
                           f'INFER: {{label_file: {labels}}}\n')
    if problem is None:
        load_config(path, [weights])
        return
    with pytest.raises(ConfigError) as err:
        load_config(path, [weights])
    assert str(err.value) == f'{path}: INFER.label_file {labels} {problem}'

def test_class_names_of_a_fine_tuning_are_not_those_of_the_published_start(tmp_path):
    """Fine-tuning the SSv2 model on 5 classes of one's own, in any order: TEST.weights
    still naming the published model is no label-order error (its 174 outputs cannot
    classify these; loading it for them is refused)."""
    labels = tmp_path / 'labels.txt'
    labels.write_text('\n'.join(NAMED[:5][::-1]) + '\n')
    path = write(tmp_path, f'MODEL: {{num_classes: 5}}\nDATA: {{flip: false}}\n'
                           f'INFER: {{label_file: {labels}}}\n')
    cfg = load_config(path, ['TEST.weights=sthv2-mit', 'TRAIN.pretrain=sthv2-mit'])
    assert cfg['TEST']['weights'] == 'sthv2-mit' and cfg['MODEL']['num_classes'] == 5


def test_the_cpu_recipe_is_the_readme_recipe_sized_for_one_process():
    """configs/tsm_finetune_cpu.yaml reads the lists the README's fine-tuning makes, as
    configs/tsm_finetune.yaml does, states its rate for the batch of one process, needs no
    download, and evaluates the weights it trains."""
    cfg, recipe = (load_config(f'configs/{name}.yaml') for name in ('tsm_finetune_cpu',
                                                                     'tsm_finetune'))
    lists = (('DATA', 'data_root'), ('TRAIN', 'filelist'), ('VALID', 'filelist'),
             ('TEST', 'filelist'), ('INFER', 'label_file'))
    assert [cfg[s][k] for s, k in lists] == [recipe[s][k] for s, k in lists]
    train = cfg['TRAIN']
    assert train['lr_reference_batch'] == train['batch_size'] and train['pretrain'] == ''
    best = f"{train['save_dir']}/TSM_best"
    assert cfg['TEST']['weights'] == cfg['INFER']['weights'] == best
