"""Train TSM: SGD with momentum, piecewise LR with warm-up, validation, checkpoints, resume.

    bash run.sh train TSM ./configs/tsm.yaml [--pretrain FILE] [--resume latest|FOLDER]
    python -m paddle.distributed.launch --gpus 0,1,2,3 train.py --config ./configs/tsm.yaml

Under paddle.distributed.launch each process trains on its share of every epoch with
paddle.DataParallel (gradients averaged across processes); rank 0 alone validates into the
log, writes checkpoints and logs. TRAIN.batch_size is per process; the learning rate is
scaled to the global batch (batch_size x processes x accum_steps) from the one the config
states for TRAIN.lr_reference_batch clips.

After every epoch N (counted from 1) its checkpoint folder save_dir/TSM_epochN (TSN_epochN,
TSM_online_epochN: folders are named by the model) is published whole (weights,
optimizer, the run state and the training log so far), then train_log.csv / .json are
rewritten from it; TSM_best holds the weights of the best validation top-1. A run killed at
any moment resumes from the last published epoch with `--resume latest`; the start of a run
sets TSM_best to the weights the newest checkpoint's log calls best, if a kill came between
the two. One run at a time holds save_dir (outputs.locked). A loss or weights that stop
being finite stop the run before anything of that epoch is saved. save_dir also holds the
config the run resolved (config.yaml) and its text log (train.log, continued by a resume);
each checkpoint records the MODEL and input settings eval.py and predict.py take back
(configs/recorded.py).
"""
import collections
import contextlib
import csv
import json
import logging
import os
import shlex
import shutil
import sys
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)
from configs import config, recorded

import console
import outputs
import results
from models import TSM, parallel, weights
from models.amp import Precision
from models.device import cuda_available
from reader import check_failures, make_loader
from reader.listfile import read_label_names
from scoring import evaluate
from training import (build_optimizer, global_batch, scaled_lr, train_one_epoch,
                      updates_per_epoch)


# Beside the checkpoints in save_dir: the resolved config and the text log of the run.
RUN_CONFIG, RUN_LOG = 'config.yaml', 'train.log'


class Best(collections.namedtuple('Best', 'top1 epoch')):
    """The best validation top-1 so far and its epoch (None, None before any)."""


def _replace(path, write):
    """Write `path` through a temporary file renamed into place: never half a file."""
    with outputs.replacing(path, newline='') as f:
        write(f)


def write_logs(save_dir, rows):
    """train_log.json and train_log.csv, every epoch's row, rewritten whole."""
    _replace(os.path.join(save_dir, 'train_log.json'),
             lambda f: json.dump(rows, f, indent=1, allow_nan=False))
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != 'epoch', k))

    def write_csv(f):
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    _replace(os.path.join(save_dir, 'train_log.csv'), write_csv)


@contextlib.contextmanager
def held_save_dir(save_dir, name):
    """save_dir created and probed now, not at the first checkpoint an epoch later, then
    held by this run for as long as the context lasts (a second run on it stops at once);
    what an interrupted run left is cleaned, the folders of the earlier layout renamed, and
    the best folder set from the newest log. Yields {old real path: new path} of the
    folders renamed."""
    outputs.writable_folder(save_dir, 'TRAIN.save_dir')
    with outputs.locked(save_dir, 'TRAIN.save_dir'):
        weights.clean_stale(save_dir)
        renamed = weights.migrate(save_dir, name)
        weights.repair_best(save_dir, name)
        yield renamed


def check_room(save_dir, model):
    """Warn when save_dir's disk has less room than three checkpoints need."""
    # weights + the same again of momentum in an epoch checkpoint, weights again in TSM_best
    size = sum(int(v.numel()) * 4 for v in model.state_dict().values()) * 3
    free = shutil.disk_usage(save_dir).free
    if free < 3 * size:
        logging.warning('TRAIN.save_dir %s: %.1f GB free, less than the %.1f GB of three '
                        'checkpoints', save_dir, free / 1e9, 3 * size / 1e9)


def resume_from(args, cfg):
    """The checkpoint folder --resume names ('latest': the newest complete one in save_dir)."""
    if args.resume == 'latest':
        return weights.latest(cfg['TRAIN']['save_dir'], weights.run_name(cfg['MODEL']))
    return args.resume


def start_state(args, cfg, model, optimizer, lr, steps_per_epoch):
    """(first epoch, Best so far, log rows so far): from --resume, else after loading the
    pretrain weights."""
    if not args.resume:
        weights.load_for_training(model, cfg['TRAIN']['pretrain'], cfg['DATA']['weights_dir'])
        return 1, Best(None, None), []
    folder = resume_from(args, cfg)
    state = weights.resume(folder, model, optimizer)
    first = state['epoch'] + 1
    # The schedule is a function of the step, and a step of this run may cover another
    # number of clips than one of the run that wrote the checkpoint: set it by epoch.
    lr.step(state['epoch'] * steps_per_epoch)
    logging.info('resumed from %s after epoch %d', folder, state['epoch'])
    return first, Best(state.get('best_top1'), weights.best_epoch(state)), state.get('log', [])


