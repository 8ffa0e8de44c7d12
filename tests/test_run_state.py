"""What a run keeps when it is interrupted, and what a user's mistake prints: train.py,
eval.py and predict.py called as their command lines are (cli.run), in this process."""
import json
import os
import re
import socket
import subprocess
import sys

import pytest
import yaml

import eval as evaluation  # the script eval.py, not the builtin
import export
import numpy as np
import paddle
import predict
import prediction
import scoring
import train
from configs import cli
from configs.config import load_config
from models import weights
from tests.tiny import ROOT, make_demo_data, write_tiny_config as write_config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_demo_data(tmp_path_factory.mktemp('runs') / 'data', seed=2)


def run(script, main, *argv):
    """main's exit status as the command line's, with what it logged."""
    with pytest.raises(SystemExit) as exit_:
        cli.run(script, main, list(argv))
    return exit_.value.code


def logged_error(capsys):
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if ' ERROR ' in line]


def test_unwritable_save_dir_stops_before_the_first_step(tmp_path, data, capsys, monkeypatch):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    config = write_config(tmp_path, data, TRAIN={'save_dir': str(blocker / 'run')})
    steps = []
    monkeypatch.setattr(train, 'train_one_epoch', lambda *a: steps.append(a))
    assert run('train', train.main, '--config', config) == 1
    assert steps == []
    errors = logged_error(capsys)
    assert len(errors) == 1 and f'TRAIN.save_dir {blocker / "run"}: cannot write' in errors[0]


HOLD_FOLDER = '''
import os, sys, time
sys.path.insert(0, {root!r})
import outputs
os.makedirs({folder!r}, exist_ok=True)
with outputs.locked({folder!r}, 'TRAIN.save_dir'):
    print('held', flush=True)
    time.sleep(120)
'''


