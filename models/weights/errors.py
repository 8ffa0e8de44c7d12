"""Errors a user can cause with a weight file or checkpoint; the scripts print them as one
message (no traceback), since they name the file and what is wrong with it."""


class WeightsError(ValueError):
    """A weight file that cannot be read, is refused, or does not fit the model or config."""


class CheckpointError(WeightsError):
    """A training checkpoint that is missing, incomplete or does not fit this run."""
