"""int8 by post-training quantisation (NNCF) of an exported TSM's ONNX file, against fp32 and
bf16 on OpenVINO: time per clip and, given labelled clips, top-1 and the agreement of the
int8 logits with fp32's. Run by an interpreter with openvino and nncf (no Paddle needed):

    python benchmarks/int8_openvino.py --onnx TSM.onnx --calibration calib.npy \
        [--labelled clips.npz] [--threads 2 --rounds 5 --out int8.json]

calib.npy holds normalised clips [N, T, 3, H, W] drawn from the training list (what NNCF
sees to set its ranges); clips.npz holds 'clips' and 'labels' of the validation list. The
cases alternate, each after a pause, and the medians of --rounds are reported.
"""
import argparse
import json
import time

import numpy as np


def compiled(model, threads, hint):
    import openvino as ov
    config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY'}
    if hint:
        config['INFERENCE_PRECISION_HINT'] = hint
    return ov.Core().compile_model(model, 'CPU', config)


def logits_of(model, clips):
    request = model.create_infer_request()
    return np.concatenate([np.array(request.infer([c[None]])[model.outputs[0]]) for c in clips])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--onnx', required=True)
    p.add_argument('--calibration', required=True)
    p.add_argument('--labelled')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--out', default='int8.json')
    a = p.parse_args()
    import nncf
    import openvino as ov
    calibration = np.load(a.calibration).astype(np.float32)
    model = ov.Core().read_model(a.onnx)
    started = time.perf_counter()
    quantised = nncf.quantize(model, nncf.Dataset(list(calibration), lambda c: c[None]),
                              subset_size=len(calibration))
    quantise_s = time.perf_counter() - started
    cases = {'fp32': compiled(model, a.threads, 'f32'), 'bf16': compiled(model, a.threads, 'bf16'),
             'int8': compiled(quantised, a.threads, None)}
    clip = calibration[:1]
    times = {name: [] for name in cases}
    requests = {name: c.create_infer_request() for name, c in cases.items()}
    for request in requests.values():
        request.infer([clip])
    for _ in range(a.rounds):
        for name, request in requests.items():
            time.sleep(0.5)
            start = time.perf_counter()
            request.infer([clip])
            times[name].append(time.perf_counter() - start)
    result = {'openvino': ov.__version__, 'nncf': nncf.__version__, 'threads': a.threads,
              'calibration_clips': len(calibration), 'quantise_seconds': round(quantise_s, 1),
              'ms_per_clip': {n: round(1e3 * float(np.median(t)), 1) for n, t in times.items()}}
    if a.labelled:
        data = np.load(a.labelled)
        clips, labels = data['clips'].astype(np.float32), data['labels']
        outs = {name: logits_of(c, clips) for name, c in cases.items()}
        result['top1'] = {n: float((o.argmax(1) == labels).mean()) for n, o in outs.items()}
        result['same_top1_as_fp32'] = {n: float((o.argmax(1) == outs['fp32'].argmax(1)).mean())
                                       for n, o in outs.items()}
        scale = np.abs(outs['fp32']).max()
        result['max_logit_difference_vs_fp32'] = {
            n: float(np.abs(o - outs['fp32']).max() / scale) for n, o in outs.items()}
        result['videos'] = int(len(labels))
    with open(a.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