def test_a_second_run_on_a_save_dir_stops_at_start_naming_the_first(tmp_path, data, capsys,
                                                                      monkeypatch):
    config = write_config(tmp_path, data, TRAIN={'epoch': 1})
    save = tmp_path / 'run'
    holder = subprocess.Popen([sys.executable, '-c', HOLD_FOLDER.format(root=ROOT,
                                                                         folder=str(save))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        train_one_epoch, steps = train.train_one_epoch, []
        monkeypatch.setattr(train, 'train_one_epoch', lambda *a: steps.append(a))
        assert run('train', train.main, '--config', config) == 1
        assert steps == []
        errors = logged_error(capsys)
        assert len(errors) == 1 and (f'TRAIN.save_dir {save}: in use by another run (pid '
                                     f'{holder.pid} on {socket.gethostname()})' in errors[0])
    finally:
        holder.kill()  # SIGKILL: nothing of the holder's runs, the OS drops its lock
        holder.wait()
    monkeypatch.setattr(train, 'train_one_epoch', train_one_epoch)
    assert run('train', train.main, '--config', config) == 0
    assert weights.latest(str(save)) == str(save / 'TSM_epoch1')


def test_best_is_chosen_by_validation_alone(tmp_path, data, monkeypatch):
    config = write_config(tmp_path, data, TRAIN={'epoch': 3, 'valid_interval': 2})
    published = []
    write_weights = weights.write_weights

    def recording(folder, model, state=None):
        published.append(state['epoch'])
        write_weights(folder, model, state)
    monkeypatch.setattr(weights, 'write_weights', recording)
    assert run('train', train.main, '--config', config) == 0
    rows = json.loads((tmp_path / 'run/train_log.json').read_text())
    validated = [r['epoch'] for r in rows if 'valid_top1' in r]
    assert validated == [2, 3]  # every valid_interval-th epoch, and the last
    assert published and set(published) <= set(validated)
    best = weights.read_state(str(tmp_path / 'run' / 'TSM_best'))
    assert best['best_top1'] == max(r['valid_top1'] for r in rows if 'valid_top1' in r)


def test_a_kill_after_the_checkpoint_loses_no_log_row(tmp_path, data, monkeypatch, capsys):
    config = write_config(tmp_path, data, TRAIN={'epoch': 3})
    write_logs = train.write_logs

    def killed_at_epoch_1(save_dir, rows):
        if rows[-1]['epoch'] == 2:
            raise KeyboardInterrupt  # after TSM_epoch2 is published, before its log row
        write_logs(save_dir, rows)
    monkeypatch.setattr(train, 'write_logs', killed_at_epoch_1)
    assert run('train', train.main, '--config', config) == 130
    assert [r['epoch'] for r in json.loads((tmp_path / 'run/train_log.json').read_text())
            ] == [1]
    monkeypatch.setattr(train, 'write_logs', write_logs)
    assert run('train', train.main, '--config', config, '--resume', 'latest') == 0
    assert 'resumed from' in capsys.readouterr().err
    rows = json.loads((tmp_path / 'run/train_log.json').read_text())
    assert [r['epoch'] for r in rows] == [1, 2, 3]
    csv_rows = (tmp_path / 'run/train_log.csv').read_text().splitlines()
    assert [line.split(',')[0] for line in csv_rows] == ['epoch', '1', '2', '3']


def _to_earlier_layout(save):
    """Rewrite the run folder `save` as the earlier layout had it: epochs from 0 in the
    folder names and in every state.json, which carries no mark of its numbering."""
    for name in sorted(os.listdir(save)):
        path = save / name
        if not (path / 'state.json').exists():
            continue
        state = json.loads((path / 'state.json').read_text())
        del state['epochs_from_one']
        state['epoch'] -= 1
        state['best_epoch'] -= 1
        state['log'] = [dict(row, epoch=row['epoch'] - 1) for row in state['log']]
        (path / 'state.json').write_text(json.dumps(state))
        if name.startswith('TSM_epoch'):
            os.rename(path, save / f"TSM_epoch{int(name[len('TSM_epoch'):]) - 1}")


def test_a_run_of_the_earlier_layout_resumes_from_the_folder_named(tmp_path, data, capsys):
    """--resume names a folder of the earlier layout (TSM_epoch0: the first epoch); the start
    renames the folders (epochs from 1) and resumes from that same checkpoint."""
    config = write_config(tmp_path, data, TRAIN={'epoch': 2})
    assert run('train', train.main, '--config', config) == 0
    save = tmp_path / 'run'
    first_epoch = model_weights(save / 'TSM_epoch1')
    _to_earlier_layout(save)
    assert sorted(n for n in os.listdir(save) if n.startswith('TSM')) == [
        'TSM_best', 'TSM_epoch0', 'TSM_epoch1']
    capsys.readouterr()
    assert run('train', train.main, '--config', config, '--resume', str(save / 'TSM_epoch0'),
               '--epoch', '3') == 0
    assert f"resumed from {save / 'TSM_epoch1'} after epoch 1" in capsys.readouterr().err
    assert sorted(n for n in os.listdir(save) if n.startswith('TSM')) == [
        'TSM_best', 'TSM_epoch1', 'TSM_epoch2', 'TSM_epoch3']
    assert all(np.array_equal(first_epoch[k], v)
               for k, v in model_weights(save / 'TSM_epoch1').items())
    assert [r['epoch'] for r in json.loads((save / 'train_log.json').read_text())] == [1, 2, 3]


def test_resume_errors_and_nothing_left(tmp_path, data, capsys):
    config = write_config(tmp_path, data, TRAIN={'valid_interval': 0})
    assert run('train', train.main, '--config', config, '--resume', 'latest') == 1
    assert 'no complete checkpoint (TSM_epochN) to resume from' in logged_error(capsys)[0]
    assert run('train', train.main, '--config', config) == 0
    capsys.readouterr()
    assert not (tmp_path / 'run' / 'TSM_best').exists()  # no validation, no best
    os.rename(tmp_path / 'run/TSM_epoch2', tmp_path / 'run/.TSM_epoch2.tmp-9')  # a killed write
    assert run('train', train.main, '--config', config, '--resume',
               str(tmp_path / 'run/TSM_epoch2')) == 1
    errors = logged_error(capsys)
    assert len(errors) == 1 and 'TSM_epoch2: not a complete checkpoint' in errors[0]
    assert f'the last complete epoch there is 1: {tmp_path / "run/TSM_epoch1"}' in errors[0]
    assert run('train', train.main, '--config', config, '--resume', 'latest',
               '--epoch', '1') == 0
    assert 'nothing left to train: the checkpoint is of epoch 1 and TRAIN.epoch is 1' \
        in capsys.readouterr().err
    assert not (tmp_path / 'run/.TSM_epoch2.tmp-9').exists()  # cleaned at the start


def test_user_errors_print_one_line_without_a_traceback(tmp_path, data, capsys):
    bad_list = tmp_path / 'bad.list'
    bad_list.write_text('a.mp4 0\nb.mp4 zero\n')
    config = write_config(tmp_path, data, TRAIN={'filelist': str(bad_list)})
    assert run('train', train.main, '--config', config) == 1
    errors = logged_error(capsys)
    assert len(errors) == 1 and f'{bad_list}:2: expected "path label"' in errors[0]

    missing = tmp_path / 'missing.list'
    # 6 lines, 2 batches of 3: every item is read, whatever the order
    missing.write_text(''.join(open(data / 'train.list').readlines()[:5]) +
                       'no_such_video.mp4 1\n')
    config = write_config(tmp_path, data, TRAIN={'filelist': str(missing), 'epoch': 1},
                          DATA={'max_failure_ratio': 0.0})
    assert run('train', train.main, '--config', config) == 1
    errors = logged_error(capsys)
    assert 'DATA.max_failure_ratio' in errors[-1] and 'could not be decoded' in errors[-1]

    config = write_config(tmp_path, data)
    assert run('eval', evaluation.main, '--config', config, '--weights',
               str(tmp_path / 'nothing_here')) == 1
    errors = logged_error(capsys)
    assert len(errors) == 1
    assert f"weights '{tmp_path / 'nothing_here'}': no such file or folder" in errors[0]


def closed_port_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{s.getsockname()[1]}/w.pdparams'


def test_download_failure_is_one_message(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(tmp_path / 'cache'))
    config = write_config(tmp_path, data)
    url = closed_port_url()
    assert run('eval', evaluation.main, '--config', config, '--weights', url) == 1
    err = capsys.readouterr().err
    assert 'could not download w.pdparams' in err and url in err and 'Traceback' not in err
    folder = closed_port_url().rsplit('/', 1)[0] + '/'
    assert run('eval', evaluation.main, '--config', config, '--weights', folder) == 1
    errors = logged_error(capsys)
    assert len(errors) == 1 and f'the URL {folder} names no file' in errors[0]


def test_pretrain_that_cannot_download_names_the_ways_on(tmp_path, data, capsys,
                                                        monkeypatch):
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(tmp_path / 'cache'))
    monkeypatch.setattr(weights.download.time, 'sleep', lambda seconds: None)
    url = closed_port_url()
    config = write_config(tmp_path, data, TRAIN={'pretrain': url})
    assert run('train', train.main, '--config', config) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err and f'{url}: cannot connect' in err
    ways = [line for line in err.splitlines() if "--pretrain ''" in line]
    assert len(ways) == 1
    assert "-o TRAIN.pretrain=''" in ways[0] and 'TSM_best' in ways[0]
    assert 'ImageNet ResNet-18 file' in ways[0]  # the configured depth
    assert not os.path.exists(tmp_path / 'run' / 'TSM_epoch1')


def test_the_ways_on_name_a_start_of_the_backbone():
    from models import TSM
    for backbone, words in (('resnet', 'ImageNet ResNet-18 file'),
                            ('mobilenet_v2', 'a MobileNetV2 TSM file'),
                            ('pplcnet_v2', 'a PP-TSMv2 or PaddleClas PP-LCNetV2 .pdparams')):
        depth = 18 if backbone == 'resnet' else 50
        ways = weights.other_starts(TSM(num_classes=3, seg_num=2, depth=depth,
                                        backbone=backbone))
        assert words in ways and ('ResNet' in ways) == (backbone == 'resnet')


def test_predict_checks_the_video_before_fetching_weights(tmp_path, data, capsys,
                                                          monkeypatch):
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(tmp_path / 'cache'))
    config = write_config(tmp_path, data)
    fetched = []
    monkeypatch.setattr(weights.published, 'fetch', lambda *a, **k: fetched.append(a))
    assert run('predict', predict.main, '--config', config, '--video_path',
               str(tmp_path / 'nope.mp4'), '--weights', closed_port_url()) == 1
    assert fetched == []
    assert f'--video_path {tmp_path / "nope.mp4"}: no such video file' in \
        logged_error(capsys)[0]


