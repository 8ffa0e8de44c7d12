"""run.sh train / eval / predict on a tiny generated dataset, and resume, as a user types them."""
import json
import os
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import paddle
import pytest
from tests.commands import ROOT, run_sh



def run(*args, check=True):
    return run_sh(*args, check=check)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """A tiny demo dataset and a config that trains on it in seconds."""
    root = tmp_path_factory.mktemp('e2e')
    subprocess.run([sys.executable, 'data/make_demo.py', '--out', str(root / 'data'),
                    '--train_per_class', '2', '--val_per_class', '1', '--size', '32',
                    '--seed', '1'], cwd=ROOT, check=True, capture_output=True)
    config = root / 'tiny.yaml'
    config.write_text(f"""
MODEL: {{num_classes: 6, seg_num: 4, depth: 18}}
DATA: {{data_root: {root / 'data'}, short_size: 32, target_size: 32, flip: false,
        num_workers: 0}}
TRAIN: {{filelist: {root / 'data/train.list'}, batch_size: 4, epoch: 2, learning_rate: 0.01,
         lr_decay_epochs: [1], warmup_epochs: 1, valid_interval: 1, log_interval: 1,
         save_dir: {root / 'run'}, pretrain: ''}}
VALID: {{filelist: {root / 'data/val.list'}, batch_size: 3}}
TEST: {{filelist: {root / 'data/val.list'}, batch_size: 3, num_clips: 2, num_crops: 3,
        weights: {root / 'run/TSM_best'}, save_dir: {root / 'eval'}}}
INFER: {{label_file: {root / 'data/labels.txt'}, topk: 2,
         weights: {root / 'run/TSM_best'}, save_dir: {root / 'predict'}}}
""")
    return root, str(config)


def test_train_eval_predict(demo):
    root, config = demo
    run('train', 'TSM', config, '--fix_random_seed')
    for name in ('TSM_epoch1/model.pdparams', 'TSM_epoch2/optimizer.pdopt',
                 'TSM_epoch2/state.json', 'TSM_best/model.pdparams', 'train_log.csv',
                 'train_log.json'):
        assert (root / 'run' / name).exists(), name
    assert sorted(os.listdir(root / 'run')) == ['.lock', 'TSM_best', 'TSM_epoch1', 'TSM_epoch2',
                                                'config.yaml', 'train.log',
                                                'train_curves.png', 'train_log.csv',
                                                'train_log.json']
    log = json.loads((root / 'run/train_log.json').read_text())
    assert [row['epoch'] for row in log] == [1, 2]
    assert all(row['clips'] == 12 and row['dropped'] == 0 for row in log)
    assert all(row['valid_num_videos'] == 6 for row in log)
    assert len((root / 'run/train_log.csv').read_text().splitlines()) == 3

    run('eval', 'TSM', config)
    result = json.loads((root / 'eval/TSM_eval.json').read_text())
    assert result['num_videos'] == 6 and result['dropped'] == 0
    assert result['engine'] == 'paddle.inference'  # the exported model, by default
    names = (root / 'data/labels.txt').read_text().split()
    top5 = (root / 'eval/top5.csv').read_text().splitlines()
    listed = [line.split()[0] for line in (root / 'data/val.list').read_text().splitlines()]
    assert [line.split(',')[0] for line in top5[1:]] == [str(root / 'data' / v) for v in listed]
    rows = [line.split(',') for line in top5[1:]]
    assert sum(row[3] == '1' for row in rows) / 6 == pytest.approx(result['top1'])
    # the label among the five best, by name
    assert sum(row[2] in row[4:9] for row in rows) / 6 == pytest.approx(result['top5'])
    per_class = (root / 'eval/per_class.csv').read_text().splitlines()
    assert {line.split(',')[1] for line in per_class[1:]} == set(names)
    for plot in ('per_class.png', 'confusion.png'):
        assert (root / 'eval' / plot).stat().st_size > 1000
    assert (root / 'run/train_curves.png').stat().st_size > 1000

    video = (root / 'data/val.list').read_text().split()[0]
    out = run('predict', 'TSM', config, '--video_path', str(root / 'data' / video)).stdout
    names = (root / 'data/labels.txt').read_text().split()
    line = [l for l in out.splitlines() if l.startswith(str(root))][0]
    assert sum(name in line for name in names) == 2  # topk: 2
    pred = json.loads((root / 'predict/TSM_predict.json').read_text())
    probs = [c['prob'] for c in pred['predictions'][0]['top_k']]
    assert len(probs) == 2 and probs[0] >= probs[1] > 0 and pred['failed'] == []


