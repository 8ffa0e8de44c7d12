"""The job loop of a benchmark's child process (torch_side.py, torch_online_side.py), which
runs in an interpreter that may hold no Paddle, and the parent's end of it: it imports
nothing of the project."""
import subprocess
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


class Child:
    """A child process serving jobs (`command` runs a script that calls serve); `ready` the
    words it said after 'ready'; run(job) its seconds for one job, after `pause` seconds."""

    def __init__(self, command, pause=0.0):
        self.command, self.pause = command, pause
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        words = self.proc.stdout.readline().split()
        if not words or words[0] != 'ready':
            raise RuntimeError(f'{" ".join(command)} did not start (said {words!r})')
        self.ready = words[1:]

    def run(self, job):
        time.sleep(self.pause)
        self.proc.stdin.write(job + '\n')
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
