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
