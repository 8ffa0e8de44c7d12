"""The TSM network, its temporal shift and its weight files."""
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
from .checkpoint import (load_checkpoint, load_pretrain, load_weights,
                         save_checkpoint)
from .shift import temporal_shift
from .tsm import TSM

__all__ = ['TSM', 'temporal_shift', 'save_checkpoint', 'load_weights',
           'load_pretrain', 'load_checkpoint']
