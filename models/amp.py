"""Mixed-precision training through paddle.amp: auto_cast level O1 (convolutions and matrix
products in fp16 or bf16, the rest and the master weights in fp32) and, for fp16, a GradScaler
so small gradients survive. Weights and checkpoints stay fp32.

Paddle's AMP acts on GPUs only (on the CPU it warns and computes in fp32), so `Precision`
says once which precision a run really uses and never claims AMP that is not happening.
"""
import contextlib
import logging

import paddle

from .device import cuda_available

AMP_MODES = ('off', 'fp16', 'bf16')
_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}

log = logging.getLogger(__name__)


def _supported(mode):
    """Whether this GPU computes `mode` (bf16 needs compute capability 8.0 or newer)."""
    check = getattr(paddle.amp, 'is_float16_supported' if mode == 'fp16'
                    else 'is_bfloat16_supported', None)
    return True if check is None else bool(check())


class Precision:
    """The training step's precision: `autocast()` around the forward pass, `backward`
    and `step` in place of loss.backward() and optimizer.step()."""

    def __init__(self, mode):
        if mode not in AMP_MODES:
            raise ValueError(f'TRAIN.amp: expected one of {AMP_MODES}, got {mode!r}')
        self.mode = mode
        if mode != 'off' and not cuda_available():
            log.info('TRAIN.amp %s: Paddle runs mixed precision on GPUs only; training in '
                     'fp32 on the CPU', mode)
            self.mode = 'off'
        elif mode != 'off' and not _supported(mode):
            log.info('TRAIN.amp %s: this GPU has no %s arithmetic; training in fp32', mode,
                     mode)
            self.mode = 'off'
        elif mode != 'off':
            log.info('TRAIN.amp %s: paddle.amp O1, fp32 master weights', mode)
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) \
            if self.mode == 'fp16' else None

    def autocast(self):
        if self.mode == 'off':
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(level='O1', dtype=_DTYPES[self.mode])

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer):
        """One update; with fp16 the gradients are unscaled first and a step whose gradients
        overflowed is skipped (the scaler lowers its scale)."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
