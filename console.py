"""What the scripts print as they work: progress, one aligned line per epoch, and at the end
what was written where. The logs and JSON files hold every figure in full; these lines are
for reading.
"""
import logging
import os
import time

from tqdm import tqdm

# Where no bar is drawn (a pipe, a log file): the longest silence inside a loop, in seconds.
PROGRESS_SECONDS = 30
clock = time.monotonic  # the seconds Progress counts (a test sets its own)


class Progress:
    """A loop's progress: a tqdm bar on a terminal; elsewhere a logged line every `every`
    steps (0: never) and at least every PROGRESS_SECONDS, so a long loop is never silent.
    `shown` False: neither (another rank's loop)."""

    def __init__(self, total, desc, every=0, shown=True, **bar):
        self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True,
                        disable=None if shown else True, **bar)
        self.lines = shown and self.bar.disable
        self.total, self.desc, self.every, self.done = total, desc, every, 0
        self.start = self.last = clock()

    def update(self, fields):
        """One step done; `fields` (name: text) describe the loop so far."""
        self.done += 1
        self.bar.update()
        self.bar.set_postfix(fields, refresh=False)
        now = clock()
        if self.lines and ((self.every and self.done % self.every == 0)
                           or now - self.last >= PROGRESS_SECONDS):
            self.last = now
            logging.info('%s', progress_line(self.desc, self.done, self.total, fields,
                                             now - self.start))

    def over(self, iterable, fields=dict):
        """The items of `iterable`, each counted as a step when the loop asks for the next;
        `fields()` describes the loop so far."""
        for item in iterable:
            yield item
            self.update(fields())
        self.close()

    def close(self):
        self.bar.close()


def progress_line(desc, done, total, fields, seconds):
    """'epoch 3  step  40/120  loss 1.2345  top1 0.512  52 s'."""
    width = len(str(total))
    text = '  '.join(f'{k} {v}' for k, v in fields.items())
    return f'{desc}  step {done:{width}d}/{total}  {text}  {seconds:.0f} s'


def epoch_line(row, epochs, best_epoch, seconds, validation=True):
    """An epoch's row of train_log as aligned fields, its number (as in TSM_epochN, from 1)
    of `epochs`: 'epoch 4/6  loss 1.2345  top1 0.512  val top1 0.600 top5 0.950 (best)  lr
    0.00125  92 s'. `validation`: the run validates some epochs, so an epoch without leaves
    the room of its figures blank."""
    number = row['epoch']
    text = (f"epoch {number:{len(str(epochs))}d}/{epochs}  "
            f"loss {row['train_loss']:7.4f}  top1 {row['train_top1']:.3f}  ")
    if 'valid_top1' in row:
        top5 = next((k for k in row if k.startswith('valid_top') and k != 'valid_top1'), None)
        text += f"val top1 {row['valid_top1']:.3f}"
        text += f" {top5[6:]} {row[top5]:.3f}" if top5 else ''
        text += ' (best)  ' if number == best_epoch else '         '
    elif validation:
        text += ' ' * len('val top1 0.000 top5 0.000 (best)  ')
    text += f"lr {row['lr']:<8.3g}  {seconds:.0f} s"
    lost = row['dropped'] + row.get('valid_dropped', 0)
    return text + (f"  ({count(lost, 'video')} not decoded)" if lost else '')


def duration(seconds):
    """'0.4 s', '42 s', '3 min 05 s', '2 h 01 min'."""
    if seconds < 9.95:
        return f'{seconds:.1f} s'
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def written(outputs):
    """Lines naming what a run wrote, from (what, [paths]) rows: the first path whole, the
    files beside it by name; a path that is not there (a plot not drawn) is left out."""
    rows = [(what, [p for p in paths if os.path.exists(p)]) for what, paths in outputs]
    rows = [(what, paths) for what, paths in rows if paths]
    width = max((len(what) for what, _ in rows), default=0)
    return [f'  {what:<{width}}  ' + ', '.join([paths[0]] + [os.path.basename(p)
                                                            for p in paths[1:]])
            for what, paths in rows]


def count(number, noun):
    """'1 video', '6 videos'."""
    return f'{number} {noun}' + ('' if number == 1 else 's')


def log_lines(lines):
    for line in lines:
        logging.info('%s', line)
