"""Paddle's known console noise is hidden, and nothing else."""
import os
import shutil
import warnings

import paddle
import pytest

import noise
from tests.commands import command

# a piece of each line Paddle prints that noise.py hides
NOISE = ('No ccache found', 'ReduceMeanCheckIfOneDNNSupport', "'place' interface",
         'not support input out tensor', 'always track global mean')


def assert_quiet(out):
    for piece in NOISE:
        assert piece not in out, f'{piece!r} printed:\n{out}'


@pytest.mark.parametrize('script', ['train.py', 'eval.py', 'predict.py', 'export.py'])
def test_help_prints_no_paddle_warning(script):
    status, out = command(script, '--help')
    assert status == 0 and out.startswith(f'usage: {script}'), out
    assert_quiet(out)


@pytest.mark.skipif(shutil.which('ccache') is not None, reason='Paddle warns without ccache')
def test_known_paddle_warnings_are_hidden_and_every_other_kept():
    from paddle.utils.cpp_extension import extension_utils
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        noise.quiet_warnings()
        # what `import paddle` warns, from where it warns (Paddle 2.6 has no function for it)
        warnings.warn_explicit('No ccache found. Please be aware that recompiling all source '
                               'files may be required.', UserWarning, extension_utils.__file__,
                               1, module=extension_utils.__name__)
        norm = paddle.nn.BatchNorm2D(2)
        norm.train()  # returns None in Paddle 2.6
        norm(paddle.ones([2, 2, 3, 3]))
        # the same module with another message, the same message from another module
        warnings.warn_explicit('When evaluating, something else', UserWarning,
                               extension_utils.__file__, 1, module='paddle.nn.layer.norm')
        warnings.warn_explicit('No ccache found', UserWarning, __file__, 1, module=__name__)
        warnings.warn('a warning of ours')
    assert [str(w.message) for w in caught] == ['When evaluating, something else',
                                               'No ccache found', 'a warning of ours']


def test_dropped_lines_drop_the_known_lines_only(capfd):
    with noise.dropped_lines(1):
        print('python, before', flush=True)
        os.write(1, b'ReduceMeanCheckIfOneDNNSupport\nfrom C, after\n')
    with noise.dropped_lines(2):
        os.write(2, b'W1204 22:05:28.096750   953 eager_utils.cc:3584] Paddle static graph(PIR)'
                    b' not support input out tensor for now!!!!!\n'
                    b'W1204 22:05:28.096751   953 eager_utils.cc:3590] a real warning\n')
    out, err = capfd.readouterr()
    assert out == 'python, before\nfrom C, after\n'
    assert err == 'W1204 22:05:28.096751   953 eager_utils.cc:3590] a real warning\n'


def test_a_block_that_raises_still_gives_its_output_back(capfd):
    with pytest.raises(RuntimeError), noise.dropped_lines(2):
        os.write(2, b'the cause\n')
        raise RuntimeError('stop')
    assert capfd.readouterr().err == 'the cause\n'
    os.write(2, b'after\n')  # the descriptor is the terminal's again
    assert capfd.readouterr().err == 'after\n'


# paddle.distributed.launch's standard error in a two-rank run (Paddle 3.3.1), abridged, and
# the lines a failed rank adds; the rank's own messages pass.
LAUNCHER_OUTPUT = b'''\
LAUNCH INFO 2026-12-05 01:47:01,455 -----------  Configuration  ----------------------
LAUNCH INFO 2026-12-05 01:47:01,455 auto_cluster_config: 0
LAUNCH INFO 2026-12-05 01:47:01,455 devices: None
LAUNCH INFO 2026-12-05 01:47:01,456 log_dir: /tmp/ll-test
LAUNCH INFO 2026-12-05 01:47:01,456 servers: 
LAUNCH INFO 2026-12-05 01:47:01,456 training_script_args: []
LAUNCH INFO 2026-12-05 01:47:01,456 --------------------------------------------------
LAUNCH INFO 2026-12-05 01:47:01,456 Job: default, mode collective, replicas 1[1:1], elastic False
LAUNCH INFO 2026-12-05 01:47:01,456 Run Pod: fazuma, replicas 2, status ready
LAUNCH INFO 2026-12-05 01:47:01,474 Watching Pod: fazuma, replicas 2, status running
01:47:02 INFO epoch 1/2  loss  1.7918  top1 0.250
LAUNCH INFO 2026-12-05 01:47:02,475 Pod completed
LAUNCH INFO 2026-12-05 01:47:02,475 Exit code 0
LAUNCH INFO 2026-12-05 01:48:10,001 Pod failed
LAUNCH ERROR 2026-12-05 01:48:10,001 Container failed !!!
LAUNCH INFO 2026-12-05 01:48:10,002 Exit code 1
'''


def test_the_launchers_banner_is_dropped_and_its_failures_kept():
    import io
    sink = io.BytesIO()
    noise.filter_launcher(io.BytesIO(LAUNCHER_OUTPUT), sink)
    assert sink.getvalue().decode().splitlines() == [
        '01:47:02 INFO epoch 1/2  loss  1.7918  top1 0.250',
        'LAUNCH INFO 2026-12-05 01:48:10,001 Pod failed',
        'LAUNCH ERROR 2026-12-05 01:48:10,001 Container failed !!!',
        'LAUNCH INFO 2026-12-05 01:48:10,002 Exit code 1']
