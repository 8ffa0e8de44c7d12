"""running.py on scripted logit sequences: the window, the confirmation of a new label, the
ignored and the merged classes."""
import numpy as np
import pytest

from running import RunningLabel, softmax


def one_hot(k, classes=4, high=5.0):
    logits = np.zeros(classes)
    logits[k] = high
    return logits


def labels(running, sequence):
    return [running.update(one_hot(k))[0] for k in sequence]


def test_without_rules_it_is_the_argmax_of_the_windows_mean():
    rng = np.random.default_rng(0)
    steps = rng.standard_normal((30, 5))
    running = RunningLabel(window=4)
    for t, logits in enumerate(steps):
        label, score = running.update(logits)
        mean = steps[max(0, t - 3):t + 1].mean(axis=0)
        assert label == mean.argmax() and score == pytest.approx(softmax(mean).max())


def test_a_window_follows_the_video_where_the_mean_since_the_start_stays():
    video = [0] * 20 + [1] * 6  # a second action after a long first one
    assert labels(RunningLabel(window=4), video)[-1] == 1
    assert labels(RunningLabel(window=0), video)[-1] == 0  # 20 steps of class 0 outweigh 6


def test_a_new_class_must_win_the_steps_confirm_asks():
    sequence = [0, 0, 1, 0, 0, 1, 1, 1]
    assert labels(RunningLabel(window=1, confirm=1), sequence) == sequence
    # one step of class 1 flickers nothing; two in a row change the label at the second
    assert labels(RunningLabel(window=1, confirm=2), sequence) == [0, 0, 0, 0, 0, 0, 1, 1]


def test_ignored_classes_keep_the_current_label():
    sequence = [3, 0, 3, 2, 2]
    assert labels(RunningLabel(window=1, ignore=[2, 3]), sequence) == [None, 0, 0, 0, 0]


def test_merged_classes_count_as_their_target():
    running = RunningLabel(window=1, merge={0: 2})
    label, score = running.update(np.log([0.4, 0.35, 0.25, 1e-9]))
    # 0.4 of class 0 counted as class 2: 0.65 for class 2 beats class 1's 0.35
    assert label == 2 and score == pytest.approx(0.65)


def demo_labels(steps):
    """The labels the original online demo (online_demo/main.py) shows for per-step logits:
    the argmax of the last 12 logits' sum; classes 7, 8, 21, 22, 3 keep the previous label;
    0 is shown as 2; a change is taken only when the previous two labels agree. Its history
    starts as [2]."""
    history, kept, shown = [2], [], []
    for logits in steps:
        kept = (kept + [logits])[-12:]
        idx = int(np.argmax(sum(kept)))
        if idx in (7, 8, 21, 22, 3):
            idx = history[-1]
        if idx == 0:
            idx = 2
        if idx != history[-1] and len(history) > 1 and history[-1] != history[-2]:
            idx = history[-1]
        history = (history + [idx])[-20:]
        shown.append(idx)
    return shown


def changes(sequence):
    return [(t, label) for t, label in enumerate(sequence)
            if t == 0 or label != sequence[t - 1]]


def test_the_gesture_preset_shows_the_original_demos_labels():
    from configs.config import load_config
    from running import from_settings
    cfg = load_config('configs/tsm_mv2_jester_online.yaml')
    infer = cfg['INFER']
    names = open(infer['label_file'], encoding='utf-8').read().splitlines()
    running = from_settings(infer, names)
    assert infer['online_stride'] == 2  # the demo feeds every other frame
    assert (running.window, running.confirm) == (12, 2)
    assert running.ignore == {3, 7, 8, 21, 22} and running.merge == {0: 2}
    # No gesture, Swiping Left, Doing other things (shown as No gesture), Rolling Hand
    # Backward (ignored: Swiping Left stays), Thumb Up, Stop Sign
    script = [2] * 6 + [16] * 10 + [2] * 4 + [0] * 8 + [2] * 6 + [16] * 10 + [7] * 9 + \
        [20] * 14 + [14] * 12
    rng = np.random.default_rng(5)
    steps = [one_hot(k, 27) + rng.normal(0, 0.2, 27) for k in script]
    ours = [running.update(s)[0] for s in steps]
    demo = demo_labels(steps)
    # the same labels in the same order, each within a step of the demo's: the demo takes a
    # new class at once after two equal labels (here a new class wins two steps: a step
    # later), and it counts a merged class by its argmax (here by its probability added to
    # No gesture's, which wins a step sooner after Doing other things)
    assert [label for _, label in changes(ours)] == [label for _, label in changes(demo)] == [
        2, 16, 2, 16, 20, 14]
    lag = [a - b for (a, _), (b, _) in zip(changes(ours), changes(demo))]
    assert lag == [0, 1, -1, 1, 1, 1]