def test_interrupted_predict_keeps_the_videos_done(tmp_path, data, monkeypatch):
    config = write_config(tmp_path, data, TRAIN={'epoch': 1, 'valid_interval': 1})
    assert run('train', train.main, '--config', config) == 0
    videos = [line.split()[0] for line in open(data / 'val.list')]
    listing = tmp_path / 'predict.list'
    listing.write_text(''.join(f'{data / v}\n' for v in videos))
    view_scores = prediction.view_scores
    calls = []

    def interrupted_at_the_fourth(model, clips, *average):
        calls.append(clips)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return view_scores(model, clips, *average)
    monkeypatch.setattr(prediction, 'view_scores', interrupted_at_the_fourth)
    assert run('predict', predict.main, '--config', config, '--filelist', str(listing),
               '-o', 'INFER.batch_size=1') == 130
    out = tmp_path / 'predict'
    whole = json.loads((out / 'TSM_predict.json').read_text())
    assert whole['interrupted'] is True
    assert [p['video'] for p in whole['predictions']] == [str(data / v) for v in videos[:3]]
    lines = [json.loads(line) for line in (out / 'TSM_predict.jsonl').read_text().splitlines()]
    assert lines == whole['predictions']


def test_class_count_is_checked_against_the_label_file_at_start(tmp_path, data, capsys,
                                                                 monkeypatch):
    labels = tmp_path / 'labels.txt'
    labels.write_text('a\nb\nc\n')
    config = write_config(tmp_path, data, INFER={'label_file': str(labels)})
    steps = []
    monkeypatch.setattr(train, 'train_one_epoch', lambda *a: steps.append(a))
    assert run('train', train.main, '--config', config) == 1
    assert steps == []
    assert (f'INFER.label_file {labels} has 3 names but MODEL.num_classes is 6'
            in logged_error(capsys)[0])


