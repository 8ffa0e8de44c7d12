"""The CPU's own instructions for the matrix products of Paddle's CPU build on non-Intel CPUs.

Paddle's CPU kernels (convolutions in training and in the dynamic model, matmul, linear)
compute their products with Intel's MKL, which picks its code path by the CPU's vendor: on an
AMD CPU it runs its generic path whatever instructions the CPU has. The MKL that Paddle's CPU
build carries (2019) still takes the path from MKL_DEBUG_CPU_TYPE: 5 selects the AVX2 path, 7
the AVX-512 one. On a 2-core AMD EPYC with AVX-512 (Paddle 3.3.1): a 64x576 by 576x50176
product 111 ms -> 23 ms; the TSM-R50 training step (8x224x224, batch 2) 10.3 s -> 4.1 s; the
dynamic model's clip 2.0 s -> 0.6 s. Paddle Inference (the exported model) computes with
oneDNN, which reads the instructions itself, and is unchanged. MKL reads the variable at its
first product, so models sets it on import, before any; a value the user set is kept.

TSM_CODE_PATH=avx2 (what `bash run.sh demo` sets) runs MKL's and oneDNN's AVX2 paths on every
CPU with AVX2 instead, Intel's included, so that a seeded run computes the same bits on all of
them: the AVX-512 paths add in another order, and the demo's figures moved by a few videos.
On 2-core AMD EPYCs with and without AVX-512 the demo printed the same table this way; on
the AVX-512 one its training took 168 to 197 s in three runs, 201 s in one on MKL's AVX-512
path (32x32 frames: small products, where the wider instructions do not pay).
"""
import os

CPUINFO = '/proc/cpuinfo'
# MKL_DEBUG_CPU_TYPE for each code path, best first, with the instructions it runs.
CODE_PATHS = (('7', {'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'}),
              ('5', {'avx2', 'fma'}))
AVX2_PATH, AVX2_FLAGS = CODE_PATHS[1]
# What TSM_CODE_PATH=avx2 sets: MKL's path by MKL_DEBUG_CPU_TYPE on other vendors' CPUs and by
# its reproducibility mode (MKL_CBWR) on Intel's, oneDNN's by its ISA cap (DNNL_ for the
# oneDNN of Paddle 2.6).
AVX2_ENVIRON = {'MKL_DEBUG_CPU_TYPE': AVX2_PATH, 'MKL_CBWR': 'AVX2',
                'ONEDNN_MAX_CPU_ISA': 'AVX2', 'DNNL_MAX_CPU_ISA': 'AVX2'}
CHOICES = ('best', 'avx2')
# oneDNN ISA caps under which it has no bfloat16 kernels (Paddle Inference then fails to build
# a bf16 predictor, with no message): the AVX2 cap above among them.
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
    """Set MKL_DEBUG_CPU_TYPE for this CPU, or the AVX2 paths where TSM_CODE_PATH says avx2
    and the CPU has AVX2, each variable unless it is set already; MKL_DEBUG_CPU_TYPE in force."""
    choice = environ.get('TSM_CODE_PATH', 'best')
    if choice not in CHOICES:
        raise ValueError(f'TSM_CODE_PATH={choice}: expected one of {", ".join(CHOICES)}')
    info = cpu_info()
    if choice == 'avx2' and AVX2_FLAGS <= info['flags']:
        for key, value in AVX2_ENVIRON.items():
            environ.setdefault(key, value)
    value = code_path(info)
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
