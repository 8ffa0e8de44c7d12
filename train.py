"""Train TSM: SGD with momentum, piecewise LR with warm-up, validation, checkpoints, resume.

    bash run.sh train TSM ./configs/tsm.yaml [--pretrain FILE] [--resume latest|FOLDER]

After every epoch its checkpoint folder save_dir/TSM_epochN is published whole (weights,
optimizer, the run state and the training log so far), then train_log.csv / .json are
rewritten from it; TSM_best holds the weights of the best validation top-1. A run killed at
any moment resumes from the last published epoch with `--resume latest`.
"""
import bisect
import csv
import json
import logging
import os
import shutil
import time

from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
import paddle
import paddle.nn.functional as F
from tqdm import tqdm

from eval import evaluate, report
from models import TSM
from models import weights
from reader import check_failures, make_loader


def build_optimizer(model, train, steps_per_epoch):
    """Momentum SGD, L2 decay, global-norm clipping; the LR schedule is stepped per iteration:
    a linear warm-up from 0, then the base rate times lr_decay at each of lr_decay_epochs."""
    warmup_steps = int(train['warmup_epochs'] * steps_per_epoch)
    # LinearWarmup steps the wrapped schedule from the end of the warm-up, so the decay
    # boundaries are counted from there to land on the configured epochs
    boundaries = [e * steps_per_epoch - warmup_steps for e in train['lr_decay_epochs']]
    lr = paddle.optimizer.lr.LambdaDecay(
        train['learning_rate'],
        lambda step: train['lr_decay'] ** bisect.bisect_right(boundaries, step))
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


def _replace(path, write):
    """Write `path` through a temporary file renamed into place: never half a file."""
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', newline='') as f:
        write(f)
    os.replace(tmp, path)


def write_logs(save_dir, rows):
    """train_log.json and train_log.csv, every epoch's row, rewritten whole."""
    _replace(os.path.join(save_dir, 'train_log.json'), lambda f: json.dump(rows, f, indent=1))
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != 'epoch', k))

    def write_csv(f):
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    _replace(os.path.join(save_dir, 'train_log.csv'), write_csv)


def check_save_dir(save_dir, model):
    """Create save_dir and write a probe there now, not at the first checkpoint an epoch
    later; warn when the disk has less room than three checkpoints need."""
    probe = os.path.join(save_dir, f'.write-probe-{os.getpid()}')
    try:
        os.makedirs(save_dir, exist_ok=True)
        with open(probe, 'w') as f:
            f.write('probe')
        os.remove(probe)
    except OSError as e:
        raise cli.UsageError(f'TRAIN.save_dir {save_dir}: cannot write there ({e.strerror})')
    # weights + the same again of momentum in an epoch checkpoint, weights again in TSM_best
    size = sum(int(v.numel()) * 4 for v in model.state_dict().values()) * 3
    free = shutil.disk_usage(save_dir).free
    if free < 3 * size:
        logging.warning('TRAIN.save_dir %s: %.1f GB free, less than the %.1f GB of three '
                        'checkpoints', save_dir, free / 1e9, 3 * size / 1e9)
    weights.clean_stale(save_dir)


def resume_from(args, train):
    """The checkpoint folder --resume names ('latest': the newest complete one in save_dir)."""
    if args.resume == 'latest':
        return weights.latest(train['save_dir'])
    return args.resume


def start_state(args, cfg, model, optimizer, lr, steps_per_epoch):
    """(first epoch, best validation top-1, log rows so far): from --resume, else after
    loading the pretrain weights."""
    if not args.resume:
        weights.load_for_training(model, cfg['TRAIN']['pretrain'], cfg['DATA']['weights_dir'])
        return 0, None, []
    folder = resume_from(args, cfg['TRAIN'])
    state = weights.resume(folder, model, optimizer)
    first = state['epoch'] + 1
    # The schedule is a function of the step, and a step of this run may cover another
    # number of clips than one of the run that wrote the checkpoint: set it by epoch.
    lr.step(first * steps_per_epoch)
    logging.info('resumed from %s after epoch %d', folder, state['epoch'])
    return first, state.get('best_top1'), state.get('log', [])


def main(argv=None):
    args, cfg = cli.start('train', argv)
    train = cfg['TRAIN']
    seed = 0 if args.fix_random_seed else None
    if seed is not None:
        cli.fix_seed(seed)
    model = TSM(**cfg['MODEL'])
    check_save_dir(train['save_dir'], model)
    loader = make_loader(cfg, 'train', seed=seed)
    valid_loader = make_loader(cfg, 'valid') if train['valid_interval'] else None
    if valid_loader is None:
        logging.info('TRAIN.valid_interval 0: no validation, so no %s is written',
                     weights.BEST)
    optimizer, lr = build_optimizer(model, train, len(loader))
    first, best, rows = start_state(args, cfg, model, optimizer, lr, len(loader))
    if first >= train['epoch']:
        logging.info('nothing left to train: the checkpoint is of epoch %d and TRAIN.epoch is '
                     '%d; raise --epoch to train further', first - 1, train['epoch'])
        return 0
    for epoch in range(first, train['epoch']):
        if seed is not None:  # per epoch, so a resumed run draws what an unbroken one would
            cli.fix_seed(seed + epoch)
        loader.batch_sampler.set_epoch(epoch)  # the reader's draws depend on (seed, epoch, item)
        row = {'epoch': epoch, 'lr': optimizer.get_lr()}
        row.update(train_one_epoch(model, loader, optimizer, lr, epoch, train['log_interval']))
        check_failures(row['dropped'], row['clips'] + row['dropped'],
                       cfg['DATA']['max_failure_ratio'])
        last = epoch + 1 == train['epoch']
        validated = valid_loader is not None and (
            (epoch + 1) % train['valid_interval'] == 0 or last)
        if validated:
            result = evaluate(model, valid_loader, cfg['MODEL']['num_classes'])
            report(result)
            row.update({f'valid_{k}': v for k, v in result.items()})
        # The best is chosen by validation alone: a training top-1 is no measure of it.
        is_best = validated and (best is None or row['valid_top1'] > best)
        best = row['valid_top1'] if is_best else best
        rows = [r for r in rows if r['epoch'] < epoch] + [row]
        state = {'epoch': epoch, 'best_top1': best, 'log': rows}
        weights.write_checkpoint(weights.epoch_dir(train['save_dir'], epoch), model, optimizer,
                                 state)
        if is_best:
            weights.write_weights(os.path.join(train['save_dir'], weights.BEST), model, state)
        write_logs(train['save_dir'], rows)
        logging.info('epoch %d done: %s', epoch, json.dumps(row))
    return 0


if __name__ == '__main__':
    cli.run('train', main)
