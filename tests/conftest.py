"""The suite computes as the scripts do: they set MKL's code path for this CPU at start-up
(models.device.use_cpu), and so does the suite, before its first product, for the tests that
run the model in this process. Weights and the exports eval and predict cache go to a folder
of the run, not to the user's cache, unless TSM_WEIGHTS_HOME names one. The scripts run the
exported model on Paddle Inference (TSM_ENGINE, unless set), not on the fastest engine, which
builds and times every engine's export of each model (tests of the engines name theirs)."""
import os

import pytest

from models.workarounds import mkl

mkl.use_best_code_path()


@pytest.fixture(scope='session', autouse=True)
def weights_home(tmp_path_factory):
    if os.environ.get('TSM_WEIGHTS_HOME'):
        yield os.environ['TSM_WEIGHTS_HOME']
        return
    os.environ['TSM_WEIGHTS_HOME'] = str(tmp_path_factory.mktemp('weights_home'))
    yield os.environ['TSM_WEIGHTS_HOME']
    del os.environ['TSM_WEIGHTS_HOME']


@pytest.fixture(scope='session', autouse=True)
def default_engine():
    if os.environ.get('TSM_ENGINE'):
        yield os.environ['TSM_ENGINE']
        return
    os.environ['TSM_ENGINE'] = 'paddle'
    yield 'paddle'
    del os.environ['TSM_ENGINE']
