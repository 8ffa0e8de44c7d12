"""The suite computes as the scripts do: they set MKL's code path for this CPU at start-up
(models.device.use_cpu), and so does the suite, before its first product, for the tests that
run the model in this process."""
from models.workarounds import mkl

mkl.use_best_code_path()