def model_weights(folder):
    return {k: v.numpy() for k, v in paddle.load(str(folder / 'model.pdparams')).items()}


def test_a_diverged_run_stops_at_the_first_non_finite_loss(tmp_path, data, capsys):
    config = write_config(tmp_path, data, TRAIN={'epoch': 1})
    assert run('train', train.main, '--config', config) == 0
    save = tmp_path / 'run'
    saved = {name: model_weights(save / name) for name in ('TSM_epoch1', 'TSM_best')}
    capsys.readouterr()
    assert run('train', train.main, '--config', config, '--resume', 'latest', '--epoch', '3',
               '--learning_rate', '1.0e+30') == 1
    errors = logged_error(capsys)
    assert len(errors) == 1, errors
    # the clipped loss of the second step is finite, the weights it leaves are not
    assert 'epoch 2 step 2/2: conv1.weight is NaN or infinite after the update (loss ' \
        in errors[0]
    assert 'the run diverged; likely a learning rate too high (TRAIN.learning_rate 1e+30' \
        in errors[0]
    # nothing of the diverged epoch is saved; the last finite checkpoint and best are kept
    assert sorted(n for n in os.listdir(save) if n.startswith('TSM')) == ['TSM_best',
                                                                          'TSM_epoch1']
    assert [r['epoch'] for r in json.loads((save / 'train_log.json').read_text())] == [1]
    for name, arrays in saved.items():
        for key, value in model_weights(save / name).items():
            assert np.isfinite(value).all() and np.array_equal(value, arrays[key]), key


def trained_config(tmp_path, data, **sections):
    """The config of a one-epoch run whose TSM_best the TEST and INFER sections name."""
    config = write_config(tmp_path, data, TRAIN={'epoch': 1}, **sections)
    assert run('train', train.main, '--config', config) == 0
    return config


