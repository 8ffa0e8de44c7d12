"""The TSM network and its temporal shift; its weights are in models.weights."""
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
from .shift import temporal_shift
from .tsm import TSM

__all__ = ['TSM', 'temporal_shift']
