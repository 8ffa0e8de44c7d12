"""Freed tensor memory kept in the process on the CPU. To delete when Paddle's CPU allocator
keeps large blocks itself (tests/test_device.py's environment test then fails: the pages of
freed tensors no longer fault in again without this)."""
import ctypes


def keep_freed_memory():
    """Keep the memory of freed tensors in the process for the next ones (glibc malloc); False
    where the C library is not glibc.

    glibc maps each large block (a ResNet-50 activation of a training batch is tens of MB)
    afresh and returns it to the system when freed, so every training step would fault all its
    activations in again (its cost: docs/speed.md). The process keeps its peak instead, which
    a training or evaluation run reaches again at every batch."""
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2 ** 31 - 1))
