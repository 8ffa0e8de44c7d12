#!/usr/bin/env bash
# Entry point: bash run.sh MODE [TSM CONFIG [flags...]]
#   train|eval|predict TSM CONFIG [flags]   run train.py / eval.py / predict.py with CONFIG;
#       train and eval use every visible GPU (one process each, paddle.distributed.launch);
#       the launcher's own flags pass through: --gpus 0,1,2,3, --nproc_per_node N (N gloo
#       processes on the CPU), --ips host1,host2 or --master IP:PORT --nnodes N --rank R
#   export|bench TSM CONFIG [flags]         export an inference model / time this machine
#   demo                                    set up, then train, evaluate and predict on the demo data
#   test                                    set up, then run the test suite
#   setup                                   create .venv and install the requirements
set -euo pipefail
cd "$(dirname "$0")"

usage() {
    echo "usage: bash run.sh {train|eval|predict|export|bench} TSM CONFIG [flags]   or   bash run.sh {demo|test|setup}" >&2
    exit 2
}

# The interpreter: an active virtual environment, else the project's .venv, else python3.
python_bin() {
    if [ -n "${VIRTUAL_ENV:-}" ]; then echo python
    elif [ -x .venv/bin/python ]; then echo .venv/bin/python
    else echo python3
    fi
}

# A fresh .venv with the requirements; the GPU build of Paddle where an NVIDIA driver answers,
# or the pip requirement in $PADDLE_PACKAGE.
setup() {
    if [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local py; py=$(python_bin)
    local paddle="paddlepaddle"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        paddle="paddlepaddle-gpu==2.6.2"
    fi
    paddle=${PADDLE_PACKAGE:-$paddle}  # e.g. PADDLE_PACKAGE=paddlepaddle==2.6.2 to test 2.6
    $py -m pip install -q --upgrade pip
    $py -m pip install -q "$paddle" $(grep -v '^paddlepaddle' requirements.txt | grep -v '^#')
    if [ "${1:-}" = test ]; then
        $py -m pip install -q -r requirements-test.txt
        $py -m pip install -q "$(onnx_exporter "$py")" -r requirements-deploy.txt
        test_tools
    fi
    return 0
}

# paddle2onnx for the installed Paddle: 2.x converts Paddle 3's programs and refuses Paddle
# 2.6, whose programs 1.x converts.
onnx_exporter() {
    local major
    major=$("$1" -c "import importlib.metadata as m
for name in ('paddlepaddle', 'paddlepaddle-gpu'):
    try:
        print(m.version(name).split('.')[0]); break
    except m.PackageNotFoundError:
        pass")
    if [ "$major" = 2 ]; then echo "paddle2onnx<2"; else echo "paddle2onnx>=2"; fi
}

# The ffmpeg command-line tools: the reference the reader's frames are tested against
# (tests/test_conformance.py). Debian's package where apt-get can install it.
test_tools() {
    command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "run.sh: the tests need the ffmpeg command-line tools: install the ffmpeg package" >&2
    fi
}

# The built-in demo: classes that differ only in time order, learnt by TSM and its online
# variant and not by TSN; then a prediction, and one streamed frame by frame.
demo() {
    local py; py=$(python_bin)
    $py data/make_demo.py --out data/demo
    local video; video=data/demo/$(head -n 1 data/demo/val.list | cut -d' ' -f1)
    for name in tsm tsn tsm_online; do
        $py train.py --config configs/${name}_demo.yaml --fix_random_seed
        $py eval.py --config configs/${name}_demo.yaml
    done
    $py predict.py --config configs/tsm_demo.yaml --video_path "$video"
    $py predict.py --online --config configs/tsm_online_demo.yaml --video_path "$video" --every 2
    $py - <<'PY'
import json
import results
runs = (('tsm', 'TSM'), ('tsn', 'TSN (no shift)'), ('tsm_online', 'TSM online'))
print('\n' + results.demo_report(
    [(label, json.load(open(f'output/{name}_demo/eval/TSM_eval.json'))) for name, label in runs],
    'output', json.load(open('output/tsm_online_demo/predict/TSM_online.json'))))
print('table and plot: output/demo_summary.json, output/demo_comparison.png')
PY
}

# The GPUs a job may use: --gpus, else CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists;
# none when this Paddle build has no CUDA (a CPU build on a GPU machine runs on the CPU).
visible_gpus() {
    local gpus=${1:-${CUDA_VISIBLE_DEVICES:-}}
    if [ -z "$gpus" ] && command -v nvidia-smi >/dev/null 2>&1; then
        gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, -)
    fi
    [ -n "$gpus" ] || return 0
    local cuda
    cuda=$($(python_bin) -c 'import paddle; print(int(paddle.is_compiled_with_cuda()))' 2>/dev/null)
    [ "$cuda" = 1 ] && echo "$gpus"
    return 0
}

# train/eval: a plain process, or paddle.distributed.launch when the job has several devices
# or machines; the launcher's flags are taken out of the script's.
run_job() {
    local script=$1; shift
    local launch=() flags=() gpus='' many=''
    while [ $# -gt 0 ]; do
        case "$1" in
            --gpus) gpus=$2; shift 2 ;;
            --nproc_per_node|--ips|--master|--nnodes|--rank|--log_dir|--start_port)
                launch+=("$1" "$2"); many=1; shift 2 ;;
            *) flags+=("$1"); shift ;;
        esac
    done
    gpus=$(visible_gpus "$gpus")
    [[ "$gpus" == *,* ]] && many=1
    if [ -n "$gpus" ] && [ -z "$many" ]; then
        export CUDA_VISIBLE_DEVICES=$gpus
    fi
    if [ -n "$many" ]; then
        [ -n "$gpus" ] && launch+=(--gpus "$gpus")
        # the launcher imports paddle, which warns about a missing ccache (noise.py: the
        # scripts' own start hides it in each process), and prints its settings on stderr
        exec $(python_bin) -W 'ignore:No ccache found:UserWarning' -m paddle.distributed.launch \
            "${launch[@]}" "$script" "${flags[@]}" \
            2> >($(python_bin) -c 'import noise; noise.filter_launcher()' >&2)
    fi
    exec $(python_bin) "$script" "${flags[@]}"
}

mode=${1:-}
case "$mode" in
    train|eval)
        [ $# -ge 3 ] || usage
        model=$2 config=$3
        shift 3
        [ "${model^^}" = TSM ] || { echo "run.sh: unknown model '$model'; known: TSM" >&2; usage; }
        run_job "$mode.py" --model_name "$model" --config "$config" "$@"
        ;;
    predict|export|bench)
        [ $# -ge 3 ] || usage
        model=$2 config=$3
        shift 3
        [ "${model^^}" = TSM ] || { echo "run.sh: unknown model '$model'; known: TSM" >&2; usage; }
        exec $(python_bin) "$mode.py" --model_name "$model" --config "$config" "$@"
        ;;
    setup) setup ;;
    test)
        setup test
        exec $(python_bin) -m pytest -q tests "${@:2}"
        ;;
    demo)
        setup
        demo
        ;;
    *) echo "run.sh: unknown mode '${mode}'" >&2; usage ;;
esac
