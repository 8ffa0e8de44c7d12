"""TSM on MobileNetV2: the original code's two layouts converted exactly (against forward
passes written as its code computes them, tests/source_mobilenet.py), streaming, the
inference form, the exported step and training."""
import os

import numpy as np
import paddle
import pytest

from models import TSM
from models.fused import ShiftConv, fuse_shifts
from models.online import OnlineStep, OnlineTSM
from models.weights import WeightsError, load_for_inference, load_for_training
from models.weights.convert import main as convert_main
from tests import source_mobilenet as src

SEG, CLASSES, SIZE = 8, 5, 64
SHIFTED = [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]  # the ten blocks that expand and add their input


def assert_close(ours, ref, bound=1e-4):
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err < bound, f'relative error {err:.2e}'


def frames(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def mobilenet(**kwargs):
    kwargs = {'num_classes': CLASSES, 'seg_num': SEG, 'backbone': 'mobilenet_v2', **kwargs}
    return TSM(**kwargs)


def k400_file(tmp_path, state):
    import torch
    path = str(tmp_path / 'TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_'
                          'dense.pth')
    torch.save({'epoch': 100, 'arch': 'mobilenetv2',
                'state_dict': {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}},
               path)
    return path


def online_file(tmp_path, state):
    import torch
    path = str(tmp_path / 'mobilenetv2_jester_online.pth.tar')
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)
    return path


@pytest.fixture(scope='module')
def online_state():
    return src.random_state(4, 27, 'online')


def scores(model, x):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def test_the_shift_sits_in_the_ten_blocks_that_expand_and_add_their_input():
    model = mobilenet()
    shifted = [b.index for b in model.blocks() if b.layer.shift is not None]
    assert shifted == SHIFTED
    assert [b.name for b in model.blocks()][::8] == ['layers.0', 'layers.8', 'layers.16']
    # width 1.0 with a 5-class head: the backbone's 2.22M parameters and 1280 * 5 + 5
    count = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    assert count == 2_223_872 + 1280 * CLASSES + CLASSES


def test_original_kinetics_mobilenet_converts_exactly(tmp_path):
    pytest.importorskip('torch')
    state = src.random_state(3, CLASSES, 'k400')
    assert sum('.conv.0.net.' in k for k in state) == 10
    x = frames((2, SEG, 3, SIZE, SIZE), 5)
    ref = src.k400_forward(state, x, SEG)
    model = mobilenet()
    load_for_inference(model, k400_file(tmp_path, state))
    assert_close(scores(model, x), ref)
    # Unshifted, the same weights give other scores: the shift is not a formality.
    plain = mobilenet(shift_mode='none')
    load_for_training(plain, k400_file(tmp_path, state))
    assert np.abs(scores(plain, x) - ref).max() / np.abs(ref).max() > 1e-2


def test_original_online_gesture_model_streams_exactly(tmp_path, online_state):
    pytest.importorskip('torch')
    x = frames((7, 3, SIZE, SIZE), 6)
    ref = src.online_forward(online_state, x)  # frame by frame from zero buffers
    model = mobilenet(num_classes=27, shift_mode='online')
    load_for_inference(model, online_file(tmp_path, online_state))
    model.eval()
    engine = OnlineTSM(model, SIZE)
    got = np.stack([engine.step(paddle.to_tensor(f[None])).numpy()[0] for f in x])
    assert_close(got, ref)
    # The offline form of the same model, over the 7 frames as one clip, is the stream.
    offline = mobilenet(num_classes=27, shift_mode='online', seg_num=7)
    offline.set_state_dict(model.state_dict())
    offline.eval()
    with paddle.no_grad():
        assert_close(offline.frame_scores(paddle.to_tensor(x[None])).numpy()[0], ref)


