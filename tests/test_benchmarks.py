"""benchmarks/onednn_training.py, the check behind the training-speed figures of docs/speed.md,
on a tiny ResNet-18 step."""
import json
import subprocess
import sys

import pytest

from tests.commands import ROOT


@pytest.fixture(scope='module')
def variants(tmp_path_factory):
    out = tmp_path_factory.mktemp('onednn') / 'onednn.json'
    subprocess.run([sys.executable, 'benchmarks/onednn_training.py', '--depth', '18',
                    '--seg_num', '2', '--size', '32', '--batch', '2', '--steps', '1',
                    '--out', str(out)], cwd=ROOT, check=True, capture_output=True)
    return json.loads(out.read_text())['variants']


def test_onednn_training_reports_each_variant(variants):
    assert list(variants) == ['eager', 'static', 'static_onednn']
    for name in ('eager', 'static'):
        v = variants[name]
        assert v['ran'] and v['onednn_per_step'] >= 0
        assert len(v['seconds']) == 1 and 0 < v['seconds'][0] < 60
    onednn = variants['static_onednn']
    if onednn['ran']:
        assert onednn['onednn_per_step'] > 0
    else:
        assert 'raises an exception' in onednn['error'] or 'exit code' in onednn['error']


@pytest.mark.environment
def test_paddle_runs_no_onednn_kernel_in_training(variants):
    """The premise of docs/speed.md's training section: Paddle's dynamic mode (and the static
    Program without oneDNN) runs no oneDNN kernel on the CPU; a release that does fails
    this test, and the training step may then use them."""
    assert variants['eager']['onednn_per_step'] == 0
    assert variants['static']['onednn_per_step'] == 0


@pytest.mark.parametrize('depth', [18, 50])
def test_the_torchvision_stand_in_is_torchvisions_resnet(depth):
    """benchmarks/torchvision_resnet.py, which builds the original network where torchvision
    does not import: its parameter names are torchvision's, and it computes what the
    functional torchvision ResNet of tests/source_nets.py computes from the same weights."""
    torch = pytest.importorskip('torch')
    import numpy as np
    sys.path.insert(0, f'{ROOT}/benchmarks')
    try:
        import torchvision_resnet
    finally:
        sys.path.remove(f'{ROOT}/benchmarks')
    from tests import source_nets as src
    names = src.TorchvisionNames(depth)
    state = src.random_state(names, depth, 10, seed=depth)
    net = torchvision_resnet.BUILDERS[depth](num_classes=10)
    missing, unexpected = net.load_state_dict(
        {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=False)
    assert unexpected == [] and all(k.endswith('num_batches_tracked') for k in missing)
    net.eval()
    x = np.random.default_rng(1).standard_normal([2, 1, 3, 64, 64], dtype=np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x[:, 0])).numpy()
    want = src.torch_forward(state, names, depth, x, 1, shift=False)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5
