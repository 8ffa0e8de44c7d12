"""Read Paddle's pickled weight files (.pdparams, .pdopt) without running any code they carry.

`paddle.load` unpickles, and unpickling calls whatever the file names, so a weight file from
the internet could run arbitrary code the moment it is loaded. Paddle's own files name only a
few things: numpy arrays and dtypes, which paddle.save writes for every tensor (Paddle 2.x
wrote an optimizer's tensors as `tuple((name, array))`), inside plain dicts, lists and tuples.
This unpickler admits exactly those and refuses anything else with a WeightsError that names
the file and what it asked for; there is no fallback to an unrestricted load.
"""
import pickle

import numpy as np

from .errors import WeightsError

# (module, name) a Paddle weight file may ask for; numpy moved its core to numpy._core in 2.0,
# and files written under either numpy name the module they were written with.
_ALLOWED = {
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('collections', 'OrderedDict'),
    ('builtins', 'tuple'),
    ('_codecs', 'encode'),  # pickle protocol 2 (the old zoo's files) writes bytes with it
}
# paddle.save splits arrays over 4 GB into slices listed under this key (pickle protocols
# 2 and 3); paddle.load puts them back together, and so does `load`.
_BIG_ARRAYS = 'UnpackBigParamInfor@@'
_NAME_TABLE = 'StructuredToParameterName@@'


class _Restricted(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding='latin1')  # Paddle's own loader reads with latin1
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise WeightsError(f'{self.path}: refused to load: the file asks to import '
                           f'{module}.{name}, which no Paddle weight file contains; loading '
                           f'it could run code. Only numpy arrays in plain containers are read')


def _join_big_arrays(obj):
    info = obj.pop(_BIG_ARRAYS, None)
    for key, value in (info or {}).items():
        parts = [obj.pop(part) for part in value['slices']]
        obj[key] = np.concatenate(parts).reshape(value['OriginShape'])
    return obj


def load(path):
    """The object pickled in the Paddle file at `path`: a dict whose tensors are numpy arrays
    (Paddle 2.x optimizer tensors, pickled as (name, array) pairs, become their array).
    WeightsError when the file asks for anything but numpy data, or is not a pickle."""
    try:
        with open(path, 'rb') as f:
            obj = _Restricted(f, path).load()
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as exc:  # the ways a file that is no pickle fails
        raise WeightsError(f'{path}: not a Paddle weight file ({type(exc).__name__}: '
                           f'{exc})') from None
    if not isinstance(obj, dict):
        raise WeightsError(f'{path}: expected a dict of parameters, got {type(obj).__name__}')
    obj = _join_big_arrays(obj)
    obj.pop(_NAME_TABLE, None)
    return {key: _array_of(value) for key, value in obj.items()}


def _array_of(value):
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], np.ndarray)):
        return value[1]
    return value