def test_a_shift_of_the_other_direction_is_refused_in_one_line(tmp_path, online_state):
    pytest.importorskip('torch')
    with pytest.raises(ValueError, match=r'from the previous frame only; the model has '
                                         r"shift_mode=\['bidirectional'\]"):
        load_for_inference(mobilenet(num_classes=27), online_file(tmp_path, online_state))
    state = src.random_state(3, CLASSES, 'k400')
    with pytest.raises(ValueError, match=r"shifts both ways; the model has "
                                         r"shift_mode=\['online'\]"):
        load_for_inference(mobilenet(shift_mode='online'), k400_file(tmp_path, state))


def test_resnet_settings_meet_mobilenet_weights_with_the_override(tmp_path, online_state):
    pytest.importorskip('torch')
    with pytest.raises(WeightsError, match=r'-o MODEL.backbone=mobilenet_v2'):
        load_for_training(TSM(num_classes=27, depth=18), online_file(tmp_path, online_state))
    with pytest.raises(ValueError, match=r"depth: .*leave depth at its default 50"):
        mobilenet(depth=18)
    with pytest.raises(ValueError, match=r'shift_every: .*expected 1, got 2'):
        mobilenet(shift_every=2)


def test_converter_cli_writes_the_online_model(tmp_path, online_state):
    pytest.importorskip('torch')
    out = tmp_path / 'jester'
    convert_main([online_file(tmp_path, online_state), str(out), '--backbone', 'mobilenet_v2',
                  '--shift_mode', 'online', '--num_classes', '27', '--seg_num', '3'])
    model = mobilenet(num_classes=27, shift_mode='online', seg_num=3)
    load_for_inference(model, str(out))
    model.eval()
    x = frames((3, 3, SIZE, SIZE), 9)
    with paddle.no_grad():
        got = model.frame_scores(paddle.to_tensor(x[None])).numpy()[0]
    assert_close(got, src.online_forward(online_state, x))


def converted_online(tmp_path, state, seg_num=SEG):
    model = mobilenet(num_classes=27, shift_mode='online', seg_num=seg_num)
    load_for_inference(model, online_file(tmp_path, state))
    model.eval()
    return model


def test_stream_and_merged_step_equal_the_offline_online_model(tmp_path, online_state):
    pytest.importorskip('torch')
    model = converted_online(tmp_path, online_state, seg_num=5)
    x = frames((2, 5, 3, SIZE, SIZE), 7)
    with paddle.no_grad():
        expected = model.frame_scores(paddle.to_tensor(x)).numpy()
    bound = 1e-5 * max(1.0, np.abs(expected).max())
    step, merged = OnlineStep(model), OnlineStep(model, merge=True)
    assert sum(isinstance(m, ShiftConv) for m in merged.merged) == 10
    shapes = step.buffer_shapes(SIZE, batch_size=2)
    # 1/8 of the input channels of each shifted block, at its resolution
    assert [s[1:] for s in shapes] == [[3, 16, 16], [4, 8, 8], [4, 8, 8], [8, 4, 4],
                                       [8, 4, 4], [8, 4, 4], [12, 4, 4], [12, 4, 4],
                                       [20, 2, 2], [20, 2, 2]]
    buffers = merged_buffers = [paddle.zeros(s) for s in shapes]
    engine = OnlineTSM(model, SIZE, batch_size=2)
    with paddle.no_grad():
        for t in range(5):
            frame = paddle.to_tensor(x[:, t])
            want, buffers = step(frame, buffers)
            got, merged_buffers = merged(frame, merged_buffers)
            streamed = engine.step(frame)
            for out in (want, got, streamed):
                np.testing.assert_allclose(out.numpy(), expected[:, t], rtol=0, atol=bound)


def test_inference_form_equals_the_model(tmp_path):
    pytest.importorskip('torch')
    model = mobilenet()
    load_for_inference(model, k400_file(tmp_path, src.random_state(3, CLASSES, 'k400')))
    fused = fuse_shifts(model)
    assert sum(isinstance(b.layer.conv1, ShiftConv) for b in fused.blocks()) == 10
    x = frames((1, SEG, 3, SIZE, SIZE), 8)
    assert_close(scores(fused, x), scores(model, x), 1e-5)


