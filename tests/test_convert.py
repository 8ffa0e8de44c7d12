"""Every supported layout loads into our TSM and gives the logits its publisher computes.

The references (tests/source_nets.py) are written in the publisher's framework and
naming, without models/: PaddleVideo and the old zoo with paddle.nn.functional and
F.temporal_shift, the original PyTorch release with torch ops and its own shift.
"""
import argparse
import io
import logging
import os
import pickle
import re
import struct
import sys
import tarfile
import tracemalloc
import zipfile

import numpy as np
import paddle
import pytest

from models import TSM
from models.weights import (WeightsError, load_for_inference, load_for_training, read_state,
                            write_weights)
from models.weights.convert import convert_file, convert_state, detect_format, main
from models.weights import fluid
from models.weights.files import read_state as read_weight_file
from models.weights.fluid import read_lod_tensor
from models.weights.streams import permute_streams, source_shift
from tests import source_nets as src

SEG, CLASSES = 8, 5


@pytest.fixture(scope='module')
def clip():
    return np.random.default_rng(1).normal(size=(2, SEG, 3, 32, 32)).astype(np.float32)


def logits(model, clip):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(clip)).numpy()


def assert_close(ours, ref):
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err < 1e-4, f'relative error {err:.2e}'


def far(ours, ref):
    return np.abs(ours - ref).max() / np.abs(ref).max() > 1e-2


def paddle_file(tmp_path, state, name='w.pdparams'):
    path = str(tmp_path / name)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, path)
    return path


def test_paddlevideo_tsm_k400_layout(tmp_path, clip):
    names = src.PaddleVideoNames(50)
    state = src.random_state(names, 50, CLASSES)
    ref = src.paddle_forward(state, names, 50, clip, SEG, 1.0 / SEG)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    load_for_inference(model, paddle_file(tmp_path, state))
    assert_close(logits(model, clip), ref)
    # The fold swap is what makes them equal: undoing it changes the logits.
    swapped = permute_streams({k: v.numpy() for k, v in model.state_dict().items()}, model,
                              source_shift('paddlevideo', [], SEG).folds)
    model.set_state_dict(swapped)
    assert far(logits(model, clip), ref)


@pytest.mark.parametrize('depth', (50, 101))
def test_pptsm_resnet_vd_layout(tmp_path, depth):
    state = src.pptsm_state(depth, CLASSES, seed=12)
    # 48x40 frames: the shortcut pools of layer3 and layer4 meet odd sides (5 and 3 columns)
    x = np.random.default_rng(13).normal(size=(1, SEG, 3, 48, 40)).astype(np.float32)
    ref = src.pptsm_forward(state, depth, x, SEG)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=depth, backbone='resnet_vd')
    load_for_inference(model, paddle_file(tmp_path, state))
    assert_close(logits(model, x), ref)
    # The stem's last conv writes the first stream, so its output channels carry the fold
    # swap (64 channels: folds of 8); the convs before it are left as they are.
    conv1_3 = state['backbone.conv1_3._conv.weight']
    assert np.array_equal(model.conv1_3.weight.numpy(), np.concatenate(
        [conv1_3[8:16], conv1_3[:8], conv1_3[16:]]))
    assert np.array_equal(model.conv1_2.weight.numpy(), state['backbone.conv1_2._conv.weight'])
    if depth == 50:  # the plain backbone is told what the weights are, before any name list
        with pytest.raises(WeightsError, match="network with MODEL.backbone='resnet_vd', the "
                                               "config builds MODEL.backbone='resnet': set -o "
                                               "MODEL.backbone=resnet_vd "):
            load_for_inference(TSM(num_classes=CLASSES, depth=50), paddle_file(tmp_path, state))


def test_old_zoo_tsm_pdparams(tmp_path, clip):
    # fluid.save wrote a protocol-2 pickle of {parameter name: ndarray}.
    names = src.FluidNames(50)
    state = src.random_state(names, 50, CLASSES, seed=2)
    state['fc_0.w_0_velocity_0'] = np.zeros((2048, CLASSES), np.float32)
    path = tmp_path / 'TSM.pdparams'
    with open(path, 'wb') as f:
        pickle.dump(state, f, protocol=2)
    ref = src.paddle_forward(state, names, 50, clip, SEG, 1.0 / 8)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    load_for_inference(model, str(path))
    assert_close(logits(model, clip), ref)


