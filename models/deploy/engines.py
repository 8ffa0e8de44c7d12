"""The runtimes an exported TSM runs on besides Paddle Inference: ONNX Runtime and OpenVINO,
both reading the ONNX file paddle2onnx writes of our inference form (models.deploy.onnx_export).

Each runner has the interface of its Paddle Inference twin: `OnnxClip` / `OpenVinoClip` that of
models.deploy.predictor.Predictor (clips in, a paddle Tensor of logits out), `OnnxStep` /
`OpenVinoStep` that of models.deploy.step.StepPredictor. Both packages are optional
(requirements-deploy.txt); a missing one is MissingPackage naming what to install.

OpenVINO compiles for the CPU at the precision asked: fp32, or bf16 where the CPU has it
(its own choice would be bf16 on such CPUs, silently: the hint is always given), or int8: a
copy quantised after training by NNCF (`quantise_int8`, calibrated on clips of the training
list), whose layers left unquantised run at OpenVINO's choice.
"""
import numpy as np
import paddle

from .onnx_export import MissingPackage, OnnxStep, _session
from .predictor import bf16_supported

ENGINES = ('paddle', 'onnxruntime', 'openvino')
CHOICES = ENGINES + ('auto',)  # auto: the fastest installed one, measured (engine.py)
NAMES = {'paddle': 'Paddle Inference', 'onnxruntime': 'ONNX Runtime', 'openvino': 'OpenVINO'}
PACKAGES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino', 'nncf': 'nncf'}
INT8_FILE = 'TSM_int8.xml'  # the quantised copy beside TSM.onnx (and its .bin)


def engine_version(engine):
    """The installed version of `engine`'s package (Paddle's for 'paddle'); MissingPackage
    when it is absent."""
    if engine == 'paddle':
        return paddle.__version__
    try:
        module = __import__(PACKAGES[engine])  # optional: only the engine asked for
    except ImportError:
        what = 'int8 needs NNCF' if engine == 'nncf' else f'engine {engine} needs its package'
        raise MissingPackage(f'{what}: pip install {PACKAGES[engine]} paddle2onnx (or pip '
                             f'install -r requirements-deploy.txt)') from None
    return module.__version__


def engine_precision(engine, precision):
    """What `engine` (onnxruntime or openvino) computes in for the asked `precision` (fp32,
    bf16, auto; int8 on OpenVINO); ValueError for one it cannot run on this machine."""
    if engine == 'onnxruntime':
        if precision not in ('fp32', 'auto'):
            raise ValueError(f'precision {precision}: ONNX Runtime runs the model in fp32')
        return 'fp32'
    if precision == 'int8':
        return precision
    if precision == 'auto':
        return 'bf16' if bf16_supported() else 'fp32'
    if precision == 'bf16' and not bf16_supported():
        raise ValueError('precision bf16: this CPU has no bf16 instructions')
    if precision not in ('fp32', 'bf16'):
        raise ValueError(f'precision {precision}: OpenVINO runs fp32 or bf16 on the CPU')
    return precision


def _compiled(path, threads, precision):
    engine_version('openvino')
    import openvino  # checked just above
    core = openvino.Core()
    config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY'}
    if precision != 'int8':
        config['INFERENCE_PRECISION_HINT'] = 'bf16' if precision == 'bf16' else 'f32'
    return core.compile_model(core.read_model(path), 'CPU', config)


def quantise_int8(onnx, clips, out):
    """NNCF's post-training int8 of the clip model `onnx`, calibrated on `clips` (float32
    [N, T, 3, H, W], as the model is fed), saved as OpenVINO's `out` (.xml and .bin).
    Returns {'same_top1_as_fp32': the fraction of the clips whose top class the int8 copy
    keeps, 'clips': N}."""
    engine_version('openvino')
    engine_version('nncf')
    import nncf  # checked just above
    import openvino
    model = openvino.Core().read_model(onnx)
    quantised = nncf.quantize(model, nncf.Dataset(list(clips), lambda c: c[None]),
                              subset_size=len(clips))
    openvino.save_model(quantised, out)
    fp32, int8 = (OpenVinoClip(path, 2, precision) for path, precision in
                  ((onnx, 'fp32'), (out, 'int8')))
    agree = [int(np.argmax(fp32(c[None]).numpy()) == np.argmax(int8(c[None]).numpy()))
             for c in clips]
    return {'same_top1_as_fp32': float(np.mean(agree)), 'clips': len(clips)}


class OnnxClip:
    """A clip model's ONNX file run by ONNX Runtime, called as Predictor is."""

    on_gpu = False

    def __init__(self, path, threads=2, precision='fp32'):
        engine_version('onnxruntime')
        self.precision = engine_precision('onnxruntime', precision)
        self.files = (path,)
        self.session = _session(path, threads)
        self.name = self.session.get_inputs()[0].name

    def eval(self):
        return self

    def __call__(self, clips):
        clips = _array(clips)
        return paddle.to_tensor(self.session.run(None, {self.name: clips})[0])


class OpenVinoClip:
    """A clip model's ONNX file compiled by OpenVINO for the CPU, called as Predictor is."""

    on_gpu = False

    def __init__(self, path, threads=2, precision='fp32'):
        self.precision = engine_precision('openvino', precision)
        self.files = (path,)
        self.compiled = _compiled(path, threads, self.precision)
        self.request = self.compiled.create_infer_request()

    def eval(self):
        return self

    def __call__(self, clips):
        result = self.request.infer([_array(clips)])
        return paddle.to_tensor(np.array(result[self.compiled.outputs[0]]))


class OpenVinoStep:
    """The online step's ONNX file compiled by OpenVINO, with StepPredictor's interface."""

    on_gpu = False

    def __init__(self, path, threads=2, precision='fp32'):
        self.precision = engine_precision('openvino', precision)
        self.compiled = _compiled(path, threads, self.precision)
        self.request = self.compiled.create_infer_request()

    def step(self, frame, buffers):
        result = self.request.infer([_array(frame)] + [_array(b) for b in buffers])
        logits, *buffers = [np.array(result[o]) for o in self.compiled.outputs]
        return logits, buffers


def clip_runner(engine, path, threads, precision):
    """The runner of a clip model's ONNX file on `engine` (onnxruntime or openvino)."""
    return (OnnxClip if engine == 'onnxruntime' else OpenVinoClip)(path, threads, precision)


def step_runner(engine, path, threads, precision):
    """The runner of an online step's ONNX file on `engine` (onnxruntime or openvino)."""
    if precision == 'int8':
        raise ValueError('precision int8: the online step runs in fp32 or bf16')
    if engine == 'onnxruntime':
        engine_precision(engine, precision)
        return OnnxStep(path, threads)
    return OpenVinoStep(path, threads, precision)


def _array(x):
    if isinstance(x, paddle.Tensor):
        x = x.numpy()
    return np.ascontiguousarray(x, dtype=np.float32)
