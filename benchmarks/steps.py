"""Our training step as the benchmarks time it: train.py's update on random clips."""
import numpy as np
import paddle

import training
from models import TSM
from models.amp import Precision

# train.py's optimizer settings for a timed step (no schedule: the rate stays put)
TRAIN_SETTINGS = {'learning_rate': 0.01, 'lr_decay': 0.1, 'lr_decay_epochs': [],
                  'warmup_epochs': 0, 'momentum': 0.9, 'l2_weight_decay': 1e-4,
                  'clip_norm': 20.0, 'param_groups': 'plain'}


def train_step(args):
    """fn() running train.py's update (training.train_update, training.build_optimizer's
    Momentum, L2 decay and clipping) of a 400-class TSM on random clips of args' shape."""
    paddle.seed(0)
    model = TSM(num_classes=400, seg_num=args.seg_num, depth=args.depth)
    optimizer, _ = training.build_optimizer(model, TRAIN_SETTINGS, 100,
                                            TRAIN_SETTINGS['learning_rate'])
    rng = np.random.default_rng(0)
    shape = [args.batch, 1, args.seg_num, 3, args.size, args.size]
    clips = paddle.to_tensor(rng.standard_normal(shape, dtype=np.float32))
    labels = paddle.to_tensor(rng.integers(0, 400, args.batch))
    group = [(clips, labels, paddle.zeros([args.batch], 'int64'))]

    def step():
        model.train()
        training.train_update(model, group, optimizer, Precision('off'))
    return step
