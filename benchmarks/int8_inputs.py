"""The inputs of benchmarks/int8_openvino.py from a config: the exported model's ONNX file of
TEST.weights, calibration clips drawn from TRAIN.filelist and the labelled clips of
TEST.filelist, each read as eval reads it (the test transform, one view):

    python benchmarks/int8_inputs.py --config configs/tsm_demo.yaml --out DIR [--calibration 32]

writes DIR/TSM.onnx (checked on ONNX Runtime against the dynamic model), DIR/calib.npy and
DIR/clips.npz.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import cli  # noqa: E402,F401  first: it loads numpy.random before paddle (2.6)
import numpy as np  # noqa: E402

from configs.config import load_config  # noqa: E402
from models import TSM  # noqa: E402
from models.deploy.onnx_export import export_onnx, onnx_logits  # noqa: E402
from models.deploy.predictor import model_files  # noqa: E402
from models.deploy.static import check, export_checked  # noqa: E402
from models.device import use_cpu  # noqa: E402
from models.weights import load_for_inference  # noqa: E402
from reader.dataset import read_clip  # noqa: E402
from reader.listfile import read_list  # noqa: E402


def clips_of(cfg, filelist, count=None, seed=0):
    """(clips [N, T, 3, H, W], labels) of `filelist`: `count` drawn at random, else all."""
    items = read_list(filelist, cfg['DATA']['data_root'])
    if count is not None:
        picked = np.random.default_rng(seed).permutation(len(items))[:count]
        items = [items[i] for i in sorted(picked)]
    clips = [read_clip(path, cfg, 'test')[0] for path, _ in items]
    return np.stack(clips), np.array([label for _, label in items])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--calibration', type=int, default=32)
    a = p.parse_args()
    use_cpu(2)
    cfg = load_config(a.config, ['TEST.protocol=ours', 'TEST.num_clips=1', 'TEST.num_crops=1'])
    os.makedirs(a.out, exist_ok=True)
    model = TSM(**cfg['MODEL'])
    load_for_inference(model, cfg['TEST']['weights'])
    prefix = os.path.join(a.out, 'TSM')
    _, clips, want = export_checked(model, cfg, prefix, cfg['TEST']['weights'])
    onnx = export_onnx(*model_files(prefix), prefix + '.onnx', 13)
    check(onnx, onnx_logits(onnx, clips), want)
    calib, _ = clips_of(cfg, cfg['TRAIN']['filelist'], a.calibration)
    np.save(os.path.join(a.out, 'calib.npy'), calib)
    clips, labels = clips_of(cfg, cfg['TEST']['filelist'])
    np.savez(os.path.join(a.out, 'clips.npz'), clips=clips, labels=labels)
    print(f'wrote {onnx}, {len(calib)} calibration clips and {len(labels)} labelled clips')


if __name__ == '__main__':
    main()
