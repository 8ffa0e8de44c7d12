"""models/workarounds/mkl.py: the MKL code path for each kind of CPU, a value the user set
kept, and the
path this machine gets computing the same products as numpy."""
import os
import subprocess
import sys

import pytest

from models.workarounds import mkl

from tests.commands import ROOT

ZEN4 = 'fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16'
ZEN2 = 'fpu sse2 avx avx2 fma bmi2'


def write_cpuinfo(tmp_path, vendor, flags):
    text = ''.join(f'processor\t: {i}\nvendor_id\t: {vendor}\nmodel name\t: CPU {vendor}\n'
                   f'flags\t\t: {flags}\n\n' for i in range(2))
    path = tmp_path / 'cpuinfo'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('vendor, flags, want', [
    ('AuthenticAMD', ZEN4, '7'),              # AVX-512: MKL's AVX-512 path
    ('AuthenticAMD', ZEN2, '5'),              # AVX2 and FMA: the AVX2 path
    ('AuthenticAMD', 'fpu sse2 avx', None),   # no AVX2: MKL's own choice
    ('AuthenticAMD', 'avx2 fma avx512f avx512bw', '5'),  # part of AVX-512: AVX2
    ('HygonGenuine', ZEN2, '5'),
    ('GenuineIntel', ZEN4, None),             # MKL picks Intel's best path itself
])
def test_code_path_for_each_cpu(tmp_path, vendor, flags, want):
    info = mkl.cpu_info(write_cpuinfo(tmp_path, vendor, flags))
    assert info['vendor'] == vendor and info['model'] == f'CPU {vendor}'
    assert mkl.code_path(info) == want


def test_no_cpuinfo_means_no_path(tmp_path):
    info = mkl.cpu_info(str(tmp_path / 'absent'))
    assert info == {'vendor': '', 'model': '', 'flags': set()}
    assert mkl.code_path(info) is None


def test_a_value_the_user_set_is_kept(monkeypatch):
    monkeypatch.setattr(mkl, 'code_path', lambda info: '7')
    assert mkl.use_best_code_path({'MKL_DEBUG_CPU_TYPE': '4'}) == '4'
    environ = {}
    assert mkl.use_best_code_path(environ) == '7' and environ == {'MKL_DEBUG_CPU_TYPE': '7'}


CHILD = '''
import os, numpy as np
import paddle, paddle.nn.functional as F
before = dict(os.environ)  # after paddle's import, which sets variables of its own
import models
from models.workarounds import mkl
from models.device import use_cpu
print(dict(os.environ) == before)  # importing the package changes nothing
use_cpu(1)
print(os.environ.get('MKL_DEBUG_CPU_TYPE'), mkl.code_path(mkl.cpu_info()))
rng = np.random.default_rng(0)
a, b = rng.standard_normal([96, 300]), rng.standard_normal([300, 1000])
got = paddle.matmul(paddle.to_tensor(a, 'float32'), paddle.to_tensor(b, 'float32')).numpy()
print(np.abs(got - a @ b).max() / np.abs(a @ b).max())
x, w = rng.standard_normal([2, 16, 9, 9]), rng.standard_normal([8, 16, 1, 1])
got = F.conv2d(paddle.to_tensor(x, 'float32'), paddle.to_tensor(w, 'float32')).numpy()
want = np.einsum('nchw,oc->nohw', x, w[:, :, 0, 0])
print(np.abs(got - want).max() / np.abs(want).max())
'''


def test_the_scripts_cpu_set_up_sets_this_cpus_path_which_computes_right():
    environ = {k: v for k, v in os.environ.items() if k != 'MKL_DEBUG_CPU_TYPE'}
    out = subprocess.run([sys.executable, '-c', CHILD], cwd=ROOT, env=environ, check=True,
                         capture_output=True, text=True).stdout.split('\n')
    assert out[0] == 'True'
    in_force, chosen = out[1].split()
    assert in_force == chosen  # 'None None' on an Intel CPU or one without AVX2
    assert float(out[2]) < 1e-5 and float(out[3]) < 1e-5


def test_the_path_set_is_logged(monkeypatch, caplog):
    from models import device
    monkeypatch.setattr(mkl, 'code_path', lambda info: '7')
    monkeypatch.delenv('MKL_DEBUG_CPU_TYPE', raising=False)
    with caplog.at_level('INFO', logger=device.__name__):
        device.use_cpu(1)
    assert os.environ['MKL_DEBUG_CPU_TYPE'] == '7'
    assert 'MKL code path: MKL_DEBUG_CPU_TYPE=7 (AVX-512)' in caplog.text
