"""Workarounds for what Paddle's CPU training does slowly today, each to delete when Paddle
catches up; each module says when:

- conv.py: small feature maps convolved as one matrix product (Paddle's CPU kernel reads the
  filter once per image): when the kernel does better on maps of 7x7 and below;
- mkl.py: MKL's code path chosen for non-Intel CPUs (the MKL Paddle carries picks its generic
  path by vendor): when Paddle carries an MKL that ignores MKL_DEBUG_CPU_TYPE;
- memory.py: freed memory kept in the process (glibc maps large blocks afresh): when Paddle's
  CPU allocator keeps them.

Measurements: docs/speed.md. Nothing here runs on import: the scripts call them at start-up
(models.device.use_cpu) and the network uses conv.Conv2D.
"""
