"""The TSM network, its temporal shift and its weight files."""
from .checkpoint import (load_checkpoint, load_pretrain, load_weights,
                         save_checkpoint)
from .shift import temporal_shift
from .tsm import TSM

__all__ = ['TSM', 'temporal_shift', 'save_checkpoint', 'load_weights',
           'load_pretrain', 'load_checkpoint']
