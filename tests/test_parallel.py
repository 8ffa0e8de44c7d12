"""Data-parallel training on 2 gloo processes started by paddle.distributed.launch, as a user
with several GPUs runs it: gradients, shares of the data, sharded evaluation, a failing rank,
checkpoints across world sizes; and accumulation, AMP and SyncBatchNorm on one process."""
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
import yaml

import train
import training
from models import TSM
from models.amp import Precision
from models.device import set_cpu_threads, usable_cores
from reader.loader import EpochBatchSampler
from tests.commands import ROOT, run_sh

TRAIN = {'learning_rate': 0.1, 'lr_decay': 0.1, 'lr_decay_epochs': [], 'warmup_epochs': 0,
         'momentum': 0.9, 'l2_weight_decay': 1e-4, 'clip_norm': 20.0, 'param_groups': 'plain'}


def launch(args, nproc=2, timeout=300, cwd=ROOT):
    """python -m paddle.distributed.launch --nproc_per_node N ARGS: (status, all it printed,
    seconds)."""
    start = time.monotonic()
    log_dir = os.path.join(cwd if cwd != ROOT else os.environ.get('TMPDIR', '/tmp'),
                           f'launch-log-{os.getpid()}-{time.monotonic_ns()}')
    proc = subprocess.run([sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node',
                           str(nproc), '--log_dir', log_dir, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def tiny_model(seed=0):
    paddle.seed(seed)
    return TSM(num_classes=4, seg_num=2, depth=18, dropout=0.0)


def batch(step, part, size=2):
    rng = np.random.default_rng([step, part])
    clips = rng.standard_normal((size, 1, 2, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 4, size)
    return paddle.to_tensor(clips), paddle.to_tensor(labels), paddle.zeros([size], 'int64')


STEPS_SCRIPT = '''
import sys
sys.path.insert(0, {root!r})
import numpy as np
import paddle
from models import parallel
from models.amp import Precision
from models.device import set_cpu_threads
from tests.test_parallel import TRAIN, batch, tiny_model
import training
paddle.set_device('cpu')
set_cpu_threads(1)  # as the reference: the same kernels, the same float sums
parallel.init()
model = tiny_model()
optimizer, _ = training.build_optimizer(model, TRAIN, 10, TRAIN['learning_rate'])
trained = parallel.data_parallel(model)
trained.train()
for step in range({steps}):
    training.train_update(trained, [batch(step, parallel.rank())], optimizer, Precision('off'))
np.savez({out!r} + f'/rank{{parallel.rank()}}.npz', **{{n: p.numpy() for n, p in
                                                      model.named_parameters() if p.trainable}})
'''


def reference_steps(steps):
    """One process: each step the two half-batches go through the network apart (each its
    own BatchNorm statistics, as on its rank), and the gradient of their mean loss, the mean
    of their gradients, makes one Momentum step; Paddle's own loss and optimizer. One thread,
    as the ranks: a few steps of SGD on batches of 2 amplify the last bits of a float sum."""
    set_cpu_threads(1)
    try:
        return _reference_steps(steps)
    finally:
        set_cpu_threads(usable_cores())


def _reference_steps(steps):
    model = tiny_model()
    model.train()
    optimizer = paddle.optimizer.Momentum(
        learning_rate=TRAIN['learning_rate'], momentum=TRAIN['momentum'],
        parameters=model.parameters(),
        weight_decay=paddle.regularizer.L2Decay(TRAIN['l2_weight_decay']),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(TRAIN['clip_norm']))
    for step in range(steps):
        losses = []
        for part in (0, 1):
            clips, labels, _ = batch(step, part)
            losses.append(paddle.nn.functional.cross_entropy(model(clips[:, 0]),
                                                             labels.unsqueeze(-1)))
        ((losses[0] + losses[1]) / 2).backward()
        optimizer.step()
        optimizer.clear_grad()
    # the weights; each rank's BatchNorm running statistics follow its own half-batches
    return {n: p.numpy() for n, p in model.named_parameters() if p.trainable}


def test_two_ranks_hold_the_weights_of_averaged_half_batch_gradients(tmp_path):
    script = tmp_path / 'steps.py'
    script.write_text(STEPS_SCRIPT.format(root=ROOT, steps=3, out=str(tmp_path)))
    status, output, _ = launch([str(script)])
    assert status == 0, output
    ranks = [np.load(tmp_path / f'rank{r}.npz') for r in (0, 1)]
    want = reference_steps(3)
    assert sorted(ranks[0].files) == sorted(want)
    moved = max(np.abs(want[n] - tiny_model().state_dict()[n].numpy()).max() for n in want)
    assert moved > 1e-3  # the steps changed the weights, so equality below means something
    for name, value in want.items():
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
        np.testing.assert_allclose(ranks[0][name], value, rtol=0, atol=1e-5, err_msg=name)


def test_ranks_read_disjoint_shares_that_cover_the_epoch():
    size, batch_size, world = 23, 3, 2
    single = list(EpochBatchSampler(size, batch_size * world, True, True, seed=5))
    shares = [list(EpochBatchSampler(size, batch_size, True, True, seed=5, rank=r,
                                     world_size=world)) for r in range(world)]
    assert len(shares[0]) == len(shares[1]) == size // (batch_size * world) == 3
    items = [key for share in shares for b in share for key in b]
    assert len(items) == len({i for i, _ in items}) == 18
    # the same items with the same draws as one process taking the global batch
    assert sorted(items) == sorted(key for b in single for key in b)
    for step, global_batch in enumerate(single):
        assert global_batch == shares[0][step] + shares[1][step]
    evals = [list(EpochBatchSampler(size, 4, False, False, rank=r, world_size=world))
             for r in range(world)]
    seen = [i for share in evals for b in share for i, _ in b]
    assert sorted(seen) == list(range(size))  # every item once, none padded in


def write_config(tmp_path, data, **sections):
    cfg = {'MODEL': {'num_classes': 6, 'seg_num': 2, 'depth': 18},
           'DATA': {'data_root': str(data), 'short_size': 32, 'target_size': 32, 'flip': False,
                    'num_workers': 0},
           'TRAIN': {'filelist': str(data / 'train.list'), 'batch_size': 2, 'epoch': 1,
                     'lr_decay_epochs': [], 'valid_interval': 1, 'log_interval': 0,
                     'lr_reference_batch': 4, 'save_dir': str(tmp_path / 'run'),
                     'pretrain': ''},
           'VALID': {'filelist': str(data / 'val.list'), 'batch_size': 2},
           'TEST': {'filelist': str(data / 'val.list'), 'batch_size': 2,
                    'weights': str(tmp_path / 'run/TSM_epoch1'),
                    'save_dir': str(tmp_path / 'eval')},
           'INFER': {'label_file': str(data / 'labels.txt')}}
    for section, values in sections.items():
        cfg[section].update(values)
    path = tmp_path / 'cfg.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('parallel') / 'data'
    subprocess.run([sys.executable, 'data/make_demo.py', '--out', str(root),
                    '--train_per_class', '1', '--val_per_class', '1', '--size', '32',
                    '--seed', '3'], cwd=ROOT, check=True, capture_output=True)
    with open(root / 'val.list') as f:  # 7 videos: a length 2 ranks do not divide
        lines = f.readlines()
    (root / 'val.list').write_text(''.join(lines + lines[:1]))
    with open(root / 'train.list') as f:  # 8: two global batches of 2 x 2
        lines = f.readlines()
    (root / 'train.list').write_text(''.join(lines + lines[:2]))
    return root


def test_train_on_two_ranks_then_resume_on_one_and_evaluate_sharded(tmp_path, data):
    config = write_config(tmp_path, data)
    proc = run_sh('train', 'TSM', config, '--nproc_per_node', '2', '--log_dir',
                  str(tmp_path / 'log'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'global batch 4 clips (2 per device x 2 devices x 1 accum_steps): learning rate 0.01' \
        in proc.stdout + proc.stderr
    assert 'No ccache found' not in proc.stdout + proc.stderr  # nor from the launcher
    assert 'LAUNCH INFO' not in proc.stderr and 'Configuration' not in proc.stderr
    run = tmp_path / 'run'
    # rank 0 alone writes, and holds the folder (.lock)
    assert sorted(os.listdir(run)) == ['.lock', 'TSM_best', 'TSM_epoch1', 'config.yaml',
                                       'train.log', 'train_curves.png', 'train_log.csv',
                                       'train_log.json']
    first = json.loads((run / 'train_log.json').read_text())
    assert first[0]['clips'] == 8 and first[0]['valid_num_videos'] == 7  # both ranks' shares
    saved = paddle.load(str(run / 'TSM_epoch1/model.pdparams'))

    # one process with accum_steps 2 has the global batch of the two: the same learning rate
    proc = run_sh('train', 'TSM', config, '--epoch', '2', '--resume', 'latest',
                  '-o', 'TRAIN.accum_steps=2')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'resumed from {run / "TSM_epoch1"} after epoch 1' in proc.stderr
    rows = json.loads((run / 'train_log.json').read_text())
    assert [r['epoch'] for r in rows] == [1, 2] and rows[0] == first[0]
    assert rows[1]['lr'] == pytest.approx(first[0]['lr'])
    state = json.loads((run / 'TSM_epoch2/state.json').read_text())
    assert state['best_top1'] == max(r['valid_top1'] for r in rows)

    # sharded evaluation of a list of 7 equals one process on it exactly
    proc = run_sh('eval', 'TSM', config, '--save_dir', str(tmp_path / 'single'))
    assert proc.returncode == 0, proc.stderr
    proc = run_sh('eval', 'TSM', config, '--save_dir', str(tmp_path / 'sharded'),
                  '--nproc_per_node', '2', '--log_dir', str(tmp_path / 'elog'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    single = json.loads((tmp_path / 'single/TSM_eval.json').read_text())
    sharded = json.loads((tmp_path / 'sharded/TSM_eval.json').read_text())
    assert single['num_videos'] == 7
    for key in ('top1', 'top5', 'mean_class_acc', 'num_videos', 'dropped'):
        assert sharded[key] == single[key], key
    assert saved  # the checkpoint of the 2-rank run was read as written


FAILING_SCRIPT = '''
import sys
sys.path.insert(0, {root!r})
from configs import cli
from models import parallel


def main(argv):
    parallel.init()
    if parallel.rank() == 1:
        raise ValueError('rank 1 cannot go on')
    parallel.all_sum([1.0])  # rank 0 waits for a peer that never comes
    return 0


cli.run('failing', main)
'''


def test_a_failing_rank_stops_the_job_with_its_message(tmp_path):
    script = tmp_path / 'failing.py'
    script.write_text(FAILING_SCRIPT.format(root=ROOT))
    status, output, seconds = launch([str(script)])
    assert status != 0
    assert 'ValueError: rank 1 cannot go on' in output  # in the launcher's own output
    assert seconds < 120


def test_accumulated_steps_equal_one_step_on_their_union():
    """accum_steps a on batches of b: the update of one batch of a*b clips (BatchNorm frozen,
    so its statistics do not depend on how the clips are grouped)."""
    whole = batch(0, 0, size=4)
    halves = [tuple(t[k * 2:(k + 1) * 2] for t in whole) for k in (0, 1)]
    results = []
    for group in ([whole], halves):
        model = tiny_model()
        model.eval()  # BatchNorm on its running statistics; dropout is 0
        optimizer, _ = training.build_optimizer(model, TRAIN, 10, TRAIN['learning_rate'])
        training.train_update(model, group, optimizer, Precision('off'))
        results.append({n: p.numpy() for n, p in model.named_parameters()})
    moved = max(np.abs(results[0][n] - tiny_model().state_dict()[n].numpy()).max()
                for n in results[0])
    assert moved > 1e-3
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=0, atol=1e-6,
                                   err_msg=name)


def test_amp_on_the_cpu_says_so_and_trains_in_fp32(caplog):
    with caplog.at_level(logging.INFO):
        precision = Precision('fp16')
    assert precision.mode == 'off' and precision.scaler is None
    notices = [r.getMessage() for r in caplog.records]
    assert notices == ['TRAIN.amp fp16: Paddle runs mixed precision on GPUs only; training in '
                       'fp32 on the CPU']
    model = tiny_model()
    with precision.autocast():
        logits = model(batch(0, 0)[0][:, 0])
    assert logits.dtype == paddle.float32


def test_sync_bn_on_the_cpu_is_refused(tmp_path, data, capsys):
    from configs import cli
    config = write_config(tmp_path, data, TRAIN={'sync_bn': True})
    with pytest.raises(SystemExit) as exit_:
        cli.run('train', train.main, ['--config', config])
    assert exit_.value.code == 1
    assert 'TRAIN.sync_bn needs GPUs' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()
