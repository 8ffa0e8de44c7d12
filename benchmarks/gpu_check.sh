#!/usr/bin/env bash
# For a machine with an NVIDIA GPU (the test machines have none): the test suite on the GPU
# build of Paddle, then benchmarks/gpu_check.py (AMP training steps against fp32, export with
# TensorRT, GPU latencies), whose figures go to output/gpu_check.json. About 10 minutes on
# one GPU. Exits non-zero when the suite or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi >/dev/null 2>&1 || { echo "gpu_check.sh: nvidia-smi does not answer: no GPU here" >&2; exit 2; }
bash run.sh test            # run.sh setup installs paddlepaddle-gpu where nvidia-smi answers
.venv/bin/python benchmarks/gpu_check.py --out output/gpu_check.json
