"""The exported program as an ONNX model (paddle2onnx), and its logits from ONNX Runtime, for
export.py's --onnx: the clip model, and the online model's per-frame step. paddle2onnx 2.x
converts Paddle 3's programs, 1.x Paddle 2.6's. A missing package is a one-line error."""
import inspect

import noise


ONNX_OPSET = 13  # what export.py writes by default and the cached online steps use


class MissingPackage(Exception):
    """An optional package --onnx needs is not installed; the message says what to install."""


def export_onnx(program, params, path, opset):
    """TSM.onnx through paddle2onnx; MissingPackage names the package when it is absent."""
    try:
        import paddle2onnx  # here: an optional package, needed by --onnx only
    except ImportError:
        raise MissingPackage('an ONNX export needs paddle2onnx (pip install paddle2onnx '
                             'onnxruntime)') from None
    options = {}
    if 'optimize_tool' in inspect.signature(paddle2onnx.export).parameters:
        # paddle2onnx 2.x defaults to polygraphy, which pip-installs onnx_graphsurgeon at run
        # time, and its onnxoptimizer pass list names a pass that does not exist (2.1.0), so
        # it warns and skips it: none, ONNX Runtime folds constants itself.
        options['optimize_tool'] = 'none'
    utils = getattr(paddle2onnx, 'utils', None)
    logger = getattr(utils, 'logging', None)
    level = getattr(logger, 'log_level', None)
    if level is not None:
        logger.log_level = 1  # its warnings, not its progress lines
    try:
        with noise.dropped_lines(1):
            paddle2onnx.export(program, params, path, opset_version=opset, verbose=False,
                               enable_onnx_checker=True, **options)
    finally:
        if level is not None:
            logger.log_level = level
    return path


def _session(path, threads=0):
    try:
        import onnxruntime  # here: optional, as paddle2onnx
    except ImportError:
        raise MissingPackage('an ONNX model runs on onnxruntime (pip install '
                             'onnxruntime)') from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initializer notices are harmless
    options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def onnx_logits(path, clips):
    session = _session(path)
    return session.run(None, {session.get_inputs()[0].name: clips})[0]


class OnnxStep:
    """The online step exported as ONNX, run by ONNX Runtime with the interface of
    models.deploy.step.StepPredictor."""

    def __init__(self, path, threads=0):
        self.session = _session(path, threads)
        self.names = [i.name for i in self.session.get_inputs()]

    def step(self, frame, buffers):
        logits, *buffers = self.session.run(None, dict(zip(self.names, [frame] + list(buffers))))
        return logits, buffers
