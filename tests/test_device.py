"""models/device.py: on the CPU that select_device picks, freed tensors' memory serves the next
ones, whose pages do not fault in again."""
import os
import subprocess
import sys

import pytest

from tests.commands import ROOT

CHILD = '''
import resource, sys
import models, paddle
from models import device
if sys.argv[1] == 'select':
    device.select_device(False)
# 64 MiB tensors written whole and freed, one at a time. (Paddle alone: a numpy copy of each
# one, of another size with its header, leaves holes the next block may not fit.)
# The fewest faults of three rounds of ten: a small allocation of Paddle's may land in a freed
# block once, and the next tensor then takes fresh pages, which the next rounds reuse.
paddle.full([16 * 1024 * 1024], 1.0)
rounds = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        paddle.full([16 * 1024 * 1024], 2.0)
    rounds.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(rounds), paddle.get_device())
'''


def child(mode):
    out = subprocess.run([sys.executable, '-c', CHILD, mode], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), out[1]


PAGES = 10 * 64 * 2 ** 20 // os.sysconf('SC_PAGE_SIZE')  # of the ten 64 MiB tensors


@pytest.mark.environment
def test_without_the_setting_freed_tensor_pages_fault_in_again():
    """The premise of select_device's setting: glibc maps each large block afresh, so the
    tensors' pages fault in every time. When a release stops doing so, the setting goes."""
    faults, _ = child('plain')
    assert faults >= PAGES


def test_freed_tensor_memory_is_reused_without_page_faults():
    faults, place = child('select')
    # the heap is reused: in the best round of ten tensors, not one tensor's pages fault in
    # again (one 64 MiB tensor is 16384 pages), against all ten rounds' pages without
    assert place == 'cpu' and faults < PAGES // 10
