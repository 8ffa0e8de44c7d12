"""The job loop of a benchmark's child process (torch_side.py, torch_online_side.py), which
runs in an interpreter that may hold no Paddle: it imports nothing of the project."""
import sys
import time


def serve(jobs, *ready):
    """Print 'ready' and `ready`, then run the job each line of standard input names
    (`jobs` {name: fn()}) and answer with its seconds, a line each, until the input ends."""
    print('ready', *ready, flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        jobs[line.strip()]()
        print(time.perf_counter() - start, flush=True)
