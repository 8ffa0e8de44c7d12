"""The project's commands as a user types them, for the tests that run them whole: run.sh with
this interpreter's environment as the active one, and a script under this interpreter."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_sh(*args, check=False, timeout=600):
    """bash run.sh ARGS, from the project folder; `check`: an AssertionError with all it
    printed when it fails."""
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, VIRTUAL_ENV=os.path.dirname(bin_dir),
               PATH=bin_dir + os.pathsep + os.environ['PATH'])
    proc = subprocess.run(['bash', 'run.sh', *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'run.sh {args} failed:\n{proc.stdout}\n{proc.stderr}')
    return proc


def command(script, *args):
    """python SCRIPT ARGS: (exit status, stdout and stderr together)."""
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    return proc.returncode, proc.stdout + proc.stderr
