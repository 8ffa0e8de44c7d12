"""Time our temporal shift against paddle.nn.functional.temporal_shift.

Prints the median time per call for the input shapes the shift sees in a
TSM ResNet-50 with 8 segments (one clip), and the share of the shift in a
full TSM-R50 forward pass on [1, 8, 3, 224, 224].

    python benchmarks/bench_shift.py --repeats 20
"""
import argparse
import os
import sys

import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.timing import median_seconds  # noqa: E402
from models.device import use_cpu, usable_cores  # noqa: E402
from models import TSM, temporal_shift  # noqa: E402

SEG_NUM = 8
# Block inputs of TSM-R50 per stage: (channels, side, blocks shifted).
STAGES = [('layer1.0', 64, 56, 1), ('layer1.1-2', 256, 56, 2),
          ('layer2.0', 256, 56, 1), ('layer2.1-3', 512, 28, 3),
          ('layer3.0', 512, 28, 1), ('layer3.1-5', 1024, 14, 5),
          ('layer4.0', 1024, 14, 1), ('layer4.1-2', 2048, 7, 2)]


def bench_shapes(repeats, ratio):
    total_ours = total_paddle = 0.0
    print(f'{"block input":>28} {"ours ms":>9} {"paddle ms":>10} '
          f'{"paddle/ours":>12}')
    for name, channels, side, count in STAGES:
        x = paddle.randn([SEG_NUM, channels, side, side])
        # CPU ops run eagerly, so no synchronisation is needed.
        ours = median_seconds(
            lambda: temporal_shift(x, SEG_NUM, ratio), repeats)
        theirs = median_seconds(
            lambda: paddle.nn.functional.temporal_shift(x, SEG_NUM, ratio),
            repeats)
        total_ours += ours * count
        total_paddle += theirs * count
        shape = f'{name} [8,{channels},{side},{side}]'
        print(f'{shape:>28} {ours * 1e3:9.2f} {theirs * 1e3:10.2f} '
              f'{theirs / ours:12.2f}')
    print(f'{"all 16 blocks of R50":>28} {total_ours * 1e3:9.2f} '
          f'{total_paddle * 1e3:10.2f} {total_paddle / total_ours:12.2f}')
    return total_ours


def bench_forward(repeats):
    x = paddle.randn([1, SEG_NUM, 3, 224, 224])
    result = {}
    for mode in ('bidirectional', 'none'):
        model = TSM(num_classes=400, seg_num=SEG_NUM, depth=50,
                    shift_mode=mode)
        model.eval()
        with paddle.no_grad():
            result[mode] = median_seconds(lambda: model(x).numpy(), repeats)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--forward-repeats', type=int, default=5)
    parser.add_argument('--shift-ratio', type=float, default=0.125)
    args = parser.parse_args()
    paddle.set_device('cpu')
    use_cpu(usable_cores())
    print(f'paddle {paddle.__version__}, {os.cpu_count()} CPUs, '
          f'median of {args.repeats} runs, shift_ratio {args.shift_ratio}')
    shifts = bench_shapes(args.repeats, args.shift_ratio)
    forward = bench_forward(args.forward_repeats)
    tsm, tsn = forward['bidirectional'], forward['none']
    print(f'TSM-R50 forward [1,8,3,224,224]: {tsm * 1e3:.0f} ms '
          f'(TSN, no shift: {tsn * 1e3:.0f} ms)')
    print(f'shift share of the forward: {shifts / tsm:.1%} from the '
          f'per-shape timings, {(tsm - tsn) / tsm:.1%} from TSM - TSN')


if __name__ == '__main__':
    main()