def altered_weights(tmp_path, key, value):
    """A copy of the run's TSM_best with one entry of its state dict set to `value`."""
    model = train.TSM(num_classes=6, seg_num=2, depth=18)
    weights.load_for_inference(model, str(tmp_path / 'run' / 'TSM_best'))
    state = model.state_dict()
    state[key].set_value(paddle.full(state[key].shape, value, 'float32'))
    folder = str(tmp_path / f'altered_{key}')
    weights.write_weights(folder, model)
    return folder


def test_non_finite_weights_are_refused_at_load(tmp_path, data, capsys):
    config = trained_config(tmp_path, data)
    nan = altered_weights(tmp_path, 'fc.weight', float('nan'))
    video = str(data / open(data / 'val.list').readline().split()[0])
    capsys.readouterr()
    for script, main, flags in [
            ('eval', evaluation.main, ['--weights', nan, '--dynamic']),
            ('predict', predict.main, ['--weights', nan, '--video_path', video, '--dynamic']),
            ('export', export.main, ['--weights', nan, '--save_dir', str(tmp_path / 'ex')])]:
        assert run(script, main, '--config', config, *flags) == 1, script
        errors = logged_error(capsys)
        assert len(errors) == 1 and 'fc.weight holds NaN or infinity' in errors[0], script
    assert not (tmp_path / 'eval' / 'TSM_eval.json').exists()
    assert not os.path.exists(tmp_path / 'ex' / 'TSM.pdiparams')


def test_non_finite_scores_are_refused_not_written(tmp_path, data, capsys):
    config = trained_config(tmp_path, data)
    # finite weights that give NaN: logits overflowing to infinity, their softmax
    broken = altered_weights(tmp_path, 'fc.weight', 3.0e38)
    video = str(data / open(data / 'val.list').readline().split()[0])
    capsys.readouterr()
    assert run('predict', predict.main, '--config', config, '--weights', broken,
               '--video_path', video, '--dynamic') == 1
    errors = logged_error(capsys)
    assert len(errors) == 1 and f'{video}: 6 of the 6 scores the model gave are NaN or ' \
                                f'infinite' in errors[0]
    assert json.loads((tmp_path / 'predict' / 'TSM_predict.json').read_text())[
        'predictions'] == []
    assert run('eval', evaluation.main, '--config', config, '--weights', broken,
               '--dynamic') == 1
    errors = logged_error(capsys)
    assert len(errors) == 1 and 'evaluation: 36 of the 36 scores' in errors[0]
    assert not (tmp_path / 'eval' / 'TSM_eval.json').exists()


def test_unwritable_outputs_stop_before_any_model_or_video(tmp_path, data, capsys,
                                                           monkeypatch):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    config = write_config(tmp_path, data)
    video = str(data / open(data / 'val.list').readline().split()[0])
    loaded = []
    for module in (evaluation, predict):
        monkeypatch.setattr(module, 'model_for', lambda *a, **k: loaded.append(a))
    monkeypatch.setattr(export, 'load_for_inference', lambda *a, **k: loaded.append(a))
    monkeypatch.setattr(predict, 'open_video', lambda *a, **k: loaded.append(a))
    for script, main, flags, named in [
            ('eval', evaluation.main, ['--save_dir', str(blocker / 'eval')],
             f'TEST.save_dir {blocker / "eval"}: cannot write there'),
            ('predict', predict.main, ['--save_dir', str(blocker / 'p'), '--video_path', video],
             f'INFER.save_dir {blocker / "p"}: cannot write there'),
            ('predict', predict.main, ['--video_path', video, '--window', '1',
                                       '--annotate', str(blocker / 'out.mp4')],
             f'--annotate {blocker / "out.mp4"}: cannot write there'),
            ('predict', predict.main, ['--video_path', video, '--window', '1',
                                       '--annotate', str(tmp_path)],
             f'--annotate {tmp_path}: a folder, expected the name of a file'),
            ('export', export.main, ['--save_dir', str(blocker / 'export')],
             f'--save_dir {blocker / "export"}: cannot write there')]:
        assert run(script, main, '--config', config, *flags) == 1, named
        errors = logged_error(capsys)
        assert len(errors) == 1 and named in errors[0], errors
    assert loaded == []