def check_settings(cfg):
    """Settings that depend on the machine or on other files, checked before anything else
    runs: sync_bn needs GPUs; the class names, where the file is there, must be as many as
    MODEL.num_classes (predict.py will read them for this model)."""
    if cfg['TRAIN']['sync_bn'] and not cuda_available():
        raise cli.UsageError('TRAIN.sync_bn needs GPUs: Paddle has no SyncBatchNorm kernel '
                             'for the CPU; set TRAIN.sync_bn: false')
    if os.path.isfile(cfg['INFER']['label_file']):
        read_label_names(cfg['INFER']['label_file'], cfg['MODEL']['num_classes'])


def build(cfg):
    """The model as loaded and saved (a TSM), and as trained (data-parallel, maybe with
    synchronised BatchNorm)."""
    model = TSM(**cfg['MODEL'])
    if cfg['TRAIN']['sync_bn']:
        model = parallel.sync_batchnorm(model)
    return model


def main(argv=None):
    args, cfg = cli.start('train', argv)
    check_settings(cfg)
    parallel.init()
    with contextlib.ExitStack() as held:
        if parallel.is_main():  # the writing rank alone holds save_dir
            save_dir = cfg['TRAIN']['save_dir']
            renamed = held.enter_context(held_save_dir(save_dir, weights.run_name(cfg['MODEL'])))
            if args.resume and args.resume != 'latest':  # a folder of the earlier layout
                args.resume = renamed.get(os.path.realpath(args.resume), args.resume)
            held.enter_context(cli.logging_to(os.path.join(save_dir, RUN_LOG)))
            logging.info('train.py %s', shlex.join(sys.argv[1:] if argv is None else argv))
            write_run_config(args, save_dir)
        return run(args, cfg)


def write_run_config(args, save_dir):
    """save_dir/config.yaml: every key of the config this run trained with, from its file
    and overrides. TEST and INFER.protocol stay as given: what they resolve to depends on
    the weights evaluated."""
    given = config.merged(config.read_sources(args.config, cli.overrides(args, 'train')))
    config.write_config(os.path.join(save_dir, RUN_CONFIG), given, [
        f'The config train.py ran with: {args.config} and its overrides, every key.',
        f'Its weights: python eval.py --config THIS_FILE --weights {save_dir}'])


def run(args, cfg):
    """The training run of main, save_dir held."""
    train = cfg['TRAIN']
    world, main_rank = parallel.world_size(), parallel.is_main()
    seed = 0 if args.fix_random_seed else None
    if seed is not None:
        cli.fix_seed(seed)
    model = build(cfg)
    if main_rank:
        check_room(train['save_dir'], model)
    scalars = visualdl_writer(train['visualdl_dir']) if main_rank else None
    precision = Precision(train['amp'])
    share = {'rank': parallel.rank(), 'world_size': world}
    loader = make_loader(cfg, 'train', seed=parallel.shared_seed(seed), **share)
    valid_loader = make_loader(cfg, 'valid', **share) if train['valid_interval'] else None
    name = weights.run_name(cfg['MODEL'])
    if valid_loader is None:
        logging.info('TRAIN.valid_interval 0: no validation, so no %s is written',
                     os.path.basename(weights.best_dir(train['save_dir'], name)))
    base_lr = scaled_lr(train, world)
    logging.info('global batch %d clips (%d per device x %d devices x %d accum_steps): '
                 'learning rate %g (TRAIN.learning_rate %g for %d clips, scaled linearly)',
                 global_batch(train, world), train['batch_size'], world, train['accum_steps'],
                 base_lr, train['learning_rate'], train['lr_reference_batch'])
    steps = updates_per_epoch(loader, train['accum_steps'])
    optimizer, lr = build_optimizer(model, train, steps, base_lr)
    first, best, rows = start_state(args, cfg, model, optimizer, lr, steps)
    if first > train['epoch']:
        logging.info('nothing left to train: the checkpoint is of epoch %d and TRAIN.epoch is '
                     '%d; raise --epoch to train further', first - 1, train['epoch'])
        return 0
    trained = parallel.data_parallel(model)
    title = f"{os.path.basename(args.config)}: {train['save_dir']}"
    started = time.time()
    for epoch in range(first, train['epoch'] + 1):
        epoch_start = time.time()
        if seed is not None:  # per epoch, so a resumed run draws what an unbroken one would
            cli.fix_seed(seed + epoch - 1 + 10007 * parallel.rank())
        # the reader's draws depend on (seed, epoch, item); its epochs count from 0
        loader.batch_sampler.set_epoch(epoch - 1)
        row = {'epoch': epoch, 'lr': optimizer.get_lr()}
        row.update(train_one_epoch(trained, loader, optimizer, lr, precision, epoch, train))
        check_failures(row['dropped'], row['clips'] + row['dropped'],
                       cfg['DATA']['max_failure_ratio'])
        last = epoch == train['epoch']
        validated = valid_loader is not None and (
            epoch % train['valid_interval'] == 0 or last)
        if validated:
            result = evaluate(model, valid_loader, cfg['MODEL']['num_classes'])
            row.update({f'valid_{k}': v for k, v in result.items()})
        # The best is chosen by validation alone: a training top-1 is no measure of it.
        if validated and (best.top1 is None or row['valid_top1'] > best.top1):
            best = Best(row['valid_top1'], epoch)
        rows = [r for r in rows if r['epoch'] < epoch] + [row]
        if main_rank:
            publish(train['save_dir'], name, epoch, model, optimizer, rows, best,
                    train['keep_checkpoints'], recorded.input_settings(cfg))
            if not args.no_plots:
                results.train_curves(rows, os.path.join(train['save_dir'], 'train_curves.png'),
                                     title)
            if scalars is not None:
                scalars(row)
        logging.info('%s', console.epoch_line(row, train['epoch'], best.epoch,
                                              time.time() - epoch_start, bool(valid_loader)))
    if main_rank:
        console.log_lines(summary(train['save_dir'], name, best, first, train['epoch'],
                                  time.time() - started))
    return 0


