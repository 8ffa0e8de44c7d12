"""A tiny demo dataset and a config that trains on it in seconds, for the tests that run the
scripts."""
import subprocess
import sys

import yaml

from tests.commands import ROOT


def make_demo_data(folder, seed, train_per_class=1):
    """The demo's videos, 32x32, `train_per_class` training and one validation video a
    class, into `folder` (data/make_demo.py); returns it."""
    subprocess.run([sys.executable, 'data/make_demo.py', '--out', str(folder),
                    '--train_per_class', str(train_per_class), '--val_per_class', '1',
                    '--size', '32', '--seed', str(seed)], cwd=ROOT, check=True,
                   capture_output=True)
    return folder


def write_tiny_config(folder, data, **sections):
    """folder/cfg.yaml: ResNet-18, 2 frames of 32x32, 2 epochs on the demo data in `data`,
    its outputs below `folder`; `sections` update the sections; returns the path."""
    best = str(folder / 'run' / 'TSM_best')
    cfg = {'MODEL': {'num_classes': 6, 'seg_num': 2, 'depth': 18},
           'DATA': {'data_root': str(data), 'short_size': 32, 'target_size': 32, 'flip': False,
                    'num_workers': 0},
           'TRAIN': {'filelist': str(data / 'train.list'), 'batch_size': 3, 'epoch': 2,
                     'lr_decay_epochs': [], 'valid_interval': 1, 'log_interval': 0,
                     'save_dir': str(folder / 'run'), 'pretrain': ''},
           'VALID': {'filelist': str(data / 'val.list'), 'batch_size': 3},
           'TEST': {'filelist': str(data / 'val.list'), 'batch_size': 3, 'weights': best,
                    'save_dir': str(folder / 'eval')},
           'INFER': {'label_file': str(data / 'labels.txt'), 'topk': 2, 'weights': best,
                     'save_dir': str(folder / 'predict')}}
    for section, values in sections.items():
        cfg[section].update(values)
    path = folder / 'cfg.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return str(path)