def test_a_full_disk_during_predict_is_one_line_and_keeps_the_predictions(tmp_path, data,
                                                                         capsys):
    config = trained_config(tmp_path, data)
    out = tmp_path / 'predict'
    out.mkdir()
    os.symlink('/dev/full', out / 'TSM_predict.jsonl')  # every write: ENOSPC
    videos = [str(data / line.split()[0]) for line in open(data / 'val.list')]
    listing = tmp_path / 'predict.list'
    listing.write_text(''.join(f'{v}\n' for v in videos))
    capsys.readouterr()
    assert run('predict', predict.main, '--config', config, '--filelist', str(listing),
               '-o', 'INFER.batch_size=1', '--dynamic') == 1
    errors = logged_error(capsys)
    assert len(errors) == 1
    assert f'{out / "TSM_predict.jsonl"}: cannot write (No space left on device)' in errors[0]
    whole = json.loads((out / 'TSM_predict.json').read_text())
    assert whole['interrupted'] is True
    assert [p['video'] for p in whole['predictions']] == videos[:1]
    # the timeline is written under a temporary name first: that write finds the disk full
    os.symlink('/dev/full', out / f'.TSM_timeline.json.tmp-{os.getpid()}')
    assert run('predict', predict.main, '--config', config, '--video_path', videos[0],
               '--window', '0.5', '--dynamic', '--no_plots') == 1
    errors = logged_error(capsys)
    assert len(errors) == 1
    assert f'{out / "TSM_timeline.json"}: cannot write (No space left on device)' in errors[0]
    assert not os.path.exists(out / 'TSM_timeline.json')  # no half file in its place


def test_a_run_folder_holds_its_config_and_a_log_continued_by_a_resume(tmp_path, data):
    config = write_config(tmp_path, data, DATA={'short_size': 40, 'target_size': 36},
                          TRAIN={'epoch': 1})
    assert run('train', train.main, '--config', config, '-o', 'MODEL.dropout=0.25') == 0
    folder = tmp_path / 'run'
    written = load_config(str(folder / 'config.yaml'))
    assert written == load_config(config, ['MODEL.dropout=0.25'])
    first = (folder / 'train.log').read_text()
    assert re.search(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO epoch 1/1  loss ', first,
                     re.MULTILINE)
    assert 'trained epoch 1 in' in first
    state = weights.read_state(str(folder / 'TSM_best'))
    assert state['input'] == {'short_size': 40, 'target_size': 36,
                              'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225],
                              'resize': 'cv2'}
    assert run('train', train.main, '--config', config, '--resume', 'latest',
               '--epoch', '2') == 0
    log = (folder / 'train.log').read_text()
    assert log.startswith(first) and 'resumed from' in log[len(first):]
    assert 'INFO epoch 2/2' in log[len(first):]


def fed_clips(monkeypatch, setting):
    """[(the model's `setting`, clip shape after the views)] of every batch eval and predict
    score from here on."""
    fed = []
    view_scores = scoring.view_scores

    def recording(model, clips, *average):
        fed.append((model.settings[setting], tuple(clips.shape[2:])))
        return view_scores(model, clips, *average)
    monkeypatch.setattr(scoring, 'view_scores', recording)
    monkeypatch.setattr(predict, 'view_scores', recording)
    monkeypatch.setattr(prediction, 'view_scores', recording)
    return fed


