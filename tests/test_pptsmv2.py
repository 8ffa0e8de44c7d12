"""PP-TSMv2 (backbone 'pplcnet_v2'): PaddleVideo's layouts against the source's own forward
(tests/source_pptsmv2.py), the inference form with its folded blocks on every engine, and
its settings and published names."""
import functools
import os

import numpy as np
import paddle
import pytest

from configs.config import ConfigError, load_config
from models import TSM
from models.deploy.static import export_checked, relative_error
from models.deploy.predictor import Predictor, bf16_supported
from models.fused import fuse_shifts
from models.weights import (PUBLISHED, WeightsError, load_for_inference, load_for_training,
                            write_weights)
from models.weights.convert import convert_state
from tests import source_pptsmv2 as src

CLASSES, SIZE = 6, 32


@functools.lru_cache(maxsize=None)
def source_state(classes, seg_num, attention=False, seed=0):
    """src.state, made once per arguments (6 M random numbers; not to be changed)."""
    return src.state(classes, seg_num, attention, seed)


def lcnet(seg_num=8, attention=False, **kwargs):
    return TSM(backbone='pplcnet_v2', num_classes=CLASSES, seg_num=seg_num,
               shift_ratio=1.0 / seg_num, temporal_attention=attention, dropout=0.2, **kwargs)


def clips(seg_num, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, seg_num, 3, SIZE, SIZE),
                                                       dtype=np.float32)


def logits(model, x):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def saved(tmp_path, state, name='PPTSMv2.pdparams'):
    path = str(tmp_path / name)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, path)
    return path


def teacher_entries():
    """A few of the PP-TSM ResNet-50 teacher's entries in a distillation file."""
    return {'Teacher.0.conv1_1._conv.weight': np.zeros((32, 3, 3, 3), np.float32),
            'Teacher.1.fc.weight': np.zeros((2048, CLASSES), np.float32)}


LAYOUTS = {
    'recognizer': lambda s: {'backbone.' + k: v for k, v in s.items()},
    'distillation': lambda s: {**{'Student.0.' + k: v for k, v in s.items()},
                               **teacher_entries(),  # and a scheduler's counter, not a weight
                               '@LR_DECAY_COUNTER@': np.array([7], np.int64)},
    'student': lambda s: dict(s),
}


@pytest.mark.parametrize('layout,seg_num,attention', [
    ('recognizer', 8, False), ('student', 8, False), ('distillation', 8, False),
    ('distillation', 4, True)])
def test_paddlevideo_layouts_compute_what_the_source_computes(tmp_path, layout, seg_num,
                                                               attention):
    state = source_state(CLASSES, seg_num, attention, 0)
    x = clips(seg_num)
    want = src.forward(state, x, seg_num)
    model = lcnet(seg_num, attention)
    load_for_inference(model, saved(tmp_path, LAYOUTS[layout](state)))
    assert relative_error(logits(model, x), want) < 1e-5
    # the source scales the classifier's input by 0.8 in evaluation: without it, not equal
    unscaled = convert_state(LAYOUTS[layout](state), model)
    unscaled['fc.weight'] = unscaled['fc.weight'] / np.float32(0.8)
    model.set_state_dict(unscaled)
    assert relative_error(logits(model, x), want) > 1e-2


def test_our_checkpoint_loads_back_as_it_was(tmp_path):
    model = lcnet(4, True)
    load_for_inference(model, saved(tmp_path, LAYOUTS['recognizer'](source_state(CLASSES, 4,
                                                                               True))))
    write_weights(str(tmp_path / 'best'), model)
    again = lcnet(4, True)
    load_for_inference(again, str(tmp_path / 'best'))
    x = clips(4)
    assert relative_error(logits(again, x), logits(model, x)) == 0


def test_a_weights_network_other_than_the_models_is_one_line(tmp_path):
    path = saved(tmp_path, LAYOUTS['recognizer'](source_state(CLASSES, 4, True)))
    with pytest.raises(WeightsError, match=r'-o MODEL.temporal_attention=True'):
        load_for_inference(lcnet(4, False), path)
    with pytest.raises(WeightsError, match=r'-o MODEL.backbone=pplcnet_v2 '):
        load_for_inference(TSM(num_classes=CLASSES, seg_num=4, depth=18), path)
    # PaddleVideo shifts 1/seg_num: another ratio would compute something else
    other = TSM(backbone='pplcnet_v2', num_classes=CLASSES, seg_num=4, shift_ratio=0.125,
                temporal_attention=True)
    with pytest.raises(WeightsError, match=r"MODEL.shift_ratio: model 0.125, the source "
                                           r"shifts 1/seg_num = 0.25"):
        load_for_inference(other, path)


