"""Evaluate TSM on a list of videos: top-1, top-5 and mean class accuracy.

    bash run.sh eval TSM ./configs/tsm.yaml [--weights FILE] [--filelist LIST]
"""
import json
import logging
import os
import time

import noise
if __name__ == '__main__':  # before paddle's import, which warns about ccache
    noise.quiet_warnings()
from configs import cli  # first: it loads numpy.random before paddle (Paddle 2.6)

import console
import outputs
import results
from engine import model_for, model_source
from models import parallel
from reader import ListFileError, check_failures, make_loader
from reader.listfile import read_label_names
from reader.protocols import view_average
from scoring import evaluate


def class_names(cfg):
    """The names of INFER.label_file when it has one per class, else the label numbers."""
    path, count = cfg['INFER']['label_file'], cfg['MODEL']['num_classes']
    if os.path.isfile(path):
        try:
            return read_label_names(path, count)
        except ListFileError as e:
            logging.warning('class names: %s; using the label numbers', e)
    return [str(i) for i in range(count)]


def report(result):
    text = '  '.join(f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in result.items() if not isinstance(v, list) and k != 'seconds')
    logging.info('eval: %s', text)
    if 'running_top1' in result:
        logging.info('online running top-1 after 1..%d frames: %s', len(result['running_top1']),
                     ' '.join(f'{a:.3f}' for a in result['running_top1']))


def summary(folder, result, seconds):
    """The closing lines of eval.py: how long it took, and the files it wrote."""
    def beside(*names):
        return [os.path.join(folder, name) for name in names]
    return ([f"scored {console.count(result['num_videos'], 'video')} in "
             f"{console.duration(result['seconds'])} "
             f"({console.duration(seconds)} in all)"]
            + console.written([('metrics', beside('TSM_eval.json')),
                               ('per class', beside('per_class.csv', 'per_class.png')),
                               ('confusion', beside('confusion.csv', 'confusion.png')),
                               ('top-5', beside('top5.csv'))]))


def main(argv=None):
    started = time.time()
    args, cfg = cli.start('eval', argv)
    test = cfg['TEST']
    parallel.init()  # under paddle.distributed.launch each process scores a share
    if parallel.is_main():  # the writing rank; before any video or weights are read
        outputs.writable_folder(test['save_dir'], 'TEST.save_dir')
    # the list is checked before any weights are fetched
    loader = make_loader(cfg, 'test', rank=parallel.rank(), world_size=parallel.world_size())
    model = model_for(cfg, 'TEST', args.use_gpu, args.dynamic)
    start = time.time()
    details = {}
    result = evaluate(model, loader, cfg['MODEL']['num_classes'],
                      average=view_average(cfg, 'test'), details=details)
    result['seconds'] = round(time.time() - start, 2)
    report(result)
    if parallel.is_main():
        os.makedirs(test['save_dir'], exist_ok=True)
        out = os.path.join(test['save_dir'], 'TSM_eval.json')
        with outputs.replacing(out) as f:
            json.dump({'filelist': test['filelist'], **model_source(test, model), **result},
                      f, indent=2, allow_nan=False)
        videos = [loader.items.entries[i][0] for i in details['items']]
        results.write_evaluation(test['save_dir'], details['scores'], details['labels'],
                                 videos, class_names(cfg), plots=not args.no_plots,
                                 title=f"{os.path.basename(args.config)}: {test['save_dir']}")
        console.log_lines(summary(test['save_dir'], result, time.time() - started))
    check_failures(result['dropped'], result['dropped'] + result['num_videos'],
                   cfg['DATA']['max_failure_ratio'])
    return 0


if __name__ == '__main__':
    cli.run('eval', main)
