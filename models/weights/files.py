"""Read any supported weight file into {name: numpy array}, whatever framework wrote it.

The kind of file is told by its first bytes, not by its name, so a download still named
`<file>.part` is read the same way as the published file.
"""
import logging
import os
import pickle
import re
import tarfile
import zipfile

import numpy as np

from . import unpickle
from .errors import WeightsError
from .fluid import read_folder, read_tarball

log = logging.getLogger(__name__)

_GZIP_MAGIC = b'\x1f\x8b'
# torch.save before 1.6 starts with a pickled magic number (protocol 2, a 10-byte long).
_TORCH_LEGACY_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'


def file_kind(path):
    """'fluid-folder', 'fluid-tarball', 'torch' or 'paddle' for the weight file at path."""
    if os.path.isdir(path):
        return 'fluid-folder'
    if not os.path.isfile(path):
        raise WeightsError(f'{path}: no such weight file')
    with open(path, 'rb') as f:
        head = f.read(len(_TORCH_LEGACY_MAGIC))
    if zipfile.is_zipfile(path) or head.startswith(_TORCH_LEGACY_MAGIC):
        return 'torch'
    if head.startswith(_GZIP_MAGIC) or tarfile.is_tarfile(path):
        return 'fluid-tarball'
    return 'paddle'


def _load_torch(path):
    try:
        import torch  # here: PyTorch is needed only for .pth files, and is large
    except ImportError:
        raise WeightsError(f'{path} is a PyTorch file; reading it needs PyTorch '
                           f'("pip install torch", the CPU build is enough)') from None
    allowed = getattr(torch.serialization, 'safe_globals', None)
    try:
        # weights_only: a checkpoint from the internet must not run code when unpickled.
        if allowed is None:  # torch < 2.5: numpy scalars stay refused
            return torch.load(path, map_location='cpu', weights_only=True)
        with allowed(_numpy_scalar_globals()):
            return torch.load(path, map_location='cpu', weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only, and a full unpickle may run code
        raise WeightsError(f'{path}: reading a PyTorch file safely needs torch >= 1.13 '
                           f'(torch.load weights_only); this is torch {torch.__version__}'
                           ) from None
    except pickle.UnpicklingError as exc:
        asked = re.search(r'GLOBAL (\S+) was not an allowed global', str(exc))
        why = (f'the file asks to import {asked[1]}, which loading could run'
               if asked else str(exc).splitlines()[0])
        raise WeightsError(f'{path}: refused by torch.load(weights_only=True): {why}'
                           ) from None


# mmcv and mmengine checkpoints (mmaction2's) may keep numpy scalars in their 'meta' (a
# score computed with numpy); files written under numpy 1 and 2 name its constructor in
# either module.
_SCALAR_NAMES = ('numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar')
_NUMERIC_DTYPES = '?bhilqBHILQefd'


def _numpy_scalar_globals():
    """What torch.load(weights_only=True) is also allowed to call: numpy's scalar
    constructor (a number from a numeric dtype and its bytes) and those dtypes, nothing
    that can run code."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import scalar
    dtypes = {type(np.dtype(code)) for code in _NUMERIC_DTYPES} - {np.dtype}
    return [(scalar, name) for name in _SCALAR_NAMES] + [np.dtype] + sorted(dtypes, key=str)


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, 'detach'):  # torch.Tensor
        return value.detach().cpu().numpy()
    if hasattr(value, 'numpy'):  # paddle.Tensor
        return np.asarray(value.numpy())
    return None


def state_from_object(obj, path):
    """The {name: array} inside a loaded object (a state dict, or a checkpoint holding one
    under 'state_dict'); entries that are not arrays are dropped with a log line."""
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict):
        raise WeightsError(f'{path}: expected a dict of parameters, got {type(obj).__name__}')
    state, dropped = {}, []
    for name, value in obj.items():
        array = _to_numpy(value)
        if array is None:
            dropped.append(name)
        else:
            state[str(name)] = array
    if dropped:
        log.info('%s: ignored entries that are not tensors: %s', path, ', '.join(dropped))
    if not state:
        raise WeightsError(f'{path}: holds no parameters')
    return state


def read_state(path):
    """{parameter name: numpy array} from a .pdparams (any Paddle version), a PyTorch .pth,
    or fluid per-parameter files (a folder or a .tar.gz of them)."""
    kind = file_kind(path)
    if kind == 'fluid-folder':
        return read_folder(path)
    if kind == 'fluid-tarball':
        return read_tarball(path)
    obj = _load_torch(path) if kind == 'torch' else unpickle.load(path)
    return state_from_object(obj, path)
