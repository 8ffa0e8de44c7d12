"""The optimisation of a TSM: the learning rate scaled to the global batch, the optimizer and
its schedule, parameter groups, and one epoch of updates (gradient accumulation, mixed
precision, data parallel) stopped at the first loss or weights that stop being finite.
train.py runs it epoch by epoch; the benchmarks time its step.
"""
import bisect
import collections
import math
import time

import paddle
import paddle.nn.functional as F

import console
from models import parallel
from models.finite import NonFiniteError, all_finite, non_finite_parameter


def global_batch(train, world):
    return train['batch_size'] * world * train['accum_steps']


def scaled_lr(train, world):
    """The linear scaling rule: the rate stated for lr_reference_batch clips, times the
    global batch over it."""
    return train['learning_rate'] * global_batch(train, world) / train['lr_reference_batch']


def build_optimizer(model, train, steps_per_epoch, base_lr):
    """Momentum SGD, L2 decay, global-norm clipping; the LR schedule is stepped per update:
    a linear warm-up from 0, then base_lr times lr_decay at each of lr_decay_epochs."""
    warmup_steps = int(train['warmup_epochs'] * steps_per_epoch)
    # LinearWarmup steps the wrapped schedule from the end of the warm-up, so the decay
    # boundaries are counted from there to land on the configured epochs
    boundaries = [e * steps_per_epoch - warmup_steps for e in train['lr_decay_epochs']]
    lr = paddle.optimizer.lr.LambdaDecay(
        base_lr, lambda step: train['lr_decay'] ** bisect.bisect_right(boundaries, step))
    if warmup_steps:
        lr = paddle.optimizer.lr.LinearWarmup(lr, warmup_steps, 0.0, base_lr)
    optimizer = paddle.optimizer.Momentum(
        learning_rate=lr, momentum=train['momentum'],
        parameters=parameter_groups(model, train['param_groups']),
        weight_decay=paddle.regularizer.L2Decay(train['l2_weight_decay']),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(train['clip_norm']))
    return optimizer, lr


# The original TSM code's optimisation policy (its get_optim_policies, with the classifier
# new, as when it trains from ImageNet or another dataset's weights): (learning-rate factor,
# whether L2 decay applies) of weights and biases of convolutions, of BatchNorm, and of the
# classifier.
MIT_POLICY = {'conv': ((1, True), (2, False)), 'norm': ((1, False), (1, False)),
              'classifier': ((5, True), (10, False))}


def parameter_groups(model, policy):
    """The optimizer's parameters: all alike ('plain'), or in the groups of MIT_POLICY
    ('mit'), each a dict with its learning-rate factor and, without decay, weight_decay 0."""
    if policy == 'plain':
        return model.parameters()
    groups = collections.defaultdict(list)
    for layer in model.sublayers(include_self=True):
        kind = ('norm' if isinstance(layer, paddle.nn.layer.norm._BatchNormBase) else
                'classifier' if isinstance(layer, paddle.nn.Linear) else 'conv')
        for name, param in layer.named_parameters(include_sublayers=False):
            if not param.stop_gradient:
                groups[MIT_POLICY[kind][name != 'weight']].append(param)
    return [{'params': params, 'learning_rate': float(factor),
             **({} if decay else {'weight_decay': 0.0})}
            for (factor, decay), params in sorted(groups.items())]


def masked_loss(logits, labels):
    """(Summed cross-entropy, top-1 hits, count) over the items that decoded (label >= 0)."""
    keep = (labels >= 0).astype('float32')
    losses = F.cross_entropy(logits.astype('float32'), labels.clip(min=0).unsqueeze(-1),
                             reduction='none')
    hits = ((logits.argmax(axis=-1) == labels).astype('float32') * keep).sum()
    return (losses.flatten() * keep).sum(), hits, keep.sum()


def updates_per_epoch(loader, accum_steps):
    return -(-len(loader) // accum_steps)


def train_update(model, group, optimizer, precision):
    """One optimizer update from the batches of `group` (accum_steps of them, fewer at the
    end of an epoch): their gradients are summed, the loss being the mean over every clip of
    the group that decoded, so the update is the one of a single batch of all those clips.
    Across data-parallel ranks only the last backward averages gradients. Returns the
    summed loss, hits, clips, dropped items and decode failures of the group."""
    total = sum(int((labels >= 0).sum()) for _, labels, _ in group)
    sums = [0.0, 0.0, 0, 0, 0]
    for k, (clips, labels, n_failures) in enumerate(group):
        with parallel.no_sync(model, k < len(group) - 1):
            with precision.autocast():
                logits = model(clips[:, 0])
            loss, hits, count = masked_loss(logits, labels)
            # A rank with nothing decoded still joins the ranks' gradient average.
            if total or parallel.world_size() > 1:
                precision.backward(loss / max(total, 1))
        sums = [sums[0] + float(loss), sums[1] + float(hits), sums[2] + int(count),
                sums[3] + int(labels.shape[0]) - int(count), sums[4] + int(n_failures.sum())]
    if total or parallel.world_size() > 1:
        precision.step(optimizer)
        optimizer.clear_grad()
    return sums


def train_one_epoch(model, loader, optimizer, lr, precision, epoch, train):
    """One pass over `loader`; returns the epoch's mean loss, top-1 and item counts, summed
    over all ranks."""
    model.train()
    accum = train['accum_steps']
    sums = [0.0, 0.0, 0, 0, 0]  # loss, hits, clips, dropped, decode failures
    start = time.time()
    batches = iter(loader)
    steps = updates_per_epoch(loader, accum)
    progress = console.Progress(steps, f'epoch {epoch}', train['log_interval'],
                                shown=parallel.is_main())
    for step in range(steps):
        group = [next(batches) for _ in range(min(accum, len(loader) - step * accum))]
        update = train_update(model, group, optimizer, precision)
        check_update(model, update[0], f'epoch {epoch} step {step + 1}/{steps}', optimizer,
                     train)
        sums = [a + b for a, b in zip(sums, update)]
        lr.step()
        seen = max(sums[2], 1)
        progress.update({'loss': f'{sums[0] / seen:.4f}', 'top1': f'{sums[1] / seen:.3f}',
                         'clips/s': f'{sums[2] / (time.time() - start):.1f}',
                         'lr': f'{optimizer.get_lr():.3g}'})
    progress.close()
    loss, hits, clips, dropped, failures = parallel.all_sum(sums)
    seen = max(clips, 1)
    return {'train_loss': loss / seen, 'train_top1': hits / seen, 'clips': int(clips),
            'dropped': int(dropped), 'decode_failures': int(failures),
            'seconds': round(time.time() - start, 2)}


def diverged(what, optimizer, train):
    """The error that stops a diverged run, naming `what` went non-finite and the likely
    causes; nothing of the epoch has been saved."""
    return NonFiniteError(
        f'{what}: the run diverged; likely a learning rate too high (TRAIN.learning_rate '
        f'{train["learning_rate"]:g}, {optimizer.get_lr():.3g} at this step) or clips holding '
        f'NaN or infinity; nothing of this epoch is saved, the checkpoints of the earlier '
        f'epochs are kept')


def check_update(model, loss, where, optimizer, train):
    """Stop at the first update whose loss is not finite, or whose weights are not: a loss
    can stay finite (clipped logits) while the update leaves NaN weights behind."""
    if not math.isfinite(loss):
        raise diverged(f'{where}: the training loss is {loss}', optimizer, train)
    if not all_finite(model):
        raise diverged(f'{where}: {non_finite_parameter(model)} is NaN or infinite after the '
                       f'update (loss {loss:.4g})', optimizer, train)
