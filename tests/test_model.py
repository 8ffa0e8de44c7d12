"""TSM network: shapes, temporal behaviour, gradients, ImageNet names, export."""
import numpy as np
import paddle
import pytest

from models import TSM


def clip_batch(n, t, size=32, seed=0):
    rng = np.random.RandomState(seed)
    return paddle.to_tensor(rng.randn(n, t, 3, size, size).astype('float32'))


def small(**kwargs):
    args = dict(num_classes=5, seg_num=4, depth=18, dropout=0.0)
    args.update(kwargs)
    paddle.seed(0)
    model = TSM(**args)
    model.eval()
    return model


@pytest.mark.parametrize('depth', [18, 50])
def test_output_shapes(depth):
    model = small(depth=depth, num_classes=7, seg_num=3)
    x = clip_batch(2, 3)
    frames = model.frame_scores(x)
    assert list(frames.shape) == [2, 3, 7]
    out = model(x)
    assert list(out.shape) == [2, 7]
    np.testing.assert_allclose(out.numpy(), frames.numpy().mean(1),
                               rtol=1e-6, atol=1e-6)


def test_wrong_input_raises():
    model = small()
    with pytest.raises(ValueError, match=r'seg_num = 4.*\[1, 3, 3, 32, 32\]'):
        model(clip_batch(1, 3))
    with pytest.raises(ValueError, match='rank 5'):
        model(paddle.zeros([4, 3, 32, 32]))
    with pytest.raises(ValueError, match='3 channels'):
        model(paddle.zeros([1, 4, 1, 32, 32]))


@pytest.mark.parametrize('arg,value', [
    ('depth', 20), ('shift_mode', 'left'), ('shift_place', 'block'),
    ('shift_ratio', 0.0), ('shift_ratio', 0.6), ('seg_num', 0),
    ('num_classes', 0), ('dropout', 1.0), ('shift_every', 0), ('shift_every', 1.5),
    ('shift_every', True)])
def test_constructor_validation(arg, value):
    with pytest.raises(ValueError, match=arg):
        TSM(**{arg: value})


@pytest.mark.parametrize('depth', [50, 101])
def test_shift_every_shifts_the_even_blocks_of_each_stage(depth):
    model = TSM(num_classes=5, seg_num=4, depth=depth, shift_every=2)
    counts = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    for k, count in enumerate(counts):
        stage = getattr(model, f'layer{k + 1}')
        assert len(stage) == count
        assert [i for i, b in enumerate(stage) if b.shift is not None] == list(
            range(0, count, 2))
    # Same parameters as shifting every block: no shift layer holds any.
    every = TSM(num_classes=5, seg_num=4, depth=depth)
    assert list(model.state_dict()) == list(every.state_dict())
    assert [b.shift is not None for b in every.layer3] == [True] * counts[2]


def test_shift_every_changes_the_network():
    every, sparse = small(), small(shift_every=2)
    sparse.set_state_dict(every.state_dict())
    x = clip_batch(1, 4)
    assert np.abs(every(x).numpy() - sparse(x).numpy()).max() > 1e-4


def test_frame_order_matters_only_with_shift():
    x = clip_batch(2, 4)
    reversed_x = paddle.flip(x, axis=[1])
    tsn = small(shift_mode='none')
    np.testing.assert_allclose(tsn(x).numpy(), tsn(reversed_x).numpy(),
                               rtol=1e-5, atol=1e-5)
    tsm = small()
    diff = np.abs(tsm(x).numpy() - tsm(reversed_x).numpy()).max()
    assert diff > 1e-3


def test_clips_of_a_batch_are_independent():
    model = small()
    x = clip_batch(3, 4)
    together = model(x).numpy()
    alone = model(x[1:2]).numpy()
    np.testing.assert_allclose(together[1:2], alone, rtol=1e-5, atol=1e-5)


def test_every_parameter_gets_a_gradient():
    model = small(dropout=0.5)
    model.train()
    out = model(clip_batch(2, 4))
    assert np.isfinite(out.numpy()).all()
    paddle.nn.functional.cross_entropy(
        out, paddle.to_tensor([1, 3])).backward()
    trainable = [(n, p) for n, p in model.named_parameters()
                 if not p.stop_gradient]
    assert len(trainable) == 62  # conv/bn/fc weights and biases of R18
    for name, param in trainable:
        grad = param.grad
        assert grad is not None, name
        grad = grad.numpy()
        assert np.isfinite(grad).all(), name
        assert np.abs(grad).max() > 0, name


def test_residual_and_inplace_differ_with_same_names():
    residual, inplace = small(), small(shift_place='inplace')
    inplace.set_state_dict(residual.state_dict())
    assert list(residual.state_dict()) == list(inplace.state_dict())
    x = clip_batch(1, 4)
    diff = np.abs(residual(x).numpy() - inplace(x).numpy()).max()
    assert diff > 1e-4


def test_imagenet_resnet18_weights_give_same_frame_logits():
    paddle.seed(1)
    reference = paddle.vision.models.resnet18()
    # Random running statistics, so a lost BN buffer would show in the logits.
    rng = np.random.RandomState(1)
    for name, value in reference.state_dict().items():
        if name.endswith('_mean') or name.endswith('_variance'):
            low = 0.5 if name.endswith('_variance') else -0.5
            value.set_value(rng.uniform(low, 1.5, value.shape)
                            .astype('float32'))
    reference.eval()
    model = TSM(num_classes=1000, seg_num=2, depth=18, shift_mode='none')
    model.set_state_dict(reference.state_dict())
    model.eval()
    x = clip_batch(1, 2, size=64)
    ours = model.frame_scores(x).numpy()[0]
    theirs = reference(x[0]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize('depth', [50, 101])
def test_state_dict_names_match_paddle_vision(depth):
    reference = getattr(paddle.vision.models, f'resnet{depth}')()
    ours = TSM(num_classes=1000, depth=depth).state_dict()
    theirs = reference.state_dict()
    assert list(ours) == list(theirs)
    assert all(list(ours[k].shape) == list(theirs[k].shape) for k in ours)


def test_export_with_dynamic_batch(tmp_path):
    model = small(seg_num=3)
    spec = paddle.static.InputSpec([None, 3, 3, 32, 32], 'float32', 'clip')
    path = str(tmp_path / 'tsm')
    paddle.jit.save(model, path, input_spec=[spec])
    loaded = paddle.jit.load(path)
    loaded.eval()
    for batch in (1, 3):
        x = clip_batch(batch, 3, seed=batch)
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(),
                                   rtol=1e-5, atol=1e-5)