def write_fluid_tarball(tmp_path, state):
    folder = tmp_path / 'ResNet_pretrained'
    folder.mkdir()
    for name, value in state.items():  # Paddle's own LoDTensor writer
        paddle.save(paddle.to_tensor(value), str(folder / name), use_binary_format=True)
    path = tmp_path / 'ResNet_pretrained.tar.gz'
    with tarfile.open(path, 'w:gz', compresslevel=1) as tar:
        tar.add(folder, arcname=folder.name)
    return str(path), str(folder)


def test_fluid_tarball_resnet18(tmp_path, clip):
    names = src.FluidNames(18)
    state = src.random_state(names, 18, CLASSES, seed=3)
    tarball, folder = write_fluid_tarball(tmp_path, state)
    ref = src.paddle_forward(state, names, 18, clip, SEG, 1.0 / 8)
    for path in (tarball, folder):
        model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
        load_for_inference(model, path)
        assert_close(logits(model, clip), ref)


def test_lod_tensor_reader_matches_paddle_writer(tmp_path):
    rng = np.random.default_rng(4)
    for i, value in enumerate([rng.normal(size=(3, 4, 1, 2)).astype(np.float32),
                               rng.integers(-9, 9, (5,)).astype(np.int64),
                               rng.normal(size=(7, 2)).astype(np.float64)]):
        path = str(tmp_path / f't{i}')
        paddle.save(paddle.to_tensor(value), path, use_binary_format=True)
        with open(path, 'rb') as f:
            buf = f.read()
        got = read_lod_tensor(buf, path)
        assert got.dtype == value.dtype and np.array_equal(got, value)
    with pytest.raises(ValueError, match=r't0: 4 data bytes .* \(96 expected\)'):
        read_lod_tensor(open(tmp_path / 't0', 'rb').read()[:-92], 't0')


def _varint(value):
    out = b''
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def lod_header(dims, data_type=5):
    """The header of a fluid parameter file (see models/weights/fluid.py) announcing a
    tensor of `dims` (data type 5: float32), written here from the format alone."""
    desc = b'\x08' + _varint(data_type) + b''.join(b'\x10' + _varint(d) for d in dims)
    return struct.pack('<IQIi', 0, 0, 0, len(desc)) + desc


def tarball_of(path, name, header, data_size):
    """A .tar.gz holding one member: `header` then `data_size` zero bytes."""
    with tarfile.open(path, 'w:gz', compresslevel=1) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(header) + data_size
        stream = io.BufferedReader(io.BytesIO(header + bytes(data_size)))
        tar.addfile(info, stream)
    return str(path)


def peak_bytes_while(call):
    """(the exception `call` raised, the most bytes Python held meanwhile)."""
    tracemalloc.start()
    try:
        call()
    except WeightsError as exc:
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError(f'{call} raised no WeightsError')


def test_lod_header_written_here_reads_as_paddle_writes_it():
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = read_lod_tensor(lod_header([2, 3]) + value.tobytes(), 'crafted')
    assert got.dtype == np.float32 and np.array_equal(got, value)


def test_a_member_larger_than_its_header_says_is_refused_unread(tmp_path):
    """A member whose header announces 16 bytes of data and holds 32 MiB: refused from its
    header and its size, before any of it is read."""
    path = tarball_of(tmp_path / 'params.tar.gz', 'ResNet/conv1_weights', lod_header([4]),
                      32 << 20)
    error, peak = peak_bytes_while(lambda: read_weight_file(path))
    assert str(error).startswith(f'{path}:ResNet/conv1_weights: {32 << 20} data bytes for a '
                                 f'float32 tensor of shape [4] (16 expected)')
    assert peak < 1 << 20


def test_a_member_beyond_the_bound_is_refused_unread(tmp_path, monkeypatch):
    """The header agrees with the member's 8 MiB; the bound (2 GiB, lowered here to 1 MiB)
    refuses it from its size alone."""
    header = lod_header([2 << 20])
    path = tarball_of(tmp_path / 'params.tar.gz', 'ResNet/fc_weights', header, 8 << 20)
    monkeypatch.setattr(fluid, 'MAX_STATE_BYTES', 1 << 20)
    error, peak = peak_bytes_while(lambda: read_weight_file(path))
    assert str(error) == (f'{path}:ResNet/fc_weights: {len(header) + (8 << 20)} bytes, more '
                          f'than the {1 << 20} left of the {1 << 20} the parameter files of '
                          f'one model may take')
    assert peak < 1 << 20