def test_fine_tuning_from_the_imagenet_layout_replaces_the_classifier(tmp_path):
    state = source_state(1000, 8, seed=5)  # PaddleClas's PPLCNetV2: no prefix, 1000 classes
    model = lcnet(8)
    load_for_training(model, saved(tmp_path, state))
    assert np.array_equal(model.stages[2][0].dw_conv_list[1].bn._mean.numpy(),
                          state['stages.2.0.dw_conv_list.1.bn._mean'])
    assert np.array_equal(model.stem_blocks[0].conv.weight.numpy(), state['stem.0.conv.weight'])
    assert model.fc.weight.shape == [1280, CLASSES]


def test_one_training_step_reaches_every_parameter():
    paddle.seed(4)
    model = lcnet(4, True)
    model.train()
    x = paddle.to_tensor(clips(4, seed=2)[:, :, :, :32, :32])
    loss = paddle.nn.functional.cross_entropy(model(x), paddle.to_tensor([1, 3]))
    loss.backward()
    assert np.isfinite(float(loss))
    silent = [n for n, p in model.named_parameters() if not p.stop_gradient
              and (p.grad is None or not np.abs(p.grad.numpy()).max() > 0)]
    assert silent == []


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(model with the source's weights, export prefix, its clips and the dynamic logits)."""
    model = lcnet(4, True)
    folder = tmp_path_factory.mktemp('pptsmv2')
    load_for_inference(model, saved(folder, LAYOUTS['recognizer'](source_state(CLASSES, 4, True,
                                                                            seed=9))))
    cfg = {'MODEL': dict(model.settings), 'DATA': {'target_size': SIZE}}
    prefix = str(folder / 'TSM')
    _, x, want = export_checked(model, cfg, prefix, 'test')
    return model, prefix, x, want


def test_the_inference_form_folds_the_branches_and_computes_the_same(exported):
    model, prefix, x, want = exported
    fused = fuse_shifts(model)
    names = list(fused.state_dict())
    assert not [n for n in names if 'dw_conv_list' in n]
    assert sum(n.endswith('.folded.weight') for n in names) == 8  # stages 3 and 4
    assert fused.stages[2][0].folded.weight.shape == [256, 1, 5, 5]
    assert relative_error(logits(fused, x), want) < 1e-5
    assert relative_error(Predictor(prefix)(x).numpy(), want) < 1e-4


@pytest.mark.skipif(not bf16_supported(), reason='needs bfloat16 instructions')
def test_bf16_is_near_fp32(exported):
    _, prefix, x, want = exported
    assert 1e-6 < relative_error(Predictor(prefix, precision='bf16')(x).numpy(), want) < 3e-2


@pytest.mark.parametrize('engine', ['onnxruntime', 'openvino'])
def test_every_engine_computes_the_model(exported, tmp_path, engine):
    pytest.importorskip('paddle2onnx')
    pytest.importorskip(engine)
    from models.deploy.engines import clip_runner
    from models.deploy.onnx_export import export_onnx
    from models.deploy.predictor import model_files
    _, prefix, x, want = exported
    path = export_onnx(*model_files(prefix), str(tmp_path / 'TSM.onnx'), 13)
    got = clip_runner(engine, path, 2, 'fp32')(x).numpy()
    assert relative_error(got, want) < 1e-4


def test_the_preset_and_the_published_names_agree():
    cfg = load_config('configs/pptsm_v2.yaml')
    entry = PUBLISHED[cfg['TEST']['weights']]
    assert {k: cfg['MODEL'][k] for k in entry['model']} == entry['model']
    assert cfg['TEST']['protocol'] == 'pptsm-uniform'
    for name in ('pptsmv2-k400-8f', 'pptsmv2-k400-16f', 'pptsmv2-k400-8f-dml'):
        model = PUBLISHED[name]['model']
        assert model['shift_ratio'] == 1.0 / model['seg_num']
        assert model['temporal_attention'] is False
    # a model without the attention is refused before anything is downloaded
    with pytest.raises(WeightsError, match=r'-o MODEL.temporal_attention=True'):
        load_for_inference(TSM(**dict(cfg['MODEL'], temporal_attention=False)),
                           'pptsmv2-k400-16f-dml', cache_dir=os.devnull)


@pytest.mark.parametrize('overrides,message', [
    (['MODEL.shift_mode=online'], "MODEL.shift_mode: backbone 'pplcnet_v2' shifts both ways"),
    (['MODEL.shift_every=2'], "MODEL.shift_every: backbone 'pplcnet_v2' shifts its stream "
                              "once, before its third stage"),
    (['MODEL.backbone=resnet'], "MODEL.temporal_attention: is PP-TSMv2's"),
])
def test_settings_it_cannot_build_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config('configs/pptsm_v2.yaml', overrides)
