"""benchmarks/onednn_training.py, the check behind the README's training-speed section, on a
tiny ResNet-18 step."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_onednn_training_reports_each_variant(tmp_path):
    out = tmp_path / 'onednn.json'
    subprocess.run([sys.executable, 'benchmarks/onednn_training.py', '--depth', '18',
                    '--seg_num', '2', '--size', '32', '--batch', '2', '--steps', '1',
                    '--out', str(out)], cwd=ROOT, check=True, capture_output=True)
    variants = json.loads(out.read_text())['variants']
    assert list(variants) == ['eager', 'static', 'static_onednn']
    # the README's premise: Paddle's dynamic mode runs no oneDNN kernel on the CPU; if a
    # Paddle release does, the training step can use them and this test says so
    assert variants['eager']['ran'] and variants['eager']['onednn_per_step'] == 0
    assert variants['static']['ran'] and variants['static']['onednn_per_step'] == 0
    assert all(t > 0 for v in ('eager', 'static') for t in variants[v]['seconds'])
    onednn = variants['static_onednn']
    if onednn['ran']:
        assert onednn['onednn_per_step'] > 0
    else:
        assert 'raises an exception' in onednn['error'] or 'exit code' in onednn['error']
