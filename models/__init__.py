"""The TSM network and its temporal shift; its weights are in models.weights."""
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
from . import mkl
from .shift import temporal_shift
from .tsm import TSM

try:
    mkl.use_best_code_path()  # MKL fixes its code path at its first matrix product: before any
except ValueError as e:  # a wrong TSM_CODE_PATH, before any script has parsed its flags
    raise SystemExit(f'error: {e}') from None

__all__ = ['TSM', 'temporal_shift']
