"""The running label of a stream, as a live system shows it: the mean of the last few steps'
logits rather than of every step since the start, so the label follows the video; a label
that changes only when a new class wins several steps in a row, so one noisy frame does not
flicker it; classes that never become the label, and classes counted as another (a gesture
model's "doing other things" as "no gesture")."""
import collections

import numpy as np


def softmax(logits):
    e = np.exp(logits - logits.max())
    return e / e.sum()


class RunningLabel:
    """Feed each step's logits [K] to `update`, which returns (label, score) or (None, None)
    while no class may be shown.

    window: the mean of the last `window` steps' logits (0: of every step so far). confirm:
    the steps in a row a new class must win before it replaces the label. ignore: classes
    that never become the label (the current one stays). merge: {class: class it counts as};
    its probability is added to that class's. score: the label's probability under the
    window's mean logits."""

    def __init__(self, window=0, confirm=1, ignore=(), merge=None):
        if window < 0 or confirm < 1:
            raise ValueError(f'window >= 0 and confirm >= 1 expected, got {window}, {confirm}')
        self.recent = collections.deque(maxlen=window or None)
        self.total, self.steps = None, 0
        self.window, self.confirm = window, confirm
        self.ignore, self.merge = set(ignore), dict(merge or {})
        self.label, self.candidate, self.wins = None, None, 0

    def probabilities(self, logits):
        """The class probabilities of the window's mean logits with `logits` added, merged."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.window:
            self.recent.append(logits)
            mean = np.mean(self.recent, axis=0)
        else:
            self.total = logits if self.total is None else self.total + logits
            self.steps += 1
            mean = self.total / self.steps
        probs = softmax(mean)
        for source, target in self.merge.items():
            probs[target] += probs[source]
            probs[source] = 0.0
        return probs

    def update(self, logits):
        probs = self.probabilities(logits)
        best = int(probs.argmax())
        if best in self.ignore or best == self.label:
            self.candidate, self.wins = None, 0
        elif self.label is None:
            self.label = best
        else:
            self.wins = self.wins + 1 if best == self.candidate else 1
            self.candidate = best
            if self.wins >= self.confirm:
                self.label, self.candidate, self.wins = best, None, 0
        if self.label is None:
            return None, None
        return self.label, float(probs[self.label])


def class_index(value, names, key):
    """The index of class `value` (an index or a name of `names`); ValueError naming `key`."""
    if isinstance(value, int):
        if value < len(names):
            return value
        raise ValueError(f'{key}: class {value} does not exist ({len(names)} classes)')
    if value in names:
        return names.index(value)
    raise ValueError(f'{key}: no class named {value!r} in the label file')


def from_settings(infer, names):
    """The RunningLabel of an INFER section's online_* settings, class names resolved."""
    ignore = [class_index(c, names, 'INFER.online_ignore') for c in infer['online_ignore']]
    merge = {class_index(a, names, 'INFER.online_merge'):
             class_index(b, names, 'INFER.online_merge') for a, b in infer['online_merge']}
    return RunningLabel(infer['online_window'], infer['online_confirm'], ignore, merge)
