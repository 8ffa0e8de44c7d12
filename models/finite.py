"""Numbers that must be finite: the weights a training run saves, the scores written to JSON.
A NaN or an infinity there stops the run with an error naming where it came from, instead of
being saved as weights or printed as a probability."""
import numpy as np
import paddle


class NonFiniteError(ValueError):
    """Weights, a loss or scores holding NaN or infinity; the message names them."""


def all_finite(model):
    """True when every parameter of `model` is finite: one answer from the device."""
    return bool(paddle.stack([paddle.isfinite(p).all() for p in model.parameters()]).all())


def non_finite_parameter(model):
    """The name of the first parameter or buffer of `model` holding NaN or infinity, or
    None when all are finite."""
    for name, value in model.state_dict().items():
        if not np.isfinite(value.numpy()).all():
            return name
    return None


def check_scores(scores, where):
    """`scores` as an array; NonFiniteError naming `where` when any is NaN or infinite."""
    scores = np.asarray(scores)
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise NonFiniteError(f'{where}: {bad} of the {scores.size} scores the model gave are '
                             f'NaN or infinite: its weights or its input hold non-finite '
                             f'values (weights of a diverged training run?)')
    return scores