def test_eval_of_a_run_takes_its_recorded_settings(tmp_path, data, monkeypatch, capsys):
    trained = write_config(tmp_path, data, DATA={'short_size': 40, 'target_size': 36},
                           TRAIN={'epoch': 1})
    assert run('train', train.main, '--config', trained) == 0
    # a config that says where the videos are, and nothing of the model or its input
    config = tmp_path / 'lists.yaml'
    config.write_text(yaml.safe_dump({
        'DATA': {'data_root': str(data), 'num_workers': 0, 'flip': False},
        'TEST': {'filelist': str(data / 'val.list'), 'batch_size': 3,
                 'save_dir': str(tmp_path / 'eval')},
        'INFER': {'label_file': str(data / 'labels.txt')}}))
    fed = fed_clips(monkeypatch, 'seg_num')
    base = ['--config', str(config), '--weights', str(tmp_path / 'run'), '--dynamic',
            '--no_plots']
    capsys.readouterr()
    assert run('eval', evaluation.main, *base) == 0
    assert set(fed) == {(2, (2, 3, 36, 36))}
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'run' / 'TSM_best'}: took its recorded MODEL.depth=18, "
            f"MODEL.num_classes=6, MODEL.seg_num=2, DATA.short_size=40, DATA.target_size=36 "
            f"(the config and overrides leave them unset)") in err

    fed.clear()  # an explicit value wins, and its difference is named with both values
    assert run('eval', evaluation.main, *base, '-o', 'DATA.target_size=32') == 0
    assert set(fed) == {(2, (2, 3, 32, 32))}
    warnings = [line for line in capsys.readouterr().err.splitlines() if 'WARNING' in line]
    assert any("override 'DATA.target_size=32': DATA.target_size 32, but" in line
               and 'made with 36' in line for line in warnings)

    fed.clear()  # one that changes what the weights compute is refused
    assert run('eval', evaluation.main, *base, '-o', 'MODEL.seg_num=4') == 1
    errors = logged_error(capsys)
    assert fed == [] and len(errors) == 1
    assert "override 'MODEL.seg_num=4': MODEL.seg_num 4, but" in errors[0]
    assert 'was trained with 2' in errors[0]

    video = str(data / (data / 'val.list').read_text().split()[0])
    assert run('predict', predict.main, '--config', str(config), '--weights',
               str(tmp_path / 'run'), '--dynamic', '--video_path', video, '-o',
               f'INFER.save_dir={tmp_path / "predict"}') == 0
    assert fed == [(2, (2, 3, 36, 36))]


def test_the_cpu_recipe_trains_offline_and_its_run_evaluates_without_overrides(
        tmp_path, data, monkeypatch):
    """configs/tsm_finetune_cpu.yaml as the README runs it, for one epoch on a few small
    videos: nothing is downloaded, and the run's config.yaml and folder are all that eval
    needs."""
    def no_download(*args, **kwargs):
        raise AssertionError('the CPU recipe downloads nothing')
    monkeypatch.setattr(weights.published, 'fetch', no_download)
    folder = tmp_path / 'run'
    where = {'MODEL.num_classes': 6, 'DATA.data_root': data, 'DATA.flip': 'false',
             'DATA.num_workers': 0, 'TRAIN.filelist': data / 'train.list',
             'VALID.filelist': data / 'val.list', 'TEST.filelist': data / 'val.list',
             'INFER.label_file': data / 'labels.txt', 'TRAIN.save_dir': folder,
             'TEST.save_dir': tmp_path / 'eval', 'TRAIN.epoch': 1, 'TRAIN.batch_size': 6}
    flags = [item for key, value in where.items() for item in ('-o', f'{key}={value}')]
    assert run('train', train.main, '--config', 'configs/tsm_finetune_cpu.yaml', *flags) == 0
    fed = fed_clips(monkeypatch, 'depth')
    assert run('eval', evaluation.main, '--config', str(folder / 'config.yaml'), '--weights',
               str(folder), '--dynamic', '--no_plots') == 0
    assert set(fed) == {(18, (4, 3, 112, 112))}


@pytest.mark.parametrize('shift_mode, name', [('none', 'TSN'), ('online', 'TSM_online')])
def test_checkpoints_are_named_by_the_model(tmp_path, data, capsys, shift_mode, name):
    """A TSN run writes TSN_epochN and TSN_best, an online one TSM_online_*; eval of the run
    folder finds its best weights."""
    run_folder = str(tmp_path / 'run')
    config = write_config(tmp_path, data, MODEL={'shift_mode': shift_mode},
                          TRAIN={'epoch': 1}, TEST={'weights': run_folder})
    assert run('train', train.main, '--config', config) == 0
    assert sorted(n for n in os.listdir(run_folder) if n.startswith('TS')) == [
        f'{name}_best', f'{name}_epoch1']
    assert f"best weights     {tmp_path / 'run' / name}_best" in capsys.readouterr().err
    assert run('eval', evaluation.main, '--config', config, '--dynamic') == 0
    assert f'TEST.weights {run_folder}: a run folder, so its {name}_best' in \
        capsys.readouterr().err
