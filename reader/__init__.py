"""List file -> batches of clips: sampling, decoding, transforms, dataset and loader."""
import numpy.random  # noqa: F401  before paddle: Paddle 2.6's libpaddle.so exports zlib
#                    symbols on which numpy.random's first import crashes
from .dataset import (FAILED_LABEL, NO_LABEL, TooManyFailures, VideoDataset, check_failures,
                      load_clip)
from .listfile import ListFileError, read_list
from .loader import make_loader

__all__ = ['FAILED_LABEL', 'NO_LABEL', 'ListFileError', 'TooManyFailures', 'VideoDataset',
           'check_failures', 'load_clip', 'make_loader', 'read_list']
