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

A file's size is checked before it is read, and its header (dtype and shape) before its
data: a small .tar.gz can unpack into gigabytes, and nothing that big is a ResNet.
"""
import io
import math
import os
import struct
import tarfile

import numpy as np

from .errors import WeightsError

# framework.proto VarType.Type values of the dtypes a parameter file can hold.
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16,
           5: np.float32, 6: np.float64, 20: np.uint8, 21: np.int8}
# The most the parameter files of one model may take in all: ten times a ResNet-101's.
MAX_STATE_BYTES = 2 << 30


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


def _unpack(fmt, f, pos, size, where):
    count = struct.calcsize(fmt)
    if pos + count > size:
        raise WeightsError(f'{where}: file ends at byte {size}, inside the header')
    return struct.unpack(fmt, f.read(count))[0], pos + count


def _read_header(f, size, where):
    """(dtype, dims, header length) of the fluid parameter file of `size` bytes open at
    its start in `f`; reads the header alone."""
    version, pos = _unpack('<I', f, 0, size, where)
    if version != 0:
        raise WeightsError(f'{where}: not a fluid LoDTensor file (version {version}, expected 0)')
    lod_level, pos = _unpack('<Q', f, pos, size, where)
    for _ in range(lod_level):
        level_size, pos = _unpack('<Q', f, pos, size, where)
        if pos + level_size > size:
            raise WeightsError(f'{where}: file ends at byte {size}, inside the header')
        f.seek(level_size, io.SEEK_CUR)
        pos += level_size
    version, pos = _unpack('<I', f, pos, size, where)
    if version != 0:
        raise WeightsError(f'{where}: tensor version {version}, expected 0')
    desc_size, pos = _unpack('<i', f, pos, size, where)
    if desc_size < 0 or pos + desc_size > size:
        raise WeightsError(f'{where}: bad tensor description size {desc_size}')
    dtype, dims = parse_tensor_desc(f.read(desc_size), where)
    return dtype, dims, pos + desc_size


def read_lod_tensor_file(f, size, where):
    """The array of the fluid parameter file of `size` bytes open in `f`; `where` names it
    in errors. The data is read only once the header accounts for every byte."""
    dtype, dims, pos = _read_header(f, size, where)
    nbytes = math.prod(dims) * dtype.itemsize
    if pos + nbytes != size:
        raise WeightsError(f'{where}: {size - pos} data bytes for a {dtype} tensor of '
                           f'shape {dims} ({nbytes} expected)')
    data = bytearray(nbytes)  # writable, so the array needs no copy
    if f.readinto(data) != nbytes:
        raise WeightsError(f'{where}: file ends before its {nbytes} data bytes')
    return np.frombuffer(data, dtype).reshape(dims)


def read_lod_tensor(buf, where):
    """The array held by one fluid parameter file's bytes; `where` names it in errors."""
    return read_lod_tensor_file(io.BytesIO(buf), len(buf), where)


def _check_size(size, left, where):
    """Refuse a file of `size` bytes when the files read before it leave `left` bytes."""
    if size > left:
        raise WeightsError(f'{where}: {size} bytes, more than the {left} left of the '
                           f'{MAX_STATE_BYTES} the parameter files of one model may take')


def read_tarball(path):
    """{parameter name: array} from a tarball of fluid parameter files (any folder depth)."""
    state, left = {}, MAX_STATE_BYTES
    with tarfile.open(path) as tar:
        for member in tar:
            name = os.path.basename(member.name)
            # '__model__' and the like hold a program, not a parameter.
            if not member.isfile() or name.startswith(('.', '__')):
                continue
            where = f'{path}:{member.name}'
            _check_size(member.size, left, where)
            with tar.extractfile(member) as f:
                state[name] = read_lod_tensor_file(f, member.size, where)
            left -= member.size
    if not state:
        raise WeightsError(f'{path}: the tarball holds no parameter files')
    return state


def read_folder(path):
    """{parameter name: array} from a folder of fluid parameter files."""
    state, left = {}, MAX_STATE_BYTES
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not name.startswith(('.', '__')):
            size = os.path.getsize(full)
            _check_size(size, left, full)
            with open(full, 'rb') as f:
                state[name] = read_lod_tensor_file(f, size, full)
            left -= size
    if not state:
        raise WeightsError(f'{path}: the folder holds no parameter files')
    return state
