"""Checkpoint files: round trip, mismatch reports, pretrain, resume."""
import json
import logging
import os

import numpy as np
import paddle
import pytest

from models import (TSM, load_checkpoint, load_pretrain, load_weights,
                    save_checkpoint)


def tiny(num_classes=5, depth=18, seed=0):
    paddle.seed(seed)
    model = TSM(num_classes=num_classes, seg_num=2, depth=depth, dropout=0.0)
    model.eval()
    return model


def clip(seed=0):
    x = np.random.RandomState(seed).randn(2, 2, 3, 32, 32)
    return paddle.to_tensor(x.astype('float32'))


def test_round_trip_gives_identical_outputs(tmp_path):
    source = tiny(seed=0)
    prefix = str(tmp_path / 'run' / 'epoch_3')
    save_checkpoint(prefix, source, state={'epoch': 3, 'best_top1': 0.25})
    assert sorted(os.listdir(tmp_path / 'run')) == ['epoch_3.json',
                                                    'epoch_3.pdparams']
    target = tiny(seed=1)
    assert not np.array_equal(source(clip()).numpy(), target(clip()).numpy())
    state = load_checkpoint(prefix, target)
    assert state == {'epoch': 3, 'best_top1': 0.25}
    assert np.array_equal(source(clip()).numpy(), target(clip()).numpy())
    target2 = tiny(seed=2)
    load_weights(target2, prefix + '.pdparams')
    assert np.array_equal(source(clip()).numpy(), target2(clip()).numpy())


def test_mismatch_error_names_everything(tmp_path):
    path = str(tmp_path / 'r18.pdparams')
    state = tiny(num_classes=5).state_dict()
    del state['layer4.1.bn2._variance']
    state['head.weight'] = paddle.zeros([3])
    paddle.save(state, path)
    with pytest.raises(ValueError) as err:
        load_weights(tiny(num_classes=7), path)
    message = str(err.value)
    assert path in message
    assert 'missing in file (1): layer4.1.bn2._variance' in message
    assert 'unexpected in file (1): head.weight' in message
    assert 'fc.weight: file [512, 5] vs model [512, 7]' in message
    assert 'fc.bias: file [5] vs model [7]' in message


def test_wrong_depth_is_reported(tmp_path):
    path = str(tmp_path / 'r50.pdparams')
    paddle.save(tiny(depth=50).state_dict(), path)
    with pytest.raises(ValueError, match='layer1.0.conv3.weight'):
        load_weights(tiny(depth=18), path)


def test_non_strict_allows_missing_but_not_shapes(tmp_path):
    path = str(tmp_path / 'part.pdparams')
    source = tiny(seed=0)
    state = source.state_dict()
    del state['fc.bias']
    paddle.save(state, path)
    target = tiny(seed=1)
    bias = target.fc.bias.numpy().copy()
    load_weights(target, path, strict=False)
    assert np.array_equal(target.fc.bias.numpy(), bias)
    assert np.array_equal(target.conv1.weight.numpy(),
                          source.conv1.weight.numpy())
    with pytest.raises(ValueError, match='fc.weight'):
        load_weights(tiny(num_classes=9), str(path), strict=False)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pdparams'):
        load_weights(tiny(), str(tmp_path / 'nothere.pdparams'))


def test_pretrain_skips_classifier_of_other_class_count(tmp_path, caplog):
    path = str(tmp_path / 'imagenet.pdparams')
    imagenet = paddle.vision.models.resnet18()
    paddle.save(imagenet.state_dict(), path)
    model = tiny(num_classes=5)
    fc_before = model.fc.weight.numpy().copy()
    with caplog.at_level(logging.INFO, logger='models.checkpoint'):
        load_pretrain(model, path)
    assert np.array_equal(model.fc.weight.numpy(), fc_before)
    assert np.array_equal(model.layer3[1].conv2.weight.numpy(),
                          imagenet.layer3[1].conv2.weight.numpy())
    assert np.array_equal(model.bn1._mean.numpy(),
                          imagenet.bn1._mean.numpy())
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1
    assert 'fc.weight: file [512, 1000] vs model [512, 5]' in notices[0]


def test_pretrain_accepts_backbone_only_and_same_classes(tmp_path):
    backbone = paddle.vision.models.resnet18(num_classes=0)
    path = str(tmp_path / 'backbone.pdparams')
    paddle.save(backbone.state_dict(), path)
    model = tiny(num_classes=5)
    load_pretrain(model, path)
    assert np.array_equal(model.conv1.weight.numpy(),
                          backbone.conv1.weight.numpy())
    same = str(tmp_path / 'same.pdparams')
    source = tiny(num_classes=5, seed=3)
    paddle.save(source.state_dict(), same)
    load_pretrain(model, same)
    assert np.array_equal(model.fc.weight.numpy(), source.fc.weight.numpy())


def test_pretrain_other_mismatch_is_an_error(tmp_path):
    path = str(tmp_path / 'r34.pdparams')
    paddle.save(paddle.vision.models.resnet34().state_dict(), path)
    with pytest.raises(ValueError, match='unexpected in file.*layer1.2.conv1'):
        load_pretrain(tiny(num_classes=5), path)


def train_steps(model, optimizer, steps, seed):
    model.train()
    for i in range(steps):
        loss = paddle.nn.functional.cross_entropy(
            model(clip(seed + i)), paddle.to_tensor([1, 4]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()


def momentum(model):
    return paddle.optimizer.Momentum(learning_rate=0.1, momentum=0.9,
                                     parameters=model.parameters())


def velocities(model, optimizer):
    """Momentum velocity per structured parameter name."""
    names = {p.name: n for n, p in model.named_parameters()}
    return {names[k.rsplit('_velocity', 1)[0]]: v.numpy()
            for k, v in optimizer.state_dict().items()}


def test_resume_restores_optimizer_state(tmp_path):
    first = tiny(seed=0)
    first_opt = momentum(first)
    train_steps(first, first_opt, 2, seed=10)
    prefix = str(tmp_path / 'last')
    save_checkpoint(prefix, first, first_opt, state={'epoch': 1})
    saved = paddle.load(prefix + '.pdopt')
    assert 'layer1.0.conv1.weight/velocity' in saved
    np.testing.assert_array_equal(
        saved['fc.weight/velocity'].numpy(),
        velocities(first, first_opt)['fc.weight'])
    assert json.load(open(prefix + '.json')) == {'epoch': 1}

    resumed = tiny(seed=5)
    resumed_opt = momentum(resumed)
    assert load_checkpoint(prefix, resumed, resumed_opt) == {'epoch': 1}
    # One more identical step: parameters agree only if the velocities
    # were restored (a zero velocity gives a different update).
    train_steps(first, first_opt, 1, seed=20)
    train_steps(resumed, resumed_opt, 1, seed=20)
    for (name, a), b in zip(first.named_parameters(), resumed.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6,
                                   err_msg=name)
    first_velocity = velocities(first, first_opt)
    assert len(first_velocity) == 62
    resumed_velocity = velocities(resumed, resumed_opt)
    assert sorted(resumed_velocity) == sorted(first_velocity)
    for name, value in first_velocity.items():
        np.testing.assert_allclose(resumed_velocity[name], value, rtol=0,
                                   atol=1e-6, err_msg=name)

    fresh = tiny(seed=5)
    fresh_opt = momentum(fresh)
    load_weights(fresh, prefix + '.pdparams')
    train_steps(fresh, fresh_opt, 1, seed=20)
    assert not np.allclose(fresh.fc.weight.numpy(), first.fc.weight.numpy(),
                           atol=1e-6)