def test_a_header_announcing_gigabytes_is_refused_unread(tmp_path):
    """4 GiB announced by a 40-byte member: the sizes disagree before anything is read."""
    path = tarball_of(tmp_path / 'params.tar.gz', 'conv1_weights', lod_header([1 << 30]), 16)
    error, peak = peak_bytes_while(lambda: read_weight_file(path))
    assert f'{path}:conv1_weights: 16 data bytes for a float32 tensor of shape ' \
           f'[{1 << 30}] ({4 << 30} expected)' in str(error)
    assert peak < 1 << 20


def mit_checkpoint(tmp_path, state):
    import torch
    sd = {k: torch.from_numpy(v) for k, v in state.items()}
    sd.update({k.rsplit('.', 1)[0] + '.num_batches_tracked': torch.tensor(7)
               for k in state if k.endswith('running_mean')})
    path = str(tmp_path / 'TSM_kinetics.pth')
    torch.save({'epoch': 50, 'arch': 'resnet50', 'state_dict': sd, 'best_prec1': 71.2}, path)
    return path


def test_original_pytorch_tsm(tmp_path, clip):
    pytest.importorskip('torch')
    names = src.MitNames(50)
    state = src.random_state(names, 50, CLASSES, seed=5)
    ref = src.torch_forward(state, names, 50, clip, SEG, shift=True)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    load_for_inference(model, mit_checkpoint(tmp_path, state))
    assert_close(logits(model, clip), ref)
    # A checkpoint that shifts only some blocks (their ResNet-101 recipe) is refused.
    part = {k.replace('layer1.1.conv1.net.', 'layer1.1.conv1.'): v for k, v in state.items()}
    with pytest.raises(ValueError, match=r'shifts 15 of the 16 blocks, the model 16 '
                                         r'\(only the model shifts layer1.1\)'):
        convert_state(part, model)


def test_original_pytorch_tsm_r101_shifts_every_other_block(tmp_path):
    pytest.importorskip('torch')
    names = src.MitNames(101)
    state = src.random_state(names, 101, CLASSES, seed=10)
    assert sum('conv1.net.' in k for k in state) == 2 + 2 + 12 + 2  # blocks 0, 2, 4, ...
    x = np.random.default_rng(11).normal(size=(1, 4, 3, 32, 32)).astype(np.float32)
    ref = src.torch_forward(state, names, 101, x, 4, shift=True)
    path = mit_checkpoint(tmp_path, state)
    model = TSM(num_classes=CLASSES, seg_num=4, depth=101, shift_every=2)
    load_for_inference(model, path)
    assert_close(logits(model, x), ref)
    every = TSM(num_classes=CLASSES, seg_num=4, depth=101)
    with pytest.raises(ValueError, match=r'shifts 18 of the 33 blocks, the model 33: '
                                         r'set MODEL.shift_every: 2'):
        load_for_inference(every, path)
    # Shifting every block is another network: the warning is not a formality.
    load_for_training(every, path)
    assert far(logits(every, x), ref)


def mmaction2_checkpoint(tmp_path, state, numpy_module='numpy._core.multiarray'):
    """`state` saved as mmcv's save_checkpoint does: {'meta', 'state_dict'}, the meta with
    strings, numbers and an evaluation hook's best score, a numpy scalar whose constructor
    the pickle names in `numpy_module` (numpy 2's, or numpy 1's 'numpy.core.multiarray')."""
    import torch
    sd = {k: torch.from_numpy(v) for k, v in state.items()}
    sd.update({k.rsplit('.', 1)[0] + '.num_batches_tracked': torch.tensor(3)
               for k in state if k.endswith('running_var')})
    meta = {'mmcv_version': '1.3.16', 'time': 'Mon Jul 26 02:00:00 2021', 'epoch': 50,
            'iter': 61400, 'seed': 0, 'config': "model = dict(type='Recognizer2D')",
            'hook_msgs': {'best_score': np.float64(0.7), 'best_ckpt': 'best_top1.pth'}}
    buffer = io.BytesIO()
    torch.save({'meta': meta, 'state_dict': sd}, buffer)
    path = tmp_path / 'tsm_mmaction2.pth'
    with zipfile.ZipFile(buffer) as zin, zipfile.ZipFile(path, 'w') as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith('data.pkl'):  # protocol 2: GLOBAL module\nname\n
                data = re.sub(rb'numpy\.(_core|core)\.multiarray\n',
                              numpy_module.encode() + b'\n', data)
            zout.writestr(item, data)
    return str(path)


