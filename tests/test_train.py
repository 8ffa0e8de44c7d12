"""train.py's optimisation pieces: the LR schedule per step and the loss over decoded items."""
import numpy as np
import paddle
import pytest

from models.finite import NonFiniteError
from training import build_optimizer, check_update, masked_loss

TRAIN = {'learning_rate': 0.1, 'lr_decay': 0.1, 'momentum': 0.9, 'l2_weight_decay': 1e-4,
         'clip_norm': 20.0, 'param_groups': 'plain'}


def lrs(train, steps_per_epoch, epochs):
    """The LR of every optimiser step over `epochs` epochs, grouped per epoch."""
    model = paddle.nn.Linear(2, 2)
    _, lr = build_optimizer(model, dict(TRAIN, **train), steps_per_epoch, TRAIN['learning_rate'])
    out = []
    for _ in range(epochs):
        epoch = []
        for _ in range(steps_per_epoch):
            epoch.append(round(lr(), 6))
            lr.step()
        out.append(epoch)
    return out


def test_piecewise_decay_at_the_configured_epochs():
    got = lrs({'lr_decay_epochs': [2, 3], 'warmup_epochs': 0}, 3, 4)
    assert got == [[0.1] * 3, [0.1] * 3, [0.01] * 3, [0.001] * 3]


def test_warmup_then_decay_at_the_configured_epochs():
    got = lrs({'lr_decay_epochs': [3], 'warmup_epochs': 1}, 4, 4)
    assert got[0] == [0.0, 0.025, 0.05, 0.075]  # linear from 0 over the first epoch
    assert got[1] == got[2] == [0.1] * 4
    assert got[3] == [0.01] * 4  # epoch 3, not 3 + warmup_epochs


def test_decay_right_after_the_warmup():
    got = lrs({'lr_decay_epochs': [1], 'warmup_epochs': 1}, 2, 3)
    assert got == [[0.0, 0.05], [0.01] * 2, [0.01] * 2]


def test_no_decay_epochs_keep_the_rate():
    got = lrs({'lr_decay_epochs': [], 'warmup_epochs': 1}, 2, 3)
    assert got == [[0.0, 0.05], [0.1] * 2, [0.1] * 2]


def test_schedule_set_by_step_equals_the_stepped_one():
    """A resume sets the schedule to epoch e's first step (the steps of an epoch may differ
    from the run that wrote the checkpoint): it must give what stepping there gives."""
    train = dict(TRAIN, lr_decay_epochs=[2, 3], warmup_epochs=1)
    stepped = [lr for epoch in lrs(train, 3, 4) for lr in epoch]
    for first in range(4):
        _, lr = build_optimizer(paddle.nn.Linear(2, 2), train, 3, train['learning_rate'])
        lr.step(first * 3)
        assert round(lr(), 6) == stepped[first * 3]


def test_masked_loss_ignores_failed_items():
    logits = paddle.to_tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    labels = paddle.to_tensor([0, 0, -1])  # the third item failed to decode
    loss, hits, count = masked_loss(logits, labels)
    want = np.sum([np.log(1 + np.exp(-2.0)), np.log(1 + np.exp(2.0))])
    assert float(count) == 2 and float(hits) == 1
    assert float(loss) == pytest.approx(want, rel=1e-5)  # summed: the caller divides


def test_a_non_finite_loss_or_weight_stops_naming_the_step():
    model = paddle.nn.Linear(2, 2)
    train = dict(TRAIN, lr_decay_epochs=[], warmup_epochs=0)
    optimizer, _ = build_optimizer(model, train, 5, 0.1)
    check_update(model, 0.5, 'epoch 3 step 2/5', optimizer, train)  # finite: goes on
    with pytest.raises(NonFiniteError, match=r'epoch 3 step 2/5: the training loss is nan: the '
                                             r'run diverged; likely a learning rate too high '
                                             r'\(TRAIN.learning_rate 0.1, 0.1 at this step\)'):
        check_update(model, float('nan'), 'epoch 3 step 2/5', optimizer, train)
    model.bias.set_value(paddle.to_tensor([0.0, float('inf')]))
    with pytest.raises(NonFiniteError, match=r'epoch 3 step 2/5: bias is NaN or infinite after '
                                             r'the update \(loss 0.5\)'):
        check_update(model, 0.5, 'epoch 3 step 2/5', optimizer, train)


@pytest.mark.parametrize('policy', ['plain', 'mit'])
def test_parameter_groups_give_each_parameter_its_rate_and_decay(policy):
    """One step from zero momentum moves a parameter by -lr * factor * (grad + decay * value):
    with 'mit', the original code's factors (classifier 5x, its bias 10x) and no decay on
    BatchNorm and biases."""
    from models import TSM
    paddle.seed(0)
    model = TSM(num_classes=3, seg_num=2, depth=18)
    train = dict(TRAIN, lr_decay_epochs=[], warmup_epochs=0, l2_weight_decay=0.01,
                 clip_norm=1e9, param_groups=policy)
    optimizer, _ = build_optimizer(model, train, 10, 0.1)
    model.train()
    model(paddle.rand([2, 2, 3, 32, 32])).sum().backward()
    named = dict(model.named_parameters())
    picked = ['conv1.weight', 'layer2.0.bn1.weight', 'layer2.0.bn1.bias', 'fc.weight', 'fc.bias']
    before = {n: named[n].numpy().copy() for n in picked}
    grads = {n: named[n].grad.numpy().copy() for n in picked}
    optimizer.step()
    want = {'plain': {n: (1, 0.01) for n in picked},
            'mit': {'conv1.weight': (1, 0.01), 'layer2.0.bn1.weight': (1, 0),
                    'layer2.0.bn1.bias': (1, 0), 'fc.weight': (5, 0.01), 'fc.bias': (10, 0)}}
    for n in picked:
        factor, decay = want[policy][n]
        step = -0.1 * factor * (grads[n] + decay * before[n])
        np.testing.assert_allclose(named[n].numpy() - before[n], step, rtol=1e-4, atol=1e-7,
                                   err_msg=n)