def test_eval_and_predict_run_the_exported_model(demo):
    root, config = demo
    if not (root / 'run/TSM_best').exists():  # made by test_train_eval_predict
        run('train', 'TSM', config, '--fix_random_seed')
    run('export', 'TSM', config, '--weights', str(root / 'run/TSM_best'),
        '--save_dir', str(root / 'exported'))
    exported = ['--infer_model', str(root / 'exported'), '--threads', '1']
    results = {}
    engines = [('openvino', ['--engine', 'openvino'])] if find_spec('openvino') else []
    for name, flags in [('dynamic', []), ('exported', exported)] + engines:
        run('eval', 'TSM', config, '--save_dir', str(root / f'eval_{name}'), *flags)
        results[name] = json.loads((root / f'eval_{name}/TSM_eval.json').read_text())
    assert results['exported']['infer_model'] == str(root / 'exported')
    for name, _ in [('exported', None)] + engines:
        for key in ('top1', 'top5', 'mean_class_acc', 'num_videos'):
            assert results[name][key] == results['dynamic'][key], (name, key)
    if engines:
        assert (results['openvino']['engine'], results['openvino']['precision']) == (
            'openvino', 'fp32')
        assert results['openvino']['exported'].endswith('TSM.onnx')
    proc = run('eval', 'TSM', config, *exported, '--engine', 'onnxruntime', check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert (f"TEST.engine onnxruntime runs {root / 'exported' / 'TSM.onnx'}, which is not "
            f"there: export with --onnx") in proc.stderr

    video = str(root / 'data' / (root / 'data/val.list').read_text().split()[0])
    probs = {}
    for name, flags in (('dynamic', []), ('exported', exported)):
        run('predict', 'TSM', config, '--video_path', video,
            '--save_dir', str(root / f'predict_{name}'), *flags)
        pred = json.loads((root / f'predict_{name}/TSM_predict.json').read_text())
        probs[name] = [(c['label'], c['prob']) for c in pred['predictions'][0]['top_k']]
    assert [l for l, _ in probs['exported']] == [l for l, _ in probs['dynamic']]
    np.testing.assert_allclose([p for _, p in probs['exported']],
                               [p for _, p in probs['dynamic']], atol=1e-4)

    proc = run('eval', 'TSM', config, *exported, '-o', 'MODEL.seg_num=8', check=False)
    assert proc.returncode != 0 and 'MODEL.seg_num: config 8, exported 4' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = run('train', 'TSM', config, *exported, check=False)
    assert proc.returncode == 2 and 'unrecognized arguments: --infer_model' in proc.stderr


def test_resume_continues_where_it_stopped(demo):
    """Two epochs, then a resumed third, give the same weights as three epochs in one run."""
    root, config = demo
    common = ['--fix_random_seed', '-o', 'TRAIN.valid_interval=0']
    run('train', 'TSM', config, '--epoch', '3', '--save_dir', str(root / 'full'), *common)
    run('train', 'TSM', config, '--epoch', '2', '--save_dir', str(root / 'part'), *common)
    proc = run('train', 'TSM', config, '--epoch', '3', '--save_dir', str(root / 'part'),
               '--resume', str(root / 'part/TSM_epoch2'), *common)
    assert 'resumed' in proc.stderr
    log = json.loads((root / 'part/train_log.json').read_text())
    assert [row['epoch'] for row in log] == [1, 2, 3]
    full = json.loads((root / 'full/train_log.json').read_text())
    assert log[2]['lr'] == pytest.approx(full[2]['lr'])
    a = paddle.load(str(root / 'full/TSM_epoch3/model.pdparams'))
    b = paddle.load(str(root / 'part/TSM_epoch3/model.pdparams'))
    for name in a:
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_run_sh_rejects_unknown_mode_and_model():
    proc = run('fly', check=False)
    assert proc.returncode != 0 and 'usage' in proc.stderr
    proc = run('train', 'I3D', 'configs/tsm.yaml', check=False)
    assert proc.returncode != 0 and "'I3D'" in proc.stderr


def test_predict_reports_a_missing_video(demo, tmp_path):
    root, config = demo
    proc = run('predict', 'TSM', config, '--video_path', str(tmp_path / 'nope.mp4'),
               check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert f'--video_path {tmp_path / "nope.mp4"}: no such video file' in proc.stderr


def test_fine_tune_a_folder_of_videos_as_the_readme_says(demo, tmp_path):
    """README 'Fine-tuning on your own classes': class folders -> make_lists -> train with
    configs/tsm_finetune.yaml from a demo checkpoint (6 classes) on 3 of its classes -> eval
    -> predict. The new classifier is not loaded; the backbone starts from the checkpoint."""
    root, _ = demo
    if not (root / 'run/TSM_best').exists():  # made by test_train_eval_predict
        run('train', 'TSM', demo[1], '--fix_random_seed')
    mine = tmp_path / 'mine'
    classes = sorted(os.listdir(root / 'data/videos'))[:3]
    mine.mkdir()
    for name in classes:
        os.symlink(root / 'data/videos' / name, mine / name)
    subprocess.run([sys.executable, 'data/make_lists.py', 'folders', str(mine), '--out',
                    str(mine / 'lists'), '--val_fraction', '0.34', '--workers', '1'],
                   cwd=ROOT, check=True, capture_output=True)
    assert (mine / 'lists/labels.txt').read_text().split() == classes
    flags = ['-o', 'MODEL.num_classes=3', '-o', 'MODEL.depth=18', '-o', 'MODEL.seg_num=4',
             '-o', f'DATA.data_root={mine}', '-o', 'DATA.short_size=32',
             '-o', 'DATA.target_size=32', '-o', 'DATA.num_workers=0',
             '-o', 'TRAIN.batch_size=2', '-o', 'TRAIN.epoch=1', '-o', 'TRAIN.lr_decay_epochs=[]',
             '-o', f'TRAIN.pretrain={root / "run/TSM_best"}',
             '-o', f'TRAIN.filelist={mine / "lists/train.list"}',
             '-o', f'VALID.filelist={mine / "lists/val.list"}',
             '-o', f'TEST.filelist={mine / "lists/val.list"}',
             '-o', f'INFER.label_file={mine / "lists/labels.txt"}']
    paths = ['-o', f'TRAIN.save_dir={tmp_path / "ft"}',
             '-o', f'TEST.weights={tmp_path / "ft/TSM_best"}',
             '-o', f'TEST.save_dir={tmp_path / "eval"}',
             '-o', f'INFER.weights={tmp_path / "ft/TSM_best"}',
             '-o', f'INFER.save_dir={tmp_path / "predict"}']
    config = os.path.join('configs', 'tsm_finetune.yaml')
    proc = run('train', 'TSM', config, *flags, *paths)
    assert 'classifier not loaded' in proc.stderr
    pretrained = paddle.load(str(root / 'run/TSM_best/model.pdparams'))
    tuned = paddle.load(str(tmp_path / 'ft/TSM_best/model.pdparams'))
    assert tuned['fc.weight'].shape[1] == 3
    np.testing.assert_allclose(tuned['conv1.weight'].numpy(),
                               pretrained['conv1.weight'].numpy(), atol=1e-3)

    run('eval', 'TSM', config, *flags, *paths)
    result = json.loads((tmp_path / 'eval/TSM_eval.json').read_text())
    assert result['num_videos'] == 3 and result['dropped'] == 0
    video = str(mine / (mine / 'lists/val.list').read_text().split()[0])
    run('predict', 'TSM', config, '--video_path', video, *flags, *paths)
    pred = json.loads((tmp_path / 'predict/TSM_predict.json').read_text())
    assert {c['name'] for c in pred['predictions'][0]['top_k']} <= set(classes)