def test_mmaction2_tsm_layout(tmp_path, clip):
    pytest.importorskip('torch')
    names = src.Mmaction2Names(50)
    state = src.random_state(names, 50, CLASSES, seed=12)
    assert 'backbone.layer3.5.conv1.conv.net.weight' in state
    assert detect_format(state) == 'mmaction2'
    ref = src.torch_forward(state, names, 50, clip, SEG, shift=True,
                            shift_op=src.mmaction2_shift)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    load_for_inference(model, mmaction2_checkpoint(tmp_path, state))
    assert_close(logits(model, clip), ref)
    # the shift's direction matters: the original's shift with the folds exchanged is far
    swapped = src.torch_forward(state, names, 50, clip, SEG, shift=True,
                                shift_op=lambda x, t: src.torch_shift(x.flip(1), t).flip(1))
    assert far(swapped, ref)


def test_mmaction2_normaliser_in_the_file_is_checked(tmp_path, clip):
    """A file that kept ActionDataPreprocessor's buffers: ImageNet's (what DATA feeds) loads
    and computes the same; any other normalisation is refused naming the values."""
    pytest.importorskip('torch')
    names = src.Mmaction2Names(18)
    state = src.random_state(names, 18, CLASSES, seed=14)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
    buffer = lambda values: np.array(values, np.float32).reshape(3, 1, 1, 1)  # noqa: E731
    imagenet = dict(state, **{'data_preprocessor.mean': buffer([123.675, 116.28, 103.53]),
                              'data_preprocessor.std': buffer([58.395, 57.12, 57.375])})
    load_for_inference(model, mmaction2_checkpoint(tmp_path, imagenet))
    ref = src.torch_forward(state, names, 18, clip, SEG, shift=True,
                            shift_op=src.mmaction2_shift)
    assert_close(logits(model, clip), ref)
    other = dict(imagenet, **{'data_preprocessor.std': np.full((3, 1, 1), 127.5, np.float32)})
    path = mmaction2_checkpoint(tmp_path, other)
    with pytest.raises(WeightsError) as err:
        load_for_inference(TSM(num_classes=CLASSES, seg_num=SEG, depth=18), path)
    assert str(err.value).startswith(f'{path}: data_preprocessor.std is [127.5, 127.5, 127.5]: '
                                     f'these weights were trained on input normalised '
                                     f'otherwise than ImageNet')


@pytest.mark.parametrize('numpy_module', ['numpy.core.multiarray', 'numpy._core.multiarray'])
def test_mmcv_meta_with_numpy_scalars_is_read(tmp_path, numpy_module):
    pytest.importorskip('torch')
    state = src.random_state(src.Mmaction2Names(18), 18, CLASSES, seed=13)
    read = read_weight_file(mmaction2_checkpoint(tmp_path, state, numpy_module))
    assert set(read) == set(state) | {k.rsplit('.', 1)[0] + '.num_batches_tracked'
                                      for k in state if k.endswith('running_var')}
    assert all(np.array_equal(read[k], v) for k, v in state.items())


def test_a_torch_file_asking_for_code_is_still_refused(tmp_path):
    torch = pytest.importorskip('torch')
    path = str(tmp_path / 'evil.pth')
    torch.save({'meta': {'args': argparse.Namespace(lr=0.01)},
                'state_dict': {'fc.weight': torch.zeros(2, 2)}}, path)
    with pytest.raises(WeightsError, match=r'evil.pth: refused by torch.load\(weights_only'
                                           r'=True\): .*argparse.Namespace'):
        read_weight_file(path)


@pytest.mark.parametrize('part, names, about', [
    ('non-local', {'backbone.layer2.0.block.conv1.conv.net.weight',
                   'backbone.layer2.0.non_local_block.g.conv.weight'},
     r'non-local blocks \(the -nl- configs\)'),
    ('temporal pool', {'backbone.layer2.net.0.conv1.conv.net.weight'}, r'temporal pooling \(temporal_pool=True\)'),
    ('block shift', {'backbone.layer1.0.net.conv1.conv.weight'},
     "a shift of the whole block \\(shift_place='block'\\)"),
])
def test_mmaction2_parts_this_network_lacks_are_one_line(part, names, about):
    state = src.random_state(src.Mmaction2Names(18), 18, CLASSES)
    state.update({n: np.zeros((1,), np.float32) for n in names})
    with pytest.raises(WeightsError, match=rf'^w.pth: mmaction2 weights of a network with '
                                           rf'{about}, which this TSM does not have') as err:
        convert_state(state, TSM(num_classes=CLASSES, depth=18), where='w.pth')
    assert '\n' not in str(err.value)


