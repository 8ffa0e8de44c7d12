"""Fluid-era parameter files: one file per parameter, each a serialized LoDTensor.

The old Paddle video zoo ships its ImageNet start (ResNet50_pretrained.tar.gz) as a
tarball of such files, named after the parameters (conv1_weights, bn_conv1_scale, ...).
Byte layout, as written by Paddle's SerializeToStream / TensorToStream (little endian):

    uint32  LoDTensor version (0)
    uint64  lod_level, then per level: uint64 byte size + that many bytes
    uint32  tensor version (0)
    int32   byte size of a TensorDesc protobuf, then the message:
            field 1 varint data_type, field 2 int64 dims (plain or packed)
    raw     numel * itemsize bytes of data, C order
"""
import os
import struct
import tarfile

import numpy as np

from .errors import WeightsError

# framework.proto VarType.Type values of the dtypes a parameter file can hold.
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16,
           5: np.float32, 6: np.float64, 20: np.uint8, 21: np.int8}


def _varint(buf, pos, where):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise WeightsError(f'{where}: tensor description ends inside a varint')
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_tensor_desc(desc, where):
    """(numpy dtype, dims) from a serialized VarType.TensorDesc message."""
    data_type, dims, pos = None, [], 0
    while pos < len(desc):
        key, pos = _varint(desc, pos, where)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 0:
            data_type, pos = _varint(desc, pos, where)
        elif field == 2 and wire == 0:
            dim, pos = _varint(desc, pos, where)
            dims.append(_signed64(dim))
        elif field == 2 and wire == 2:
            size, pos = _varint(desc, pos, where)
            end = pos + size
            while pos < end:
                dim, pos = _varint(desc, pos, where)
                dims.append(_signed64(dim))
        else:
            raise WeightsError(f'{where}: unexpected field {field} (wire type {wire}) in '
                             f'the tensor description')
    if data_type not in _DTYPES:
        raise WeightsError(f'{where}: unsupported tensor data type {data_type!r}')
    if any(d < 0 for d in dims):
        raise WeightsError(f'{where}: tensor dims {dims} are not all known')
    return np.dtype(_DTYPES[data_type]), dims


def _unpack(fmt, buf, pos, where):
    size = struct.calcsize(fmt)
    if pos + size > len(buf):
        raise WeightsError(f'{where}: file ends at byte {len(buf)}, inside the header')
    return struct.unpack_from(fmt, buf, pos)[0], pos + size


def read_lod_tensor(buf, where):
    """The array held by one fluid parameter file's bytes; `where` names it in errors."""
    version, pos = _unpack('<I', buf, 0, where)
    if version != 0:
        raise WeightsError(f'{where}: not a fluid LoDTensor file (version {version}, expected 0)')
    lod_level, pos = _unpack('<Q', buf, pos, where)
    for _ in range(lod_level):
        size, pos = _unpack('<Q', buf, pos, where)
        pos += size
    version, pos = _unpack('<I', buf, pos, where)
    if version != 0:
        raise WeightsError(f'{where}: tensor version {version}, expected 0')
    desc_size, pos = _unpack('<i', buf, pos, where)
    if desc_size < 0 or pos + desc_size > len(buf):
        raise WeightsError(f'{where}: bad tensor description size {desc_size}')
    dtype, dims = parse_tensor_desc(buf[pos:pos + desc_size], where)
    pos += desc_size
    count = int(np.prod(dims, dtype=np.int64))
    if pos + count * dtype.itemsize != len(buf):
        raise WeightsError(f'{where}: {len(buf) - pos} data bytes for a {dtype} tensor of '
                         f'shape {dims} ({count * dtype.itemsize} expected)')
    return np.frombuffer(buf, dtype, count, pos).reshape(dims).copy()


def read_tarball(path):
    """{parameter name: array} from a tarball of fluid parameter files (any folder depth)."""
    state = {}
    with tarfile.open(path) as tar:
        for member in tar:
            name = os.path.basename(member.name)
            # '__model__' and the like hold a program, not a parameter.
            if not member.isfile() or name.startswith(('.', '__')):
                continue
            buf = tar.extractfile(member).read()
            state[name] = read_lod_tensor(buf, f'{path}:{member.name}')
    if not state:
        raise WeightsError(f'{path}: the tarball holds no parameter files')
    return state


def read_folder(path):
    """{parameter name: array} from a folder of fluid parameter files."""
    state = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not name.startswith(('.', '__')):
            with open(full, 'rb') as f:
                state[name] = read_lod_tensor(f.read(), full)
    if not state:
        raise WeightsError(f'{path}: the folder holds no parameter files')
    return state
