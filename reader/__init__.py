"""List file -> batches of clips: sampling, decoding, transforms, dataset and loader."""
from .dataset import FAILED_LABEL, NO_LABEL, VideoDataset, check_failures, load_clip
from .listfile import ListFileError, read_list
from .loader import make_loader

__all__ = ['FAILED_LABEL', 'NO_LABEL', 'ListFileError', 'VideoDataset', 'check_failures',
           'load_clip', 'make_loader', 'read_list']