def summary(save_dir, name, best, first, epochs, seconds):
    """The closing lines of a run that trained epochs first..epochs: the best epoch and
    its score, and where the outputs are."""
    best_dir = weights.best_dir(save_dir, name)
    if best.epoch is None:
        head = f'no validation, so no {os.path.basename(best_dir)}'
    else:
        head = f'best validation top-1 {best.top1:.3f} at epoch {best.epoch}'
    done = f'epoch {first}' if first == epochs else f'epochs {first}-{epochs}'
    return ([f'trained {done} in {console.duration(seconds)}; {head}']
            + console.written(
                [('best weights', [best_dir]),
                 ('last checkpoint', [weights.epoch_dir(save_dir, epochs, name)]),
                 ('curves', [os.path.join(save_dir, 'train_curves.png')]),
                 ('log', [os.path.join(save_dir, name)
                          for name in ('train_log.csv', 'train_log.json', RUN_LOG)]),
                 ('config', [os.path.join(save_dir, RUN_CONFIG)])]))


def visualdl_writer(folder):
    """A function logging an epoch row's numbers to VisualDL in `folder`, or None when no
    folder is set; a set folder without the visualdl package is an error at start-up."""
    if not folder:
        return None
    try:
        from visualdl import LogWriter  # here: an optional package, for TRAIN.visualdl_dir
    except ImportError:
        raise cli.UsageError(f'TRAIN.visualdl_dir {folder}: needs the visualdl package '
                             f'(pip install visualdl)') from None
    writer = LogWriter(logdir=folder)

    def scalars(row):
        for key, value in row.items():
            if key != 'epoch' and isinstance(value, (int, float)):
                writer.add_scalar(tag=key, value=value, step=row['epoch'])
        writer.flush()
    return scalars


def publish(save_dir, name, epoch, model, optimizer, rows, best, keep, inputs=None):
    """The epoch's checkpoint (with the log so far and the `inputs` settings its frames were
    made with, configs.recorded), the logs rewritten from its rows,
    the best folder when it is the best, then the old checkpoints beyond `keep` removed. A
    kill between two of these leaves the best folder behind the logs at worst, which the
    next start repairs from the checkpoint of the best epoch: that one is never removed
    before the best folder holds its weights."""
    state = {'epoch': epoch, 'best_top1': best.top1, 'best_epoch': best.epoch, 'log': rows,
             **({'input': inputs} if inputs else {})}
    weights.write_checkpoint(weights.epoch_dir(save_dir, epoch, name), model, optimizer, state)
    write_logs(save_dir, rows)
    if best.epoch == epoch:
        weights.write_weights(weights.best_dir(save_dir, name), model, state)
    # resumed from an earlier epoch, TSM_best may hold a later one of the first run
    weights.sync_best(save_dir, best.epoch, name)
    weights.prune(save_dir, keep, best.epoch, name)


if __name__ == '__main__':
    cli.run('train', main)
