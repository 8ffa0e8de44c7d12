"""The exported program as an ONNX model (paddle2onnx), and its logits from ONNX Runtime, for
export.py's --onnx. Both packages are optional: a missing one is a one-line error."""
import inspect


class MissingPackage(Exception):
    """An optional package --onnx needs is not installed; the message says what to install."""


def export_onnx(program, params, path, opset):
    """TSM.onnx through paddle2onnx; MissingPackage names the package when it is absent."""
    try:
        import paddle2onnx  # here: an optional package, needed by --onnx only
    except ImportError:
        raise MissingPackage('--onnx needs paddle2onnx (pip install paddle2onnx '
                             'onnxruntime)') from None
    options = {}
    if 'optimize_tool' in inspect.signature(paddle2onnx.export).parameters:
        # paddle2onnx 2.x defaults to polygraphy, which pip-installs onnx_graphsurgeon at run
        # time; onnxoptimizer comes with paddle2onnx, and onnxruntime folds constants itself.
        options['optimize_tool'] = 'onnxoptimizer'
    paddle2onnx.export(program, params, path, opset_version=opset, enable_onnx_checker=True,
                       **options)
    return path


def onnx_logits(path, clips):
    try:
        import onnxruntime  # here: optional, as paddle2onnx
    except ImportError:
        raise MissingPackage('--onnx needs onnxruntime to check its model (pip install '
                             'onnxruntime)') from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initializer notices are harmless
    session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: clips})[0]
