"""Checkpoint folders: round trip, atomic publishing under kill -9, stale files, recorded
MODEL settings, and weight files that cannot run code."""
import json
import logging
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import paddle
import pytest

from models import TSM
from models import weights
from models.weights import (CheckpointError, WeightsError, checkpoint, clean_stale,
                            load_for_inference, load_for_training, read_state, resume,
                            write_checkpoint, write_weights)
from models.weights import unpickle

from tests.commands import ROOT

BEST = 'TSM_best'


def tiny(num_classes=5, depth=18, seed=0, **settings):
    paddle.seed(seed)
    model = TSM(num_classes=num_classes, seg_num=2, depth=depth, dropout=0.0, **settings)
    model.eval()
    return model


def clip(seed=0):
    x = np.random.RandomState(seed).randn(2, 2, 3, 32, 32)
    return paddle.to_tensor(x.astype('float32'))


def train_steps(model, optimizer, steps, seed):
    model.train()
    for i in range(steps):
        loss = paddle.nn.functional.cross_entropy(
            model(clip(seed + i)), paddle.to_tensor([1, 4]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    model.eval()


def momentum(model):
    return paddle.optimizer.Momentum(learning_rate=0.1, momentum=0.9,
                                     parameters=model.parameters())


def velocities(model, optimizer):
    """Momentum velocity per structured parameter name."""
    names = {p.name: n for n, p in model.named_parameters()}
    return {names[k.rsplit('_velocity', 1)[0]]: v.numpy()
            for k, v in optimizer.state_dict().items() if '_velocity' in k}


def test_weights_folder_round_trip_gives_identical_outputs(tmp_path):
    source = tiny(seed=0)
    folder = str(tmp_path / 'run' / BEST)
    write_weights(folder, source, {'epoch': 3, 'best_top1': 0.25})
    assert sorted(os.listdir(folder)) == ['model.pdparams', 'state.json']
    assert sorted(os.listdir(tmp_path / 'run')) == [BEST]  # no temporary left
    state = read_state(folder)
    assert state['epoch'] == 3 and state['model'] == source.settings
    target = tiny(seed=1)
    assert not np.array_equal(source(clip()).numpy(), target(clip()).numpy())
    load_for_inference(target, folder)
    assert np.array_equal(source(clip()).numpy(), target(clip()).numpy())
    # the weights file alone, named inside its folder, is checked against the same record
    other = tiny(seed=2)
    load_for_inference(other, os.path.join(folder, 'model.pdparams'))
    assert np.array_equal(source(clip()).numpy(), other(clip()).numpy())


def test_replacing_a_folder_keeps_one_whole_copy(tmp_path):
    folder = str(tmp_path / BEST)
    write_weights(folder, tiny(seed=0), {'epoch': 0})
    write_weights(folder, tiny(seed=1), {'epoch': 4})
    assert read_state(folder)['epoch'] == 4
    assert sorted(os.listdir(tmp_path)) == [BEST]


def test_resume_restores_weights_optimizer_and_state(tmp_path):
    first = tiny(seed=0)
    first_opt = momentum(first)
    train_steps(first, first_opt, 2, seed=10)
    folder = str(tmp_path / 'TSM_epoch1')
    write_checkpoint(folder, first, first_opt, {'epoch': 1, 'best_top1': 0.5, 'log': []})
    saved = paddle.load(os.path.join(folder, 'optimizer.pdopt'))
    assert 'layer1.0.conv1.weight/velocity' in saved

    resumed = tiny(seed=5)
    resumed_opt = momentum(resumed)
    state = resume(folder, resumed, resumed_opt)
    assert state['epoch'] == 1 and state['best_top1'] == 0.5
    # One more identical step: parameters agree only if the velocities were restored
    # (a zero velocity gives a different update).
    train_steps(first, first_opt, 1, seed=20)
    train_steps(resumed, resumed_opt, 1, seed=20)
    for (name, a), b in zip(first.named_parameters(), resumed.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6, err_msg=name)
    first_velocity = velocities(first, first_opt)
    assert len(first_velocity) == 62
    resumed_velocity = velocities(resumed, resumed_opt)
    assert sorted(resumed_velocity) == sorted(first_velocity)
    for name, value in first_velocity.items():
        np.testing.assert_allclose(resumed_velocity[name], value, rtol=0, atol=1e-6,
                                   err_msg=name)


def test_resume_refuses_a_weights_folder_and_other_settings(tmp_path):
    model = tiny()
    write_weights(str(tmp_path / BEST), model, {'epoch': 0})
    write_checkpoint(str(tmp_path / 'TSM_epoch0'), model, momentum(model), {'epoch': 0})
    with pytest.raises(CheckpointError, match='no optimizer.pdopt'):
        resume(str(tmp_path / BEST), tiny(), momentum(tiny()))
    other = tiny(shift_mode='online')
    with pytest.raises(WeightsError, match="MODEL.shift_mode: model 'online', weights "
                                           "trained with 'bidirectional'"):
        resume(str(tmp_path / 'TSM_epoch0'), other, momentum(other))


KILL_DURING_WRITE = '''
import os, signal, sys
sys.path.insert(0, {root!r})
from models import TSM  # first: it loads numpy.random before paddle (Paddle 2.6)
import paddle
from models.weights import checkpoint
model = TSM(num_classes=3, seg_num=2, depth=18)
opt = paddle.optimizer.Momentum(learning_rate=0.1, parameters=model.parameters())
checkpoint.write_checkpoint({first!r}, model, opt, {{'epoch': 2}})
flushed = checkpoint._flushed
def killing(path):
    flushed(path)
    if path.endswith({part!r}):
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint._flushed = killing
checkpoint.write_checkpoint({second!r}, model, opt, {{'epoch': 3}})
'''


@pytest.mark.parametrize('part', ['model.pdparams', 'optimizer.pdopt'])
def test_kill_during_a_checkpoint_leaves_no_partial_one(tmp_path, part):
    first, second = str(tmp_path / 'TSM_epoch2'), str(tmp_path / 'TSM_epoch3')
    code = KILL_DURING_WRITE.format(root=ROOT, first=first, second=second, part=part)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = sorted(os.listdir(tmp_path))
    assert left[0].startswith('.TSM_epoch3.tmp-') and left[1:] == ['TSM_epoch2']
    with pytest.raises(CheckpointError) as err:
        read_state(second)
    assert f'the last complete epoch there is 2: {first}' in str(err.value)
    assert weights.latest(str(tmp_path)) == first
    assert clean_stale(str(tmp_path)) == [left[0]]
    assert sorted(os.listdir(tmp_path)) == ['TSM_epoch2']


KILL_DURING_PUBLISH = '''
import os, signal, sys
sys.path.insert(0, {root!r})
import train  # first: it loads numpy.random before paddle (Paddle 2.6)
import paddle
from models import TSM
from models.weights import checkpoint
paddle.seed(0)
model = TSM(num_classes=3, seg_num=2, depth=18)
opt = paddle.optimizer.Momentum(learning_rate=0.1, parameters=model.parameters())
rows = [{{'epoch': 0, 'valid_top1': 0.5}}]
train.publish({save!r}, 'TSM', 0, model, opt, rows, train.Best(0.5, 0), 1)
for p in model.parameters():  # epoch 1's weights, the better ones
    p.set_value(p + 1)
paddle.save(model.state_dict(), {want!r})

def killing(call, argument):
    def killed(*args):
        call(*args)
        if {marker!r} in args[argument]:
            os.kill(os.getpid(), signal.SIGKILL)
    return killed
if {where!r} in ('rename', 'replace'):
    setattr(os, {where!r}, killing(getattr(os, {where!r}), 1))
else:
    checkpoint._flushed = killing(checkpoint._flushed, 0)
rows.append({{'epoch': 1, 'valid_top1': 0.75}})
train.publish({save!r}, 'TSM', 1, model, opt, rows, train.Best(0.75, 1), 1)
'''


@pytest.mark.parametrize('where, marker', [
    ('rename', '/TSM_epoch1'),    # the epoch published, its log row and TSM_best not
    ('replace', '/train_log.csv'),  # the logs rewritten, TSM_best not
    ('flush', '.TSM_best.tmp'),   # TSM_best half written
    ('rename', '.TSM_best.old'),  # the old TSM_best moved aside, the new one not in place
])
def test_a_kill_while_publishing_leaves_best_what_the_log_calls_best(tmp_path, where, marker):
    """keep_checkpoints 1: the next epoch removes TSM_epoch1, which a kill may have left the
    only copy of the best weights; the start of the next run puts them into TSM_best."""
    import train
    save, want = str(tmp_path / 'run'), str(tmp_path / 'epoch1.pdparams')
    code = KILL_DURING_PUBLISH.format(root=ROOT, save=save, want=want, where=where,
                                      marker=marker)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with train.held_save_dir(save, 'TSM'):  # the start of the next run
        state = read_state(weights.latest(save))
        assert state['epoch'] == 1
        train.publish(save, 'TSM', 2, tiny(num_classes=3), None, state['log'] + [{'epoch': 2}],
                      train.Best(state['best_top1'], weights.best_epoch(state)), 1)
    log = json.loads(open(os.path.join(save, 'train_log.json')).read())
    best = max((r for r in log if 'valid_top1' in r), key=lambda r: r['valid_top1'])
    assert best['epoch'] == 1 and read_state(os.path.join(save, BEST))['epoch'] == 1
    held = paddle.load(os.path.join(save, BEST, 'model.pdparams'))
    for name, value in paddle.load(want).items():
        np.testing.assert_array_equal(held[name].numpy(), value.numpy(), err_msg=name)
    assert sorted(n for n in os.listdir(save) if n.startswith('TSM')) == [BEST, 'TSM_epoch2']


def test_prune_keeps_the_best_epoch_until_best_holds_it(tmp_path):
    model = tiny()
    for epoch in range(3):
        write_checkpoint(weights.epoch_dir(str(tmp_path), epoch), model, None,
                         {'epoch': epoch})
    write_weights(str(tmp_path / BEST), model, {'epoch': 0})
    weights.prune(str(tmp_path), 1, best=1)
    assert sorted(os.listdir(tmp_path)) == [BEST, 'TSM_epoch1', 'TSM_epoch2']
    weights.sync_best(str(tmp_path), 1)
    assert read_state(str(tmp_path / BEST))['epoch'] == 1
    weights.prune(str(tmp_path), 1, best=1)
    assert sorted(os.listdir(tmp_path)) == [BEST, 'TSM_epoch2']


def test_clean_stale_puts_back_a_folder_moved_aside(tmp_path, caplog):
    write_weights(str(tmp_path / BEST), tiny(), {'epoch': 1})
    # a kill between moving the old TSM_best aside and renaming the new one into place
    os.rename(tmp_path / BEST, tmp_path / f'.{BEST}.old-123')
    (tmp_path / f'.{BEST}.tmp-123').mkdir()
    (tmp_path / 'TSM_epoch0.pdparams.tmp77').write_text('partial')  # the earlier layout's
    with caplog.at_level(logging.INFO):
        removed = clean_stale(str(tmp_path))
    assert removed == [f'.{BEST}.tmp-123', 'TSM_epoch0.pdparams.tmp77']
    assert sorted(os.listdir(tmp_path)) == [BEST] and read_state(str(tmp_path / BEST))
    assert f'restored {BEST}' in caplog.text


def test_prune_keeps_the_newest_epochs(tmp_path):
    model = tiny()
    for epoch in range(5):
        write_checkpoint(weights.epoch_dir(str(tmp_path), epoch), model, None,
                         {'epoch': epoch})
    write_weights(str(tmp_path / BEST), model, {'epoch': 1})
    weights.prune(str(tmp_path), 2)
    assert sorted(os.listdir(tmp_path)) == [BEST, 'TSM_epoch3', 'TSM_epoch4']
    weights.prune(str(tmp_path), 0)  # 0 keeps all
    assert sorted(os.listdir(tmp_path)) == [BEST, 'TSM_epoch3', 'TSM_epoch4']


@pytest.mark.parametrize('change, key', [({'seg_num': 4}, 'seg_num'),
                                         ({'shift_mode': 'none'}, 'shift_mode'),
                                         ({'shift_ratio': 0.25}, 'shift_ratio'),
                                         ({'shift_every': 2}, 'shift_every')])
def test_recorded_settings_that_change_the_computation_are_refused(tmp_path, change, key,
                                                                     caplog):
    folder = str(tmp_path / BEST)
    trained = TSM(num_classes=5, seg_num=8, depth=18)
    write_weights(folder, trained)
    settings = dict(trained.settings, **change)
    with pytest.raises(WeightsError) as err:
        load_for_inference(TSM(**settings), folder)
    assert f'MODEL.{key}: model {change[key]!r}, weights trained with ' \
           f'{trained.settings[key]!r}' in str(err.value)
    with caplog.at_level(logging.WARNING):  # fine-tuning may change them on purpose
        load_for_training(TSM(**settings), folder)
    assert f'MODEL.{key}' in caplog.text


def test_dropout_may_differ(tmp_path):
    folder = str(tmp_path / BEST)
    write_weights(folder, TSM(num_classes=5, seg_num=8, depth=18, dropout=0.5))
    load_for_inference(TSM(num_classes=5, seg_num=8, depth=18, dropout=0.0), folder)


def test_published_settings_are_checked_before_any_download(monkeypatch):
    requested = []
    monkeypatch.setattr(weights.published, 'fetch', lambda *a, **k: requested.append(a))
    model = TSM(num_classes=400, seg_num=4, depth=50)
    with pytest.raises(WeightsError, match="'kinetics400'.*MODEL.seg_num: model 4, weights "
                                           "trained with 8"):
        load_for_inference(model, 'kinetics400')
    assert requested == []


class _WritesMarker:
    """Unpickling this calls open(marker, 'w'): what a malicious weight file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_a_weight_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    model = tiny()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state['fc.bias'] = _WritesMarker(str(marker))
    path = tmp_path / 'evil.pdparams'
    with open(path, 'wb') as f:
        pickle.dump(state, f, protocol=4)
    with open(tmp_path / 'check.pdparams', 'wb') as f:  # the file does what it claims
        pickle.dump([_WritesMarker(str(tmp_path / 'ran'))], f)
    pickle.load(open(tmp_path / 'check.pdparams', 'rb'))
    assert (tmp_path / 'ran').exists()
    with pytest.raises(WeightsError, match=r'evil.pdparams: refused to load: the file asks '
                                           r'to import (builtins|io)\.open'):
        load_for_inference(tiny(), str(path))
    assert not marker.exists()


def test_an_optimizer_file_that_would_run_code_is_refused(tmp_path):
    model = tiny()
    folder = str(tmp_path / 'TSM_epoch0')
    write_checkpoint(folder, model, momentum(model), {'epoch': 0})
    marker = tmp_path / 'pwned'
    with open(os.path.join(folder, 'optimizer.pdopt'), 'wb') as f:
        pickle.dump({'x': _WritesMarker(str(marker))}, f)
    with pytest.raises(WeightsError, match='optimizer.pdopt: refused to load'):
        resume(folder, tiny(), momentum(tiny()))
    assert not marker.exists()


def test_paddle_files_of_every_version_read_without_paddle_load(tmp_path):
    model = tiny()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    paddle.save(model.state_dict(), str(tmp_path / 'new.pdparams'))
    # Paddle 2.x wrote an optimizer's tensors as (name, array) pairs, with a name table
    old = {k: (f'var_{i}', v) for i, (k, v) in enumerate(state.items())}
    old['StructuredToParameterName@@'] = {k: f'var_{i}' for i, k in enumerate(state)}
    with open(tmp_path / 'old.pdparams', 'wb') as f:
        pickle.dump(old, f, protocol=2)
    # paddle.save splits arrays above 4 GB into slices; a small one split by hand
    big = dict(state)
    weight = big.pop('fc.weight')
    flat = weight.flatten()
    big.update({'fc.weight@@.0': flat[:100], 'fc.weight@@.1': flat[100:]})
    big['UnpackBigParamInfor@@'] = {'fc.weight': {'OriginShape': weight.shape,
                                                  'slices': ['fc.weight@@.0', 'fc.weight@@.1']}}
    with open(tmp_path / 'big.pdparams', 'wb') as f:
        pickle.dump(big, f, protocol=3)
    for name in ('new', 'old', 'big'):
        loaded = unpickle.load(str(tmp_path / f'{name}.pdparams'))
        assert sorted(loaded) == sorted(state), name
        for key, value in state.items():
            np.testing.assert_array_equal(loaded[key], value, err_msg=f'{name} {key}')


def test_not_a_pickle_names_the_file(tmp_path):
    path = tmp_path / 'text.pdparams'
    path.write_text('hello')
    with pytest.raises(WeightsError, match='text.pdparams: not a Paddle weight file'):
        unpickle.load(str(path))


def test_state_json_records_what_loading_compares(tmp_path):
    model = TSM(num_classes=5, seg_num=8, depth=18, shift_mode='online')
    write_weights(str(tmp_path / 'w'), model, {'note': 'x'})
    with open(tmp_path / 'w' / 'state.json') as f:
        record = json.load(f)
    assert record == {'model': model.settings, 'note': 'x', 'epochs_from_one': True}
    assert checkpoint.is_checkpoint(str(tmp_path / 'w'))


def _earlier_layout(folder):
    """Make the checkpoint `folder` read as one of the earlier layout wrote it: its
    state.json counts epochs from 0 and carries no mark of the numbering."""
    path = os.path.join(folder, 'state.json')
    with open(path) as f:
        state = json.load(f)
    del state['epochs_from_one']
    with open(path, 'w') as f:
        json.dump(state, f)


def _earlier_run(save, model):
    """A TSN run folder as the earlier layout left it after two epochs, the first the best:
    TSM_epoch0, TSM_epoch1 and TSM_best, epochs from 0."""
    log = [{'epoch': 0, 'valid_top1': 0.5}, {'epoch': 1, 'valid_top1': 0.25}]
    for epoch in (0, 1):
        state = {'epoch': epoch, 'best_top1': 0.5, 'best_epoch': 0, 'log': log[:epoch + 1]}
        write_checkpoint(os.path.join(save, f'TSM_epoch{epoch}'), model, None, state)
        _earlier_layout(os.path.join(save, f'TSM_epoch{epoch}'))
    write_weights(os.path.join(save, 'TSM_best'), model, {'epoch': 0, 'best_epoch': 0})
    _earlier_layout(os.path.join(save, 'TSM_best'))


def test_a_run_folder_of_the_earlier_layout_reads_with_epochs_from_one(tmp_path):
    save = str(tmp_path / 'run')
    _earlier_run(save, tiny(shift_mode='none'))
    state = read_state(os.path.join(save, 'TSM_epoch1'))
    assert (state['epoch'], state['best_epoch']) == (2, 1)
    assert [row['epoch'] for row in state['log']] == [1, 2]
    from configs import recorded
    assert recorded.run_weights(save) == os.path.join(save, 'TSM_best')  # before migration


@pytest.mark.parametrize('killed_after', [None, 1])
def test_migration_renames_the_earlier_layout_and_survives_a_kill(tmp_path, killed_after):
    """migrate renames TSM_epoch1 -> TSN_epoch2 first, then TSM_epoch0 -> TSN_epoch1, and
    TSM_best -> TSN_best; a kill after the first rename leaves a folder the next start
    finishes with."""
    save = str(tmp_path / 'run')
    _earlier_run(save, tiny(shift_mode='none'))
    if killed_after:
        os.rename(os.path.join(save, 'TSM_epoch1'), os.path.join(save, 'TSN_epoch2'))
    renamed = weights.migrate(save, 'TSN')
    assert sorted(os.listdir(save)) == ['TSN_best', 'TSN_epoch1', 'TSN_epoch2']
    assert os.path.realpath(os.path.join(save, 'TSM_epoch0')) in renamed
    assert [read_state(os.path.join(save, f'TSN_epoch{n}'))['epoch'] for n in (1, 2)] == [1, 2]
    assert weights.latest(save, 'TSN') == os.path.join(save, 'TSN_epoch2')
    assert weights.migrate(save, 'TSN') == {}  # a second start renames nothing
    weights.repair_best(save, 'TSN')  # the log calls epoch 1 best, and TSN_best holds it
    assert read_state(os.path.join(save, 'TSN_best'))['epoch'] == 1
    from configs import recorded
    assert recorded.run_weights(save) == os.path.join(save, 'TSN_best')


def test_fine_tuning_reports_each_difference_once(tmp_path, caplog):
    """A checkpoint of 5 classes into a model of 3: the class count is named once, and the
    classifier that starts afresh once."""
    write_weights(str(tmp_path / 'w'), tiny(num_classes=5))
    with caplog.at_level(logging.INFO):
        load_for_training(tiny(num_classes=3), str(tmp_path / 'w'))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert sum('MODEL.num_classes: model 3, weights trained with 5' in w for w in warnings) == 1
    assert sum('classifier not loaded' in w for w in warnings) == 1
