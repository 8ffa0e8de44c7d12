"""The CPU's own instructions for the matrix products of Paddle's CPU build on non-Intel CPUs.

Paddle's CPU kernels (convolutions in training and in the dynamic model, matmul, linear)
compute their products with Intel's MKL, which picks its code path by the CPU's vendor: on an
AMD CPU it runs its generic path whatever instructions the CPU has. The MKL that Paddle's CPU
build carries (2019) still takes the path from MKL_DEBUG_CPU_TYPE: 5 selects the AVX2 path, 7
the AVX-512 one, several times faster on an AMD CPU (docs/speed.md). Paddle Inference (the
exported model) computes with oneDNN, which reads the instructions itself, and is unchanged.
MKL reads the variable at its first product, so the scripts and benchmarks set it at start-up
(models.device.use_cpu), before any, and log it; a value the user set is kept. Later MKL
releases ignore the variable: with a Paddle that carries one, this module has nothing left to
do and goes.
"""
import os

CPUINFO = '/proc/cpuinfo'
# MKL_DEBUG_CPU_TYPE for each code path, best first, with the instructions it runs.
CODE_PATHS = (('7', {'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'}),
              ('5', {'avx2', 'fma'}))
PATH_NAMES = {'7': 'AVX-512', '5': 'AVX2'}
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA, set by a user) under which it has no bfloat16 kernels:
# Paddle Inference then fails to build a bf16 predictor, with no message.
NO_BF16_CAPS = ('SSE41', 'AVX', 'AVX2', 'AVX2_VNNI', 'AVX2_VNNI_2', 'AVX512_CORE',
                'AVX512_CORE_VNNI')


def cpu_info(path=CPUINFO):
    """{'vendor', 'model', 'flags'} of the first CPU /proc/cpuinfo lists; empty values where
    the system has no such file."""
    fields = {}
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    return {'vendor': fields.get('vendor_id', ''), 'model': fields.get('model name', ''),
            'flags': set(fields.get('flags', '').split())}


def code_path(info):
    """The MKL_DEBUG_CPU_TYPE value for a CPU of cpu_info(), or None where MKL already picks
    its best path (Intel) or no path beyond the generic one fits (no AVX2)."""
    if info['vendor'] in ('', 'GenuineIntel'):
        return None
    return next((value for value, needs in CODE_PATHS if needs <= info['flags']), None)


def use_best_code_path(environ=os.environ):
    """Set MKL_DEBUG_CPU_TYPE for this CPU unless it is set already; the value in force."""
    value = code_path(cpu_info())
    if value is not None:
        environ.setdefault('MKL_DEBUG_CPU_TYPE', value)
    return environ.get('MKL_DEBUG_CPU_TYPE')


def onednn_cap(environ=os.environ):
    """The oneDNN ISA cap in force as (variable, value), ONEDNN_ before DNNL_MAX_CPU_ISA as
    oneDNN reads them, or None when neither is set."""
    return next(((key, environ[key]) for key in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA')
                 if environ.get(key)), None)


def onednn_runs_bf16(environ=os.environ):
    """False when the oneDNN ISA cap leaves no bfloat16 kernels."""
    cap = onednn_cap(environ)
    return cap is None or cap[1].upper() not in NO_BF16_CAPS