def test_one_training_step_reaches_every_parameter():
    paddle.seed(3)
    model = mobilenet(seg_num=4, dropout=0.0)
    model.train()
    optimizer = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    x = paddle.to_tensor(frames((2, 4, 3, 32, 32), 11))
    label = paddle.to_tensor(np.array([1, 3], 'int64'))
    loss = paddle.nn.functional.cross_entropy(model(x), label)
    loss.backward()
    assert np.isfinite(float(loss))
    silent = [p.name for p in model.parameters() if not p.stop_gradient and (p.grad is None or not np.abs(p.grad.numpy()).max() > 0)]
    assert silent == []
    before = model.fc.weight.numpy().copy()
    optimizer.step()
    assert np.abs(model.fc.weight.numpy() - before).max() > 0


def test_the_gesture_preset_streams_a_video_as_the_source_model(tmp_path, online_state,
                                                               capsys):
    pytest.importorskip('torch')
    import json
    import predict
    from configs.config import load_config
    from reader.stream import frame_transform, stream_frames
    from tests.videos import write_index_video
    # Doing other things wins every frame: the preset shows it as No gesture
    state = dict(online_state)
    state['classifier.bias'] = state['classifier.bias'] + 50 * (np.arange(27) == 0)
    state['classifier.bias'] = state['classifier.bias'].astype(np.float32)
    video = write_index_video(str(tmp_path / 'v.mp4'), 9, codec='h264')
    small = ['-o', 'DATA.short_size=72', '-o', 'DATA.target_size=64']  # a cheap frame size
    flags = ['-o', f'INFER.weights={online_file(tmp_path, state)}',
             '-o', f'INFER.save_dir={tmp_path / "out"}'] + small
    assert predict.main(['--online', '--config', 'configs/tsm_mv2_jester_online.yaml',
                         '--video_path', video, '--use_gpu', 'False', '--dynamic'] + flags) == 0
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        records = json.load(f)['frames']
    assert [r['frame'] for r in records] == [0, 2, 4, 6, 8]  # every 2nd frame, as the demo
    data = load_config('configs/tsm_mv2_jester_online.yaml', [s for s in small if s != '-o'])
    fed = np.stack([frame_transform(f, data['DATA']) for i, _, f in stream_frames(video)
                    if i % 2 == 0])
    ref = src.online_forward(state, fed)  # the source network from empty buffers
    probs = np.exp(ref - ref.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for r, p in zip(records, probs):
        assert r['label'] == p.argmax() and r['score'] == pytest.approx(p.max(), abs=1e-4)
        assert (r['label'], r['running_label'], r['running_name']) == (0, 2, 'No gesture')
    assert 'frame 8 0.32s: No gesture' in capsys.readouterr().out


def test_pptsm_mobilenet_converts_exactly(tmp_path):
    state = src.pptsm_state(12, CLASSES)
    x = frames((2, SEG, 3, SIZE, SIZE), 13)
    ref = src.pptsm_forward(state, x, SEG)
    path = str(tmp_path / 'ppTSM_mv2_k400.pdparams')
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, path)
    model = mobilenet(backbone='mobilenet_v2_pp')
    assert model.blocks()[0].layer.conv1.weight.shape == [32, 32, 1, 1]  # expands by 1
    load_for_inference(model, path)
    assert_close(scores(model, x), ref)
    # Without the fold swap between Paddle's shift and ours, the scores differ.
    from models.weights.convert import convert_state
    from models.weights.streams import permute_streams
    unswapped = mobilenet(backbone='mobilenet_v2_pp')
    converted = convert_state(state, model)
    swap_back = permute_streams(converted, model, lambda c: (c // 8, c // 8))
    unswapped.set_state_dict(swap_back)
    assert np.abs(scores(unswapped, x) - ref).max() / np.abs(ref).max() > 1e-2
    # The original's MobileNetV2 is another network: one line names the override.
    with pytest.raises(WeightsError, match=r'-o MODEL.backbone=mobilenet_v2_pp'):
        load_for_training(mobilenet(), path)


def readme_block(first_line):
    """The README's fenced block that begins with `first_line`."""
    text = open('README.md', encoding='utf-8').read()
    for block in text.split('```')[1::2]:
        lines = block.split('\n', 1)
        if len(lines) == 2 and lines[1].startswith(first_line):
            return lines[1]
    raise AssertionError(f'no README block starts with {first_line!r}')


def test_export_checks_the_online_step_on_every_runtime_and_the_readme_loop_needs_no_paddle(
        tmp_path, online_state, caplog):
    pytest.importorskip('torch')
    import subprocess
    import sys
    import export
    from configs.config import load_config
    cfg = load_config('configs/tsm_mv2_jester_online.yaml',  # a small clip model beside
                      ['DATA.short_size=72', 'DATA.target_size=64', 'MODEL.seg_num=2'])
    out = tmp_path / 'output' / 'export'
    with caplog.at_level('INFO'):
        written = export.export(cfg, online_file(tmp_path, online_state), str(out), onnx=True)
    assert os.path.basename(written['online_onnx']) == 'TSM_online_step.onnx'
    checked = [r.getMessage() for r in caplog.records if 'streamed frames equal' in r.message]
    assert [m.split(':')[0] for m in checked] == [written['online_step'], written['online_onnx']]
    # The README's loop, alone in a Python without paddle, on frames saved here
    x = frames((5, 1, 3, SIZE, SIZE), 14)
    np.save(tmp_path / 'frames.npy', x)
    code = ("import sys, numpy as np\nsys.modules['paddle'] = None  # no Paddle: importing it fails\n"
            "frames = np.load('frames.npy')\nseen = []\n"
            + readme_block('import numpy as np, onnxruntime').replace(
                'step.run(None', 'seen.append(0) or step.run(None')
            + "\nassert len(seen) == len(frames)\nnp.save('logits.npy', logits)\n")
    subprocess.run([sys.executable, '-c', code], cwd=tmp_path, check=True)
    model = converted_online(tmp_path, online_state)
    engine = OnlineTSM(model, SIZE)
    for frame in x:
        with paddle.no_grad():
            want = engine.step(paddle.to_tensor(frame)).numpy()
    assert_close(np.load(tmp_path / 'logits.npy'), want)


def test_train_and_eval_scripts_run_mobilenet(tmp_path):
    import json
    from tests.commands import run_sh
    from tests.tiny import make_demo_data, write_tiny_config
    data = make_demo_data(tmp_path / 'data', seed=3)
    config = write_tiny_config(tmp_path, data, MODEL={'backbone': 'mobilenet_v2', 'depth': 50},
                               TRAIN={'epoch': 1})
    run_sh('train', 'TSM', config, check=True)
    run_sh('eval', 'TSM', config, check=True)
    with open(tmp_path / 'eval' / 'TSM_eval.json') as f:
        result = json.load(f)
    assert result['num_videos'] == 6 and result['engine'] == 'paddle.inference'
    recorded = json.load(open(tmp_path / 'run' / 'TSM_best' / 'state.json'))['model']
    assert recorded['backbone'] == 'mobilenet_v2'


def write_gesture_folders(root, count, seed):
    """ROOT/<id>/00001.jpg ..., 4 frames of 40x48 each, as 20BN ships Jester."""
    import cv2
    rng = np.random.default_rng(seed)
    for video_id in range(1, count + 1):
        os.makedirs(root / str(video_id))
        for i in range(1, 5):
            cv2.imwrite(str(root / str(video_id) / f'{i:05d}.jpg'),
                        rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return root


def test_fine_tuning_the_gesture_model_on_own_gestures(tmp_path, online_state):
    """The README's commands: Jester-layout lists of 3 gestures, training from the gesture
    model (its features loaded as the source holds them, a new 3-class classifier), then the
    online stream with the run's weights naming the new gestures."""
    pytest.importorskip('torch')
    import json
    from tests.commands import command, run_sh
    root = write_gesture_folders(tmp_path / '20bn-jester-v1', 6, seed=5)
    names = ['Thumb Up', 'Waving', 'Fist']
    (tmp_path / 'labels.csv').write_text('\n'.join(names) + '\n')
    (tmp_path / 'train.csv').write_text('1;Thumb Up\n2;Waving\n3;Fist\n4;Waving\n')
    (tmp_path / 'validation.csv').write_text('5;Fist\n6;Thumb Up\n')
    lists = tmp_path / 'lists'
    status, out = command('data/make_lists.py', 'jester', str(root), '--labels',
                          str(tmp_path / 'labels.csv'), '--train', str(tmp_path / 'train.csv'),
                          '--val', str(tmp_path / 'validation.csv'), '--label_order', 'sorted',
                          '--out', str(lists))
    assert status == 0, out
    start = online_file(tmp_path, online_state)
    small = {'MODEL.num_classes': 3, 'MODEL.seg_num': 2, 'DATA.short_size': 40,
             'DATA.target_size': 32, 'DATA.data_root': str(root), 'DATA.num_workers': 0,
             'TRAIN.filelist': str(lists / 'train.list'), 'TRAIN.batch_size': 2,
             'TRAIN.epoch': 1, 'TRAIN.pretrain': start, 'TRAIN.log_interval': 0,
             'TRAIN.save_dir': str(tmp_path / 'run'), 'VALID.filelist': str(lists / 'val.list'),
             'VALID.batch_size': 2, 'INFER.label_file': str(lists / 'labels.txt'),
             'INFER.weights': str(tmp_path / 'run' / 'TSM_online_best'),
             'INFER.save_dir': str(tmp_path / 'predict')}
    flags = [f'{k}={v}' for k, v in small.items()]
    config = 'configs/tsm_mv2_jester_online.yaml'
    # the start: every feature as the source holds it, the classifier left out
    gestures, jester = mobilenet(num_classes=3, seg_num=2, shift_mode='online'), \
        mobilenet(num_classes=27, seg_num=2, shift_mode='online')
    load_for_training(gestures, start)
    load_for_inference(jester, start)
    ours, theirs = gestures.state_dict(), jester.state_dict()
    features = [k for k in theirs if not k.startswith('fc.')]
    assert len(features) > 200 and [k for k in theirs if k not in features] == ['fc.weight',
                                                                              'fc.bias']
    for k in features:
        np.testing.assert_array_equal(ours[k].numpy(), theirs[k].numpy())
    assert list(ours['fc.weight'].shape) == [1280, 3]
    proc = run_sh('train', 'TSM', config, *[f for flag in flags for f in ('-o', flag)],
                  check=True)
    assert 'classifier not loaded (fc.weight: file [1280, 27] vs model [1280, 3]' in \
        proc.stdout + proc.stderr
    state = json.load(open(tmp_path / 'run' / 'TSM_online_best' / 'state.json'))
    assert state['model']['backbone'] == 'mobilenet_v2' and state['model']['num_classes'] == 3
    video = str(root / '5')
    status, out = command('predict.py', '--online', '--config', config, '--video_path', video,
                          *[f for flag in flags for f in ('-o', flag)],
                          '-o', 'INFER.online_ignore=[]', '-o', 'INFER.online_merge=[]',
                          '-o', 'INFER.online_stride=1', '--fps', '12', '--use_gpu', 'False')
    assert status == 0, out
    records = json.load(open(tmp_path / 'predict' / 'TSM_online.json'))['frames']
    assert [r['frame'] for r in records] == [0, 1, 2, 3]
    assert [r['time'] for r in records] == pytest.approx([0, 1 / 12, 2 / 12, 3 / 12], abs=1e-4)
    assert {r['running_name'] for r in records} <= set(names)
