"""Train TSM: SGD with momentum, piecewise LR with warm-up, validation, checkpoints, resume.

    bash run.sh train TSM ./configs/tsm.yaml [--pretrain FILE] [--resume PREFIX]
"""
import csv
import json
import logging
import os
import sys
import time

import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
import paddle
import paddle.nn.functional as F

from configs import cli
from eval import evaluate, report


def build_optimizer(model, train, steps_per_epoch):
    """Momentum SGD, L2 decay, global-norm clipping; the LR schedule is stepped per iteration."""
    warmup_steps = int(train['warmup_epochs'] * steps_per_epoch)
    if any(e * steps_per_epoch < warmup_steps for e in train['lr_decay_epochs']):
        raise ValueError(f"TRAIN.lr_decay_epochs {train['lr_decay_epochs']}: no decay may come "
                         f"before the warm-up ends (warmup_epochs {train['warmup_epochs']})")
    # LinearWarmup steps the wrapped schedule from the end of the warm-up, so the decay
    # boundaries are counted from there to land on the configured epochs
    boundaries = [e * steps_per_epoch - warmup_steps for e in train['lr_decay_epochs']]
    values = [train['learning_rate'] * train['lr_decay'] ** i for i in range(len(boundaries) + 1)]
    lr = paddle.optimizer.lr.PiecewiseDecay(boundaries, values)
    if warmup_steps:
        lr = paddle.optimizer.lr.LinearWarmup(lr, warmup_steps, 0.0, train['learning_rate'])
    optimizer = paddle.optimizer.Momentum(
        learning_rate=lr, momentum=train['momentum'], parameters=model.parameters(),
        weight_decay=paddle.regularizer.L2Decay(train['l2_weight_decay']),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(train['clip_norm']))
    return optimizer, lr


def masked_loss(logits, labels):
    """Mean cross-entropy over the items that decoded (label >= 0) and their top-1 hits."""
    keep = (labels >= 0).astype('float32')
    losses = F.cross_entropy(logits, labels.clip(min=0).unsqueeze(-1), reduction='none')
    count = keep.sum()
    loss = (losses.flatten() * keep).sum() / count.clip(min=1.0)
    hits = ((logits.argmax(axis=-1) == labels).astype('float32') * keep).sum()
    return loss, hits, count


def train_one_epoch(model, loader, optimizer, lr, epoch, log_interval):
    """One pass over `loader`; returns the epoch's mean loss, top-1 and item counts."""
    from tqdm import tqdm
    model.train()
    sums = {'loss': 0.0, 'hits': 0.0, 'clips': 0.0, 'dropped': 0, 'failures': 0}
    start = time.time()
    bar = tqdm(loader, desc=f'epoch {epoch}', disable=None, dynamic_ncols=True)
    for step, (clips, labels, n_failures) in enumerate(bar):
        loss, hits, count = masked_loss(model(clips[:, 0]), labels)
        n = int(count)
        sums['dropped'] += int(labels.shape[0]) - n
        sums['failures'] += int(n_failures.sum())
        if n:
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            sums['loss'] += float(loss) * n
            sums['hits'] += float(hits)
            sums['clips'] += n
        lr.step()
        seen = max(sums['clips'], 1)
        speed = sums['clips'] / (time.time() - start)
        bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}", top1=f"{sums['hits'] / seen:.3f}",
                        clips_s=f'{speed:.1f}', lr=f'{optimizer.get_lr():.2e}')
        if log_interval and (step + 1) % log_interval == 0 and bar.disable:
            logging.info('epoch %d step %d/%d loss %.4f top1 %.3f %.1f clips/s', epoch, step + 1,
                         len(loader), sums['loss'] / seen, sums['hits'] / seen, speed)
    seen = max(sums['clips'], 1)
    return {'train_loss': sums['loss'] / seen, 'train_top1': sums['hits'] / seen,
            'clips': int(sums['clips']), 'dropped': sums['dropped'],
            'decode_failures': sums['failures'], 'seconds': round(time.time() - start, 2)}


def append_log(save_dir, row):
    """Add one epoch's row to train_log.csv and train_log.json (the JSON holds every row)."""
    json_path = os.path.join(save_dir, 'train_log.json')
    rows = json.load(open(json_path)) if os.path.exists(json_path) else []
    rows = [r for r in rows if r['epoch'] < row['epoch']] + [row]
    with open(json_path, 'w') as f:
        json.dump(rows, f, indent=1)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != 'epoch', k))
    with open(os.path.join(save_dir, 'train_log.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def start_state(args, cfg, model, optimizer):
    """(first epoch, best top-1): from --resume, else after loading the pretrain weights."""
    from models.checkpoint import load_checkpoint
    from models.weights import load_for_training
    if args.resume:
        prefix = args.resume[:-len('.pdparams')] if args.resume.endswith('.pdparams') \
            else args.resume
        state = load_checkpoint(prefix, model, optimizer)
        logging.info('resumed from %s after epoch %d', prefix, state['epoch'])
        return state['epoch'] + 1, state.get('best_top1', -1.0)
    load_for_training(model, cfg['TRAIN']['pretrain'], cfg['DATA']['weights_dir'])
    return 0, -1.0


def main(argv=None):
    args, cfg = cli.parse('train', argv)
    cli.select_device(args.use_gpu)
    seed = 0 if args.fix_random_seed else None
    if seed is not None:
        cli.fix_seed(seed)
    from models import TSM
    from models.checkpoint import save_checkpoint
    from reader import check_failures, make_loader
    train = cfg['TRAIN']
    model = TSM(**cfg['MODEL'])
    loader = make_loader(cfg, 'train', seed=seed)
    valid_loader = make_loader(cfg, 'valid') if train['valid_interval'] else None
    try:
        optimizer, lr = build_optimizer(model, train, len(loader))
    except ValueError as e:  # a schedule that does not fit the config
        raise SystemExit(f'train.py: {e}')
    first, best = start_state(args, cfg, model, optimizer)
    os.makedirs(train['save_dir'], exist_ok=True)
    for epoch in range(first, train['epoch']):
        if seed is not None:  # per epoch, so a resumed run draws what an unbroken one would
            cli.fix_seed(seed + epoch)
        loader.batch_sampler.set_epoch(epoch)  # the reader's draws depend on (seed, epoch, item)
        row = {'epoch': epoch, 'lr': optimizer.get_lr()}
        row.update(train_one_epoch(model, loader, optimizer, lr, epoch, train['log_interval']))
        check_failures(row['dropped'], row['clips'] + row['dropped'],
                       cfg['DATA']['max_failure_ratio'])
        if valid_loader is not None and (epoch + 1) % train['valid_interval'] == 0:
            result = evaluate(model, valid_loader, cfg['MODEL']['num_classes'])
            report(result)
            row.update({f'valid_{k}': v for k, v in result.items()})
        top1 = row.get('valid_top1', row['train_top1'])
        is_best = top1 > best
        best = max(best, top1)
        state = {'epoch': epoch, 'best_top1': best, 'top1': top1, 'model': cfg['MODEL']}
        save_checkpoint(os.path.join(train['save_dir'], f'TSM_epoch{epoch}'), model, optimizer,
                        state)
        if is_best:
            save_checkpoint(os.path.join(train['save_dir'], 'TSM_best'), model, None, state)
        append_log(train['save_dir'], row)
        logging.info('epoch %d done: %s', epoch, json.dumps(row))
    return best


if __name__ == '__main__':
    main()
    sys.exit(0)
