"""Paddle's console noise: the exact messages it prints that say nothing a user can act on,
and the means to hide those and nothing else. A workaround for Paddle's current releases in a
room of its own: an entry goes when Paddle stops printing its message.

Python warnings are hidden by filters the scripts set at their start, before paddle's import
(which warns about a missing ccache whatever the command); any other warning, Paddle's
included, still shows. Lines that Paddle's C++ code writes straight to the process's output
are dropped by `dropped_lines` around the calls known to print them. paddle.distributed.launch
prints its settings and its pods' progress on its standard error: run.sh passes that through
`filter_launcher`, which drops those lines and keeps the rest (the launcher's errors, a failed
pod's exit code, the ranks' own messages).
"""
import contextlib
import ctypes
import os
import re
import signal
import sys
import tempfile
import warnings

# (message, module that warns): Python warnings, matched from the message's start
WARNINGS = (
    # every `import paddle`: its C++-extension builder looks for ccache
    ('No ccache found', r'paddle\.utils\.cpp_extension'),
    # the export's trace: paddle.zeros_like asks its own static tensor for a device
    ("Tensor do not have 'place' interface for pir graph mode", r'paddle\.pir'),
    # every training run: BatchNorm's forward says so on each call in train mode
    ('When training, we now always track global mean and variance', r'paddle\.nn\.layer'),
)
# Lines of Paddle's C++ code, whole lines: oneDNN's kernel choice at a predictor's first run
# (standard output), glog at the export's trace, where paddle.add passes its own out=None, and
# paddle2onnx's progress (standard output; its errors are other lines).
LINES = re.compile(
    rb'(ReduceMeanCheckIfOneDNNSupport'
    rb'|W\d{4} [\d:.]+ +\d+ eager_utils\.cc:\d+\] Paddle static graph\(PIR\) not support '
    rb'input out tensor for now!*'
    rb'|\[Paddle2ONNX\] (?:Start parsing the Paddle model file\.\.\.|Use opset_version = \d+ '
    rb'for ONNX export\.|PaddlePaddle model is exported as ONNX format now\.))\r?\n?')

# paddle.distributed.launch's banner: its settings (a ruled block of `key: value` lines) and a
# run's pods that start and end well
LAUNCHER = re.compile(
    rb'LAUNCH INFO [\d-]+ [\d:,]+ '
    rb'(-{10,}.*|[a-z_]+: .*|Job: .*|Run Pod: .*|Watching Pod: .*|Pod completed|Exit code 0)'
    rb'\r?\n?')


def quiet_warnings():
    """Ignore the known warnings of WARNINGS, nothing else; the scripts call it first."""
    for message, module in WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=UserWarning,
                                module=module)


def known_line(line):
    return LINES.fullmatch(line) is not None


@contextlib.contextmanager
def dropped_lines(fd):
    """Run the block with file descriptor `fd` (1 or 2) held in a temporary file, then write
    what it received to `fd` without the known lines of LINES: for C++ code that prints to
    the descriptor itself. What the block prints comes out when it ends, in its order."""
    stream = {1: sys.stdout, 2: sys.stderr}[fd]
    try:
        stream.flush()
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no such descriptor: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            _flush_all(stream)
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            for line in held:
                if not known_line(line):
                    os.write(fd, line)


def _flush_all(stream):
    """Python's buffer of `stream`, then C's buffers (C++ streams flush through them)."""
    with contextlib.suppress(OSError, ValueError):
        stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def filter_launcher(source=None, sink=None):
    """Copy `source` to `sink` (standard input and error) line by line without the lines of
    LAUNCHER. It outlives a Ctrl-C, which stops the job: the launcher's last words come
    through until it closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = source or sys.stdin.buffer
    sink = sink or sys.stderr.buffer
    for line in iter(source.readline, b''):
        if not LAUNCHER.fullmatch(line):
            sink.write(line)
            sink.flush()
