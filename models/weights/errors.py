"""Errors a user can cause with a weight file or checkpoint; the scripts print them as one
message (no traceback), since they name the file and what is wrong with it."""


class WeightsError(ValueError):
    """A weight file that cannot be read, is refused, or does not fit the model or config."""


class CheckpointError(WeightsError):
    """A training checkpoint that is missing, incomplete or does not fit this run."""


def refuse_or_warn(problems, for_training, refusal, advice, log, label):
    """Settings that change what a model computes from its weights: for inference a
    WeightsError `refusal: problem; problem. advice`; when training (fine-tuning is allowed
    to change them) a warning each, `label: problem`, on `log`."""
    if problems and not for_training:
        raise WeightsError(f'{refusal}: ' + '; '.join(problems) + f'. {advice}')
    for problem in problems:
        log.warning('%s: %s', label, problem)