def test_torchvision_imagenet_as_tsn(tmp_path, clip):
    torch = pytest.importorskip('torch')
    names = src.TorchvisionNames(18)
    state = src.random_state(names, 18, 10, seed=6)
    path = str(tmp_path / 'resnet18.pth')
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    ref = src.torch_forward(state, names, 18, clip, SEG, shift=False)
    model = TSM(num_classes=10, seg_num=SEG, depth=18, shift_mode='none')
    load_for_inference(model, path)
    assert_close(logits(model, clip), ref)


def test_paddle_vision_resnet_as_tsn(tmp_path, clip):
    paddle.seed(7)
    net = paddle.vision.models.resnet18(num_classes=10)
    net.eval()
    with paddle.no_grad():
        frames = net(paddle.to_tensor(clip.reshape(-1, 3, 32, 32))).numpy()
    ref = frames.reshape(2, SEG, 10).mean(1)
    model = TSM(num_classes=10, seg_num=SEG, depth=18, shift_mode='none')
    path = str(tmp_path / 'r18.pdparams')
    paddle.save(net.state_dict(), path)
    load_for_inference(model, path)
    assert_close(logits(model, clip), ref)


def test_detect_format():
    assert detect_format(src.random_state(src.PaddleVideoNames(18), 18, 2)) == 'paddlevideo'
    assert detect_format(src.random_state(src.FluidNames(18), 18, 2)) == 'fluid'
    assert detect_format(src.random_state(src.MitNames(18), 18, 2)) == 'mit'
    assert detect_format(src.random_state(src.TorchvisionNames(18), 18, 2)) == 'torchvision'
    assert detect_format(src.random_state(src.Mmaction2Names(18), 18, 2)) == 'mmaction2'
    assert detect_format(TSM(num_classes=2, depth=18).state_dict()) == 'native'
    with pytest.raises(ValueError, match=r'unrecognised weight layout \(2 parameters: '
                                         r'encoder.weight, decoder.bias\)'):
        detect_format(['encoder.weight', 'decoder.bias'])


def test_file_that_does_not_fit_lists_names(tmp_path):
    model = TSM(num_classes=CLASSES, depth=50)
    r50 = src.random_state(src.PaddleVideoNames(50), 50, CLASSES)
    r50['backbone.extra.weight'] = np.zeros(3, np.float32)
    del r50['backbone.res2a.conv2._conv.weight']
    r50['backbone.res2a.conv0._conv.weight'] = np.zeros((64, 64, 3, 3), np.float32)
    r50['head.fc.weight'] = np.zeros((512, CLASSES), np.float32)
    with pytest.raises(ValueError) as err:
        load_for_inference(model, paddle_file(tmp_path, r50))
    msg = str(err.value)
    assert 'paddlevideo weights do not fit the model' in msg
    assert 'missing in file (1): layer1.0.conv3.weight' in msg
    assert 'unexpected in file (1): backbone.extra.weight' in msg
    assert ('shape mismatch layer1.0.conv1.weight (file name backbone.res2a.conv0._conv.'
            'weight): file [64, 64, 3, 3] vs model [64, 64, 1, 1]') in msg
    assert 'fc.weight (file name head.fc.weight): file [512, 5] vs model [2048, 5]' in msg


@pytest.mark.parametrize('layout', ['paddlevideo', 'checkpoint'])
@pytest.mark.parametrize('for_training', [False, True])
def test_weights_of_another_depth_say_the_override_in_one_line(tmp_path, layout, for_training):
    # fine-tuning cannot load them either: one line naming the setting that fits, not a
    # warning followed by every name of the two networks
    if layout == 'paddlevideo':
        spec = paddle_file(tmp_path, src.random_state(src.PaddleVideoNames(18), 18, CLASSES))
    else:
        spec = str(tmp_path / 'TSM_best')
        write_weights(spec, TSM(num_classes=CLASSES, depth=18))
    load = load_for_training if for_training else load_for_inference
    with pytest.raises(WeightsError) as err:
        load(TSM(num_classes=CLASSES, depth=50), spec)
    message = str(err.value)
    assert message.endswith('the weights are of a network with MODEL.depth=18, the config '
                            'builds MODEL.depth=50: set -o MODEL.depth=18 (or start from '
                            'weights of the configured network)')
    assert '\n' not in message


