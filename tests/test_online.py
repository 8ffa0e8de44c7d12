"""Online TSM: streaming equals the offline online-mode model, export, buffers, streams, CLI."""
import json

import cv2
import numpy as np
import paddle
import pytest
import yaml

from configs import cli
from models import TSM
from models.fused import ShiftConv
from models.deploy.step import export_online_step
from models.online import OnlineStep, OnlineTSM
from reader.stream import StreamError, frame_transform, stream_frames
from reader.transforms import test_transform
from tests.videos import read_index, write_index_video

SIZE = 32
DATA = {'short_size': SIZE, 'target_size': SIZE,
        'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'resize': 'cv2'}


def randomize_bn(model, seed):
    """Random BatchNorm affine and running statistics, so eval mode is not an identity.

    The last BN of each residual branch gets a small scale, as in a trained ResNet: the
    logits stay within about +-10 (R50 would reach hundreds otherwise), the scale at which
    the 1e-5 bounds below are meant.
    """
    rng = np.random.RandomState(seed)
    branch_ends = {id(getattr(b, 'bn3', None) or b.bn2)
                   for k in range(1, 5) for b in getattr(model, f'layer{k}')}
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            c = layer.weight.shape[0]
            low, high = (0.1, 0.3) if id(layer) in branch_ends else (0.5, 1.5)
            layer.weight.set_value(rng.uniform(low, high, c).astype('float32'))
            layer.bias.set_value(rng.uniform(-0.2, 0.2, c).astype('float32'))
            layer._mean.set_value(rng.uniform(-0.2, 0.2, c).astype('float32'))
            layer._variance.set_value(rng.uniform(0.5, 2.0, c).astype('float32'))


def online_model(seg_num=8, depth=18, shift_place='residual', num_classes=5, state=None,
                 shift_every=1, backbone='resnet'):
    paddle.seed(0)
    model = TSM(num_classes=num_classes, seg_num=seg_num, depth=depth, shift_mode='online',
                shift_place=shift_place, shift_every=shift_every, dropout=0.0,
                backbone=backbone)
    if state is None:
        randomize_bn(model, 1)
    else:
        model.set_state_dict(state)
    model.eval()
    return model


def clips(n, t, seed):
    return np.random.RandomState(seed).randn(n, t, 3, SIZE, SIZE).astype('float32')


def stream(engine, x):
    return np.stack([engine.step(paddle.to_tensor(x[:, t])).numpy()
                     for t in range(x.shape[1])], axis=1)


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('shift_place', ['residual', 'inplace'])
@pytest.mark.parametrize('batch', [1, 2])
def test_stream_equals_offline_frame_scores(depth, shift_place, batch):
    base = online_model(depth=depth, shift_place=shift_place)
    engine = OnlineTSM(base, SIZE, batch_size=batch)
    for t in (1, 3, 8):
        offline = online_model(t, depth, shift_place, state=base.state_dict())
        x = clips(batch, t, seed=t)
        expected = offline.frame_scores(paddle.to_tensor(x)).numpy()
        engine.reset()
        np.testing.assert_allclose(stream(engine, x), expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(engine.clip_scores().numpy(), expected.mean(1),
                                   rtol=0, atol=1e-5)
        assert engine.num_frames == t


@pytest.mark.parametrize('shift_place', ['residual', 'inplace'])
def test_stream_with_shift_every_equals_offline_frame_scores(shift_place):
    # R50 (3, 4, 6, 3 blocks) shifting blocks 0, 2, ... of each stage: 2 + 2 + 3 + 2 buffers.
    base = online_model(depth=50, shift_place=shift_place, shift_every=2)
    engine = OnlineTSM(base, SIZE)
    # Block inputs at 32x32 (channels, side): layer1.0 (64, 8), layer1.2 (256, 8), layer2.0
    # (256, 8), layer2.2 (512, 4), layer3.0 (512, 4), layer3.2/4 (1024, 2), layer4.0
    # (1024, 2), layer4.2 (2048, 1); fold = C / 8.
    inputs = [(64, 8), (256, 8), (256, 8), (512, 4), (512, 4), (1024, 2), (1024, 2),
              (1024, 2), (2048, 1)]
    assert engine.shapes == [[1, c // 8, s, s] for c, s in inputs]
    for t in (1, 5):
        offline = online_model(t, 50, shift_place, state=base.state_dict(), shift_every=2)
        x = clips(1, t, seed=10 + t)
        expected = offline.frame_scores(paddle.to_tensor(x)).numpy()
        engine.reset()
        np.testing.assert_allclose(stream(engine, x), expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(engine.clip_scores().numpy(), expected.mean(1),
                                   rtol=0, atol=1e-5)
    # The unshifted blocks matter: shifting every block streams other logits.
    every = online_model(5, 50, shift_place, state=base.state_dict())
    assert np.abs(every.frame_scores(paddle.to_tensor(x)).numpy() - expected).max() > 1e-3


def test_reset_leaves_nothing_of_the_previous_clip():
    model = online_model()
    first, second = clips(2, 6, seed=3), clips(2, 6, seed=4)
    engine = OnlineTSM(model, SIZE, batch_size=2)
    stream(engine, first)
    engine.reset()
    again = stream(engine, second)
    fresh = stream(OnlineTSM(model, SIZE, batch_size=2), second)
    np.testing.assert_array_equal(again, fresh)
    # a running sum in float32 against numpy's mean: equal up to rounding
    np.testing.assert_allclose(engine.clip_scores().numpy(), fresh.mean(1), rtol=1e-6, atol=1e-6)
    # Without the reset the first frame would see the last clip's features.
    stream(engine, first)
    assert np.abs(stream(engine, second)[:, 0] - fresh[:, 0]).max() > 1e-3


def test_window_averages_the_last_frames():
    model = online_model()
    x = clips(1, 5, seed=5)
    engine = OnlineTSM(model, SIZE, window=2)
    frames = stream(engine, x)
    np.testing.assert_allclose(engine.clip_scores().numpy(), frames[:, 3:].mean(1),
                               rtol=0, atol=1e-6)


def test_buffer_shapes_and_bytes_by_hand():
    # ResNet-18 at 32x32: stem -> 8x8; each block's input (channels, side): layer1 (64, 8) x2,
    # layer2 (64, 8) (128, 4), layer3 (128, 4) (256, 2), layer4 (256, 2) (512, 1); fold = C / 8.
    engine = OnlineTSM(online_model(), SIZE, batch_size=3)
    inputs = [(64, 8), (64, 8), (64, 8), (128, 4), (128, 4), (256, 2), (256, 2), (512, 1)]
    assert engine.shapes == [[3, c // 8, s, s] for c, s in inputs]
    assert engine.buffer_bytes() == 3 * 4 * (3 * 8 * 64 + 2 * 16 * 16 + 2 * 32 * 4 + 64)
    assert engine.buffer_bytes() == 3 * 9472


def test_refuses_bidirectional_training_mode_and_wrong_frames():
    paddle.seed(0)
    with pytest.raises(ValueError, match="shift_mode='online'.*'bidirectional'"):
        OnlineTSM(TSM(num_classes=5, seg_num=4, depth=18), SIZE)
    with pytest.raises(ValueError, match="has shift_mode 'none'"):
        OnlineTSM(TSM(num_classes=5, seg_num=4, depth=18, shift_mode='none'), SIZE)
    for mode in ('bidirectional', 'none'):
        with pytest.raises(ValueError, match=f"shift_mode='online'.*'{mode}'"):
            OnlineTSM(TSM(num_classes=5, seg_num=4, depth=18, shift_mode=mode,
                          shift_every=2), SIZE)
    model = online_model()
    engine = OnlineTSM(model, SIZE, batch_size=2)
    with pytest.raises(ValueError, match=r'expected frames of shape \[2, 3, 32, 32\]'):
        engine.step(paddle.zeros([1, 3, SIZE, SIZE]))
    with pytest.raises(RuntimeError, match='clip_scores: no frame'):
        engine.clip_scores()
    model.train()
    with pytest.raises(RuntimeError, match='model.eval'):
        engine.step(paddle.zeros([2, 3, SIZE, SIZE]))
    # Sizing the buffers of a training-mode model leaves its BatchNorm statistics alone.
    before = model.bn1._mean.numpy().copy()
    OnlineTSM(model, SIZE)
    assert model.training
    np.testing.assert_array_equal(model.bn1._mean.numpy(), before)


def test_resnet_vd_streams_and_merges():
    # PP-TSM's backbone (three-conv stem, pooled shortcuts, leaky ReLU) streams as the plain
    # one does, and its merged step (the exported form) computes the same.
    base = online_model(depth=50, backbone='resnet_vd')
    offline = online_model(5, 50, state=base.state_dict(), backbone='resnet_vd')
    x = clips(1, 5, seed=21)
    expected = offline.frame_scores(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(stream(OnlineTSM(base, SIZE), x), expected, rtol=0, atol=1e-5)
    step, merged = OnlineStep(base), OnlineStep(base, merge=True)
    assert sum(isinstance(m, ShiftConv) for m in merged.merged) == 16
    buffers = merged_buffers = [paddle.zeros(s) for s in step.buffer_shapes(SIZE)]
    with paddle.no_grad():
        for t in range(5):
            frame = paddle.to_tensor(x[:, t])
            want, buffers = step(frame, buffers)
            got, merged_buffers = merged(frame, merged_buffers)
            np.testing.assert_allclose(got.numpy(), expected[:, t], rtol=0, atol=1e-5)
            np.testing.assert_allclose(want.numpy(), expected[:, t], rtol=0, atol=1e-5)


@pytest.mark.parametrize('shift_place', ['residual', 'inplace'])
def test_merged_step_equals_step(shift_place):
    # The exported step merges each residual shift into conv1 (models.fused); in-place
    # blocks keep the splice. Same logits and buffers frame after frame.
    model = online_model(depth=50, shift_place=shift_place, shift_every=2)
    step, merged = OnlineStep(model), OnlineStep(model, merge=True)
    assert sum(isinstance(m, ShiftConv) for m in merged.merged) == (
        9 if shift_place == 'residual' else 0)
    x = clips(2, 4, seed=8)
    shapes = step.buffer_shapes(SIZE, batch_size=2)
    buffers = merged_buffers = [paddle.zeros(s) for s in shapes]
    with paddle.no_grad():
        for t in range(4):
            frame = paddle.to_tensor(x[:, t])
            want, buffers = step(frame, buffers)
            got, merged_buffers = merged(frame, merged_buffers)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-5)
            for a, b in zip(merged_buffers, buffers):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-5)


def test_exported_step_with_paddle_inference_equals_engine(tmp_path):
    from paddle import inference
    model = online_model()
    engine = OnlineTSM(model, SIZE, batch_size=2)
    model_file = export_online_step(model, str(tmp_path / 'online_step'), SIZE)
    config = inference.Config(model_file, str(tmp_path / 'online_step.pdiparams'))
    config.disable_gpu()
    predictor = inference.create_predictor(config)
    names = predictor.get_input_names()
    assert names == ['frame'] + [f'buffer{i}' for i in range(len(engine.shapes))]
    x = clips(2, 6, seed=6)
    buffers = [np.zeros(s, 'float32') for s in engine.shapes]
    for t in range(6):
        expected = engine.step(paddle.to_tensor(x[:, t])).numpy()
        for name, value in zip(names, [x[:, t]] + buffers):
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(value))
        predictor.run()
        logits, *buffers = [predictor.get_output_handle(n).copy_to_cpu()
                            for n in predictor.get_output_names()]
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
        for got, kept in zip(buffers, engine.buffers):
            np.testing.assert_allclose(got, kept.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize('codec', ['h264', 'mp4v'])
def test_stream_yields_every_frame_in_order_with_times(tmp_path, codec):
    path = write_index_video(str(tmp_path / 'v.mp4'), 13, fps=25, codec=codec)
    seen = [(i, t, read_index(frame), frame.shape) for i, t, frame in stream_frames(path)]
    assert [s[0] for s in seen] == list(range(13))
    assert [s[2] for s in seen] == list(range(13))
    np.testing.assert_allclose([s[1] for s in seen], np.arange(13) / 25, rtol=0, atol=1e-9)
    assert {s[3] for s in seen} == {(48, 64, 3)}


def test_a_frame_folder_streams_at_the_rate_given(tmp_path):
    """Jester's <id>/00001.jpg ...: each frame as OpenCV decodes its JPEG, in order, at
    index / fps seconds; without a rate the folder is refused naming --fps."""
    import cv2
    folder = tmp_path / '17'
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(1, 6):
        cv2.imwrite(str(folder / f'{i:05d}.jpg'), rng.integers(0, 256, (24, 32, 3), np.uint8))
    seen = list(stream_frames(str(folder), fps=12))
    assert [i for i, _, _ in seen] == list(range(5))
    np.testing.assert_allclose([t for _, t, _ in seen], np.arange(5) / 12, rtol=0, atol=1e-12)
    for i, _, frame in seen:
        want = cv2.imread(str(folder / f'{i + 1:05d}.jpg'))[:, :, ::-1]
        np.testing.assert_array_equal(frame, want)
    for fps in (None, 0, -1, float('nan')):
        with pytest.raises(StreamError, match='give its frames per second with --fps'):
            next(stream_frames(str(folder), fps=fps))


def test_stream_errors_and_frame_transform(tmp_path):
    with pytest.raises(StreamError, match='no such video file'):
        next(stream_frames(str(tmp_path / 'missing.mp4')))
    frame = np.random.RandomState(0).randint(0, 256, (48, 64, 3)).astype(np.uint8)
    out = frame_transform(frame, DATA)
    assert out.shape == (3, SIZE, SIZE) and out.dtype == np.float32
    np.testing.assert_array_equal(out, test_transform(frame[None], SIZE, SIZE, 1, DATA['mean'],
                                                      DATA['std'])[0, 0])
    # DATA.resize reaches the stream and the windows as it reaches the dataset's test clips
    pil = frame_transform(frame, dict(DATA, resize='pil'))
    np.testing.assert_array_equal(pil, test_transform(frame[None], SIZE, SIZE, 1, DATA['mean'],
                                                      DATA['std'], 'pil')[0, 0])
    assert not np.array_equal(pil, out)


def write_setup(tmp_path, shift_mode='online', num_frames=6):
    """A tiny online config, random weights, label names and an index video."""
    model = online_model(num_frames, num_classes=3)
    paddle.save(model.state_dict(), str(tmp_path / 'w.pdparams'))
    (tmp_path / 'labels.txt').write_text('walk\nrun\njump\n')
    cfg = {'MODEL': {'num_classes': 3, 'seg_num': num_frames, 'depth': 18,
                     'shift_mode': shift_mode, 'dropout': 0.0},
           'DATA': {'short_size': SIZE, 'target_size': SIZE},
           'INFER': {'label_file': str(tmp_path / 'labels.txt'),
                     'weights': str(tmp_path / 'w.pdparams'),
                     'save_dir': str(tmp_path / 'out')}}
    (tmp_path / 'cfg.yaml').write_text(yaml.safe_dump(cfg))
    video = write_index_video(str(tmp_path / 'v.mp4'), num_frames, fps=25, codec='h264')
    return model, video


def run_predict(tmp_path, video, *flags, exported=False):
    """predict.py --online on the setup; the dynamic graph unless `exported` (the default
    path, which builds the exported step: the tests of its rules and outputs leave it)."""
    import predict
    return predict.main(['--online', '--config', str(tmp_path / 'cfg.yaml'), '--video_path',
                         video, '--use_gpu', 'False', *flags]
                        + ([] if exported or '--dynamic' in flags else ['--dynamic']))


def test_predict_online_prints_each_frame_and_writes_json(tmp_path, capsys):
    model, video = write_setup(tmp_path)
    assert run_predict(tmp_path, video) == 0
    out = capsys.readouterr().out.strip().splitlines()
    lines = [line for line in out if line.startswith('frame')]
    assert [line.split(':')[0] for line in lines] == [
        f'frame {i} {i / 25:.2f}s' for i in range(6)]
    assert out[len(lines):] and all(line.startswith('segment') for line in out[len(lines):])
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        records = json.load(f)['frames']
    assert [r['frame'] for r in records] == list(range(6))
    assert [r['time'] for r in records] == [round(i / 25, 4) for i in range(6)]
    # The offline model on the same transformed frames gives the same per-frame and
    # running predictions.
    frames = [frame_transform(f, DATA) for _, _, f in stream_frames(video)]
    scores = model.frame_scores(paddle.to_tensor(np.stack(frames)[None]))[0]
    probs = paddle.nn.functional.softmax(scores, axis=-1).numpy()
    running = paddle.nn.functional.softmax(paddle.cumsum(scores, axis=0) /
                                           paddle.arange(1, 7, dtype='float32')[:, None]).numpy()
    for t, r in enumerate(records):
        assert r['label'] == probs[t].argmax()
        assert r['name'] == ['walk', 'run', 'jump'][r['label']]
        assert r['score'] == pytest.approx(probs[t].max(), abs=2e-6)
        assert r['running_label'] == running[t].argmax()
        assert r['running_score'] == pytest.approx(running[t].max(), abs=2e-6)
    assert lines[-1].endswith(f"{records[-1]['running_name']} {records[-1]['running_score']:.3f}")


def test_predict_online_every_and_offline_config(tmp_path, capsys):
    _, video = write_setup(tmp_path)
    assert run_predict(tmp_path, video, '--every', '4') == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('frame')]
    assert [line.split(' ')[1] for line in lines] == ['0', '4']
    _, video = write_setup(tmp_path, shift_mode='bidirectional')
    with pytest.raises(cli.UsageError, match='shift_mode: online.*online config'):
        run_predict(tmp_path, video)


def test_predict_online_stride_and_window(tmp_path, capsys):
    model, video = write_setup(tmp_path)
    assert run_predict(tmp_path, video, '-o', 'INFER.online_stride=2',
                       '-o', 'INFER.online_window=2') == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('frame')]
    assert [line.split(' ')[1] for line in lines] == ['0', '2', '4']
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        records = json.load(f)['frames']
    assert [r['frame'] for r in records] == [0, 2, 4]
    # frames 0, 2, 4 fed one after the other; the running prediction averages the last two
    frames = [frame_transform(f, DATA) for i, _, f in stream_frames(video) if i % 2 == 0]
    clip = paddle.to_tensor(np.stack(frames + frames[-1:] * 3)[None])  # seg_num 6
    scores = model.frame_scores(clip)[0, :3]
    windowed = paddle.stack([scores[0], scores[:2].mean(0), scores[1:3].mean(0)])
    running = paddle.nn.functional.softmax(windowed, axis=-1).numpy()
    for t, r in enumerate(records):
        assert r['running_label'] == running[t].argmax()
        assert r['running_score'] == pytest.approx(running[t].max(), abs=2e-6)
    with pytest.raises(cli.ConfigError,  # at config load, before any model is built
                       match='INFER.online_stride: expected an int >= 1, got 0'):
        run_predict(tmp_path, video, '-o', 'INFER.online_stride=0')


def test_predict_online_writes_a_timeline_and_an_annotated_video(tmp_path, capsys):
    _, video = write_setup(tmp_path)
    out = str(tmp_path / 'labelled.mp4')
    assert run_predict(tmp_path, video, '--annotate', out) == 0
    timeline = json.load(open(tmp_path / 'out' / 'TSM_timeline.json'))
    records = json.load(open(tmp_path / 'out' / 'TSM_online.json'))['frames']
    assert timeline['segments'][0]['start'] == 0 and timeline['segments'][-1]['end'] > 0.2
    assert {s['label'] for s in timeline['segments']} <= {r['running_label'] for r in records}
    assert [i for i, _, _ in stream_frames(out)] == list(range(6))  # every input frame


def test_predict_online_applies_the_live_rules(tmp_path, capsys):
    """INFER.online_ignore / online_merge by class name: an ignored class is never the running
    label, a merged one never either (it counts as its target); a name the label file lacks
    is one error naming the key."""
    _, video = write_setup(tmp_path)
    assert run_predict(tmp_path, video, '-o', 'INFER.online_window=1') == 0
    plain = json.load(open(tmp_path / 'out' / 'TSM_online.json'))['frames']
    shown = {r['running_label'] for r in plain}
    ignored = max(shown, key=lambda k: sum(r['running_label'] == k for r in plain))
    names = ['walk', 'run', 'jump']
    assert run_predict(tmp_path, video, '-o', 'INFER.online_window=1', '-o',
                       f'INFER.online_ignore=[{names[ignored]}]') == 0
    records = json.load(open(tmp_path / 'out' / 'TSM_online.json'))['frames']
    assert ignored not in {r['running_label'] for r in records}
    target = (ignored + 1) % 3
    assert run_predict(tmp_path, video, '-o', 'INFER.online_window=1', '-o',
                       f'INFER.online_merge=[[{names[ignored]}, {names[target]}]]') == 0
    merged = json.load(open(tmp_path / 'out' / 'TSM_online.json'))['frames']
    for before, after in zip(plain, merged):
        if before['running_label'] == ignored:
            assert after['running_label'] == target
            assert after['running_score'] > before['running_score']
    with pytest.raises(cli.UsageError, match="INFER.online_ignore: no class named 'fly'"):
        run_predict(tmp_path, video, '-o', 'INFER.online_ignore=[fly]')


def test_predict_online_runs_the_cached_exported_step_by_default(tmp_path, capsys):
    _, video = write_setup(tmp_path)
    runs = {}
    for flags in ([], ['--dynamic'], []):
        assert run_predict(tmp_path, video, *flags, exported=True) == 0
        with open(tmp_path / 'out' / 'TSM_online.json') as f:
            runs.setdefault(tuple(flags), []).append(json.load(f))
    exported, dynamic = runs[()][0], runs[('--dynamic',)][0]
    assert exported['engine'] == 'Paddle Inference (CPU, fp32)'
    assert dynamic['engine'] == 'the dynamic graph'
    assert exported['ms_per_frame'] > 0 and dynamic['ms_per_frame'] > 0
    for a, b in zip(exported['frames'], dynamic['frames']):
        assert (a['label'], a['running_label']) == (b['label'], b['running_label'])
        assert a['score'] == pytest.approx(b['score'], abs=1e-4)
    # built once, checked frame by frame against the dynamic stream, then taken from the cache
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert out.count('building the exported online step') == 1
    assert out.count('6 streamed frames equal the dynamic stream') == 1
    assert runs[()][1]['frames'] == exported['frames']
    assert out.count('ms a frame on Paddle Inference (CPU, fp32)') == 2


def test_show_draws_each_fed_frame_with_the_label_score_and_rate(tmp_path, monkeypatch):
    import predict
    _, video = write_setup(tmp_path)
    shown, calls = [], []
    monkeypatch.setenv('DISPLAY', ':0')
    monkeypatch.setattr(predict.cv2, 'namedWindow', lambda *a: calls.append('open'))
    monkeypatch.setattr(predict.cv2, 'destroyWindow', lambda *a: calls.append('close'))
    monkeypatch.setattr(predict.cv2, 'imshow', lambda name, image: shown.append(image.copy()))
    keys = iter([-1, -1, -1, ord('q')])  # q on the 4th frame closes the window
    monkeypatch.setattr(predict.cv2, 'waitKey', lambda delay: next(keys))
    assert run_predict(tmp_path, video, '--show', '--dynamic') == 0
    assert len(shown) == 4 and calls[-1] == 'close'  # the stream ended with the window
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        assert len(json.load(f)['frames']) == 4
    plain = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for _, _, f in stream_frames(video)]
    for image, frame in zip(shown, plain):
        assert image.shape == frame.shape
        changed = np.abs(image.astype(int) - frame).max(axis=2) > 0
        assert changed[:image.shape[0] // 3].any() and not changed[-4:].any()  # top left only


def test_show_without_a_window_is_one_line(tmp_path, monkeypatch):
    import predict
    _, video = write_setup(tmp_path)
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    with pytest.raises(cli.UsageError, match=r'--show needs a display .*--annotate OUT.mp4'):
        run_predict(tmp_path, video, '--show')
    monkeypatch.setenv('DISPLAY', ':0')

    def no_gui(*args):
        raise predict.cv2.error('The function is not implemented')
    monkeypatch.setattr(predict.cv2, 'namedWindow', no_gui)
    with pytest.raises(cli.UsageError, match=r'pip install opencv-python \(in place of '
                                             r'opencv-python-headless\)'):
        run_predict(tmp_path, video, '--show')
    with pytest.raises(cli.UsageError, match='--show goes with --online'):
        predict.main(['--config', str(tmp_path / 'cfg.yaml'), '--video_path', video, '--show'])


COLOURS = [(220, 40, 40), (40, 200, 60), (50, 60, 230), (230, 220, 40)]  # red green blue yellow


def colour_frames(colour, count, seed):
    rng = np.random.default_rng(seed)
    base = np.zeros((48, 64, 3), np.float32) + colour
    return [np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
            for _ in range(count)]


def colour_model(tmp_path):
    """An online ResNet-18 whose classifier tells the four colours apart: class k's weights
    are colour k's pooled features (centred), so the argmax of a frame is its colour."""
    model = online_model(4, num_classes=4)
    pooled = []
    hook = model.avgpool.register_forward_post_hook(lambda l, i, o: pooled.append(o))
    features = []
    with paddle.no_grad():
        for k, colour in enumerate(COLOURS):
            x = np.stack([frame_transform(f, DATA) for f in colour_frames(colour, 4, k)])
            pooled.clear()
            model.frame_scores(paddle.to_tensor(x[None]))
            features.append(paddle.flatten(pooled[0], 1).numpy().mean(0))
    hook.remove()
    features = np.stack(features)
    centred = features - features.mean(0)
    scale = 20 / np.abs(centred @ centred.T).max()
    model.fc.weight.set_value((scale * centred.T).astype('float32'))
    model.fc.bias.set_value((-scale * centred @ features.mean(0)).astype('float32'))
    paddle.save(model.state_dict(), str(tmp_path / 'w.pdparams'))
    return model


def test_the_running_label_of_a_long_stream_follows_its_clips_in_order(tmp_path):
    # 5 clips of 25 frames in a known order, one long video; the running label over a window
    # of 6 steps changes to each clip's class soon after it starts, where the mean since
    # the start lags ever further behind
    order = [0, 2, 1, 3, 0]
    frames = [f for i, k in enumerate(order) for f in colour_frames(COLOURS[k], 25, 10 + i)]
    video = str(tmp_path / 'long.mp4')
    import av
    with av.open(video, 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format='rgb24')))
        container.mux(stream.encode())
    write_setup(tmp_path, num_frames=4)  # its config, with four colours in place of 3 classes
    cfg = yaml.safe_load((tmp_path / 'cfg.yaml').read_text())
    cfg['MODEL']['num_classes'] = 4
    (tmp_path / 'labels.txt').write_text('red\ngreen\nblue\nyellow\n')
    (tmp_path / 'cfg.yaml').write_text(yaml.safe_dump(cfg))
    colour_model(tmp_path)

    def changes(window):
        assert run_predict(tmp_path, video, '-o', f'INFER.online_window={window}') == 0
        with open(tmp_path / 'out' / 'TSM_online.json') as f:
            records = json.load(f)['frames']
        assert [r['label'] for r in records] == [k for k in order for _ in range(25)]
        labels = [r['running_label'] for r in records]
        return [(t, k) for t, k in enumerate(labels) if t == 0 or k != labels[t - 1]]

    windowed = changes(6)
    assert [k for _, k in windowed] == order
    # each change within 3 frames after its clip starts (the window's majority flips at 3)
    assert all(0 <= t - 25 * i <= 3 for i, (t, _) in enumerate(windowed))
    since_start = changes(0)
    assert [k for _, k in since_start] != order  # the mean since the start misses clips


def test_predict_online_on_the_fastest_engine(tmp_path, monkeypatch):
    import engine as engines
    _, video = write_setup(tmp_path)
    monkeypatch.setenv('TSM_WEIGHTS_HOME', str(tmp_path / 'cache'))
    assert run_predict(tmp_path, video, '--dynamic') == 0
    dynamic = json.loads((tmp_path / 'out' / 'TSM_online.json').read_text())
    assert run_predict(tmp_path, video, '--engine', 'auto', exported=True) == 0
    fastest = json.loads((tmp_path / 'out' / 'TSM_online.json').read_text())
    kept = json.loads((tmp_path / 'cache' / 'exported' / 'engine_choice.json').read_text())
    (choice,) = kept.values()
    assert set(choice['ms']) == set(engines.installed_engines())  # each built, checked
    from models.deploy.engines import NAMES
    assert fastest['engine'] == f"{NAMES[choice['engine']]} (CPU, fp32)"
    for a, b in zip(fastest['frames'], dynamic['frames']):
        assert a['score'] == pytest.approx(b['score'], abs=1e-4)


@pytest.mark.parametrize('engine, name', [('onnxruntime', 'ONNX Runtime')])  # OpenVINO's
def test_predict_online_on_every_engine(tmp_path, capsys, engine, name):  # step: above, in auto
    pytest.importorskip(engine)
    _, video = write_setup(tmp_path)
    assert run_predict(tmp_path, video, '--dynamic') == 0
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        dynamic = json.load(f)
    assert run_predict(tmp_path, video, '-o', f'INFER.engine={engine}', exported=True) == 0
    with open(tmp_path / 'out' / 'TSM_online.json') as f:
        onnx = json.load(f)
    assert onnx['engine'] == f'{name} (CPU, fp32)'
    for a, b in zip(onnx['frames'], dynamic['frames']):
        assert (a['label'], a['running_label']) == (b['label'], b['running_label'])
        assert a['score'] == pytest.approx(b['score'], abs=1e-4)
    out = capsys.readouterr()
    checked = 'TSM_online_step.onnx: 6 streamed frames' if engine == 'onnxruntime' else \
        'TSM_online_step.onnx on openvino: 6 streamed frames'
    assert f'{checked} equal the dynamic stream' in out.err + out.out
    if engine == 'onnxruntime':
        with pytest.raises(cli.UsageError, match='INFER: precision bf16: ONNX Runtime runs the '
                                                 'model in fp32'):
            run_predict(tmp_path, video, '-o', 'INFER.engine=onnxruntime',
                        '-o', 'INFER.precision=bf16', exported=True)
        from configs.config import ConfigError
        with pytest.raises(ConfigError, match=r"INFER.engine: expected one of paddle, "
                                              r"onnxruntime, openvino, auto, got 'tvm'"):
            run_predict(tmp_path, video, '-o', 'INFER.engine=tvm')