def test_class_count_differs(tmp_path, clip, caplog):
    names = src.PaddleVideoNames(50)
    state = src.random_state(names, 50, 7, seed=8)
    path = paddle_file(tmp_path, state)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=50)
    with pytest.raises(ValueError, match=r'shape mismatch fc.weight \(file name head.fc.'
                                         r'weight\): file \[2048, 7\] vs model \[2048, 5\]'):
        load_for_inference(model, path)
    fc_before = model.fc.weight.numpy().copy()
    with caplog.at_level(logging.WARNING):
        load_for_training(model, path)
    assert 'classifier not loaded (fc.weight: file [2048, 7] vs model [2048, 5]' in caplog.text
    assert np.array_equal(model.fc.weight.numpy(), fc_before)
    # The backbone is the source's: features equal up to the fold order.
    conv1 = state['backbone.conv._conv.weight']
    assert np.array_equal(model.conv1.weight.numpy(), np.concatenate(
        [conv1[8:16], conv1[:8], conv1[16:]]))


def test_shift_that_differs_from_the_source(tmp_path, caplog):
    state = src.random_state(src.PaddleVideoNames(18), 18, CLASSES)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18, shift_ratio=0.25)
    with pytest.raises(ValueError, match=r'layer1.0: the source shifts folds \(8, 8\) of 64 '
                                         r'channels, the model \(16, 16\)'):
        convert_state(state, model)
    online = TSM(num_classes=CLASSES, seg_num=SEG, depth=18, shift_mode='online')
    with pytest.raises(ValueError, match="shift_mode=\\['online'\\]"):
        convert_state(state, online)
    with caplog.at_level(logging.WARNING):
        convert_state(state, online, for_training=True)
    assert "shift_mode=['online']" in caplog.text
    sparse = TSM(num_classes=CLASSES, seg_num=SEG, depth=18, shift_every=2)
    with pytest.raises(ValueError, match='shifts 8 of the 8 blocks, the model 4: '
                                         'set MODEL.shift_every: 1'):
        convert_state(state, sparse)


def test_pth_without_torch(tmp_path, monkeypatch):
    path = tmp_path / 'w.pth'
    with open(path, 'wb') as f:
        f.write(b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.')
    monkeypatch.setitem(sys.modules, 'torch', None)
    with pytest.raises(WeightsError, match=r'w.pth is a PyTorch file; .*"pip install torch"'):
        convert_file(str(path), TSM(num_classes=2, depth=18))


def test_command_line_writes_our_weights_folder(tmp_path, clip):
    names = src.FluidNames(18)
    state = src.random_state(names, 18, CLASSES, seed=9)
    ref = src.paddle_forward(state, names, 18, clip, SEG, 1.0 / 8)
    dst = str(tmp_path / 'ours')
    main([paddle_file(tmp_path, state), dst, '--depth', '18', '--num_classes', str(CLASSES)])
    assert sorted(os.listdir(dst)) == ['model.pdparams', 'state.json']
    assert read_state(dst)['model']['depth'] == 18
    # a plain state dict under our names: paddle.load and set_state_dict take it as it is
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
    model.set_state_dict(paddle.load(os.path.join(dst, 'model.pdparams')))
    assert_close(logits(model, clip), ref)
    model = TSM(num_classes=CLASSES, seg_num=SEG, depth=18)
    load_for_inference(model, dst)
    assert_close(logits(model, clip), ref)


@pytest.mark.parametrize('flags, words', [
    (['--depth', '7'], '--depth: expected one of [18, 34, 50, 101, 152], got 7'),
    (['--num_classes', '0'], '--num_classes: expected an int >= 1, got 0'),
    (['--shift_ratio', 'nan'], '--shift_ratio: expected a value in (0, 0.5], got nan'),
])
def test_command_line_bad_flag_is_one_line(tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / 'w.pdparams'), str(tmp_path / 'out'), *flags])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.splitlines()[-1].endswith(words)
    assert 'Traceback' not in err


def test_command_line_unreadable_file_is_one_line(tmp_path, capsys):
    (tmp_path / 'text.pdparams').write_text('not weights\n')
    for name, words in (('none.pdparams', 'no such weight file'),
                        ('text.pdparams', 'not a Paddle weight file')):
        assert main([str(tmp_path / name), str(tmp_path / 'out'), '--depth', '18']) == 1
        err = capsys.readouterr().err
        assert err.startswith(f'ERROR {tmp_path / name}: {words}') and err.count('\n') == 1
    assert not (tmp_path / 'out').exists()
