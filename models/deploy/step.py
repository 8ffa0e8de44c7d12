"""The online model's per-frame step exported for Paddle Inference: the frame and the shift
buffers in, the logits and the next buffers out, so a runtime streams a video with no Paddle
layer code. Any runtime's step is checked frame by frame against the dynamic stream."""
import copy
import logging

import numpy as np
import paddle

import noise
from ..online import OnlineStep, OnlineTSM, _pair
from ..tsm import MOBILENETS
from .onnx_export import OnnxStep, export_onnx
from .predictor import make_config, model_files, resolve_precision, run_quietly
from .static import TOLERANCE, relative_error

CHECKED_FRAMES = 6  # frames streamed through both when a step is checked
STEP_NAME = 'TSM_online_step'  # export.py's and the cache's file name of the step

log = logging.getLogger(__name__)


def export_online_step(model, path, frame_size):
    """Save the per-frame step as a static inference model at `path` (a prefix):
    inputs frame [N, 3, H, W] then the buffers, outputs logits then the new
    buffers; N stays free. In a ResNet each residual shift is merged into its conv1
    (models.fused), so the step never splices the buffer into a copy of the block
    input; MobileNetV2's shifted inputs are small and its 1x1 conv1 cheap, and the
    splice runs faster there (docs/speed.md). Puts `model` in eval mode. Returns the
    program file written (load it with the .pdiparams next to it)."""
    model.eval()
    # A copy: Paddle 2.6's trace leaves the layers it converted 200 times slower in the
    # dynamic graph (3.7 s against 0.02 s a MobileNetV2 frame), and the caller streams `model`
    # afterwards to check the export.
    step = OnlineStep(copy.deepcopy(model), merge=model.backbone not in MOBILENETS)
    step.eval()
    height, width = _pair(frame_size)
    frame_spec = paddle.static.InputSpec([None, 3, height, width], 'float32', 'frame')
    buffer_specs = [paddle.static.InputSpec([None] + shape[1:], 'float32', f'buffer{i}')
                    for i, shape in enumerate(step.buffer_shapes(frame_size))]
    # The nested spec goes to to_static: jit.save's own input_spec would be
    # flattened and no longer match forward(frame, buffers). full_graph=True
    # asks Paddle 3 for the AST translation (input_spec is ignored otherwise);
    # Paddle 2.6 translates the AST by default.
    with noise.dropped_lines(2):  # the trace's glog warnings about Paddle's own calls
        static_step = paddle.jit.to_static(step, input_spec=[frame_spec, buffer_specs],
                                           full_graph=True)
        paddle.jit.save(static_step, path)
    return model_files(path)[0]


def export_checked_step(model, path, frame_size, onnx_opset=None):
    """export_online_step at `path`, checked frame by frame on Paddle Inference, and with
    `onnx_opset` also as `path`.onnx (paddle2onnx), checked on ONNX Runtime; returns (the
    program file, the ONNX file or None). MissingPackage when an ONNX package is absent."""
    program = export_online_step(model, path, frame_size)
    check_step(program, StepPredictor(path), model, frame_size)
    if onnx_opset is None:
        return program, None
    onnx = export_onnx(*model_files(path), path + '.onnx', onnx_opset)
    check_step(onnx, OnnxStep(onnx), model, frame_size)
    return program, onnx


class StepPredictor:
    """The exported step run by Paddle Inference: `step(frame [N, 3, H, W], buffers) ->
    (logits [N, K], next buffers)`, numpy arrays in and out; a stream starts from zero
    buffers of OnlineTSM.shapes. oneDNN on the CPU (bf16 with precision='bf16' where the CPU
    has it)."""

    def __init__(self, path_prefix, use_gpu=False, threads=2, precision='fp32'):
        self.files = model_files(path_prefix)
        config = make_config(path_prefix, use_gpu, threads, precision)
        self.on_gpu = config.use_gpu()
        self.precision = resolve_precision(precision, self.on_gpu)  # what really runs
        self.predictor = paddle.inference.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(n)
                       for n in self.predictor.get_input_names()]
        self.outputs = [self.predictor.get_output_handle(n)
                        for n in self.predictor.get_output_names()]
        self.ran = False

    def step(self, frame, buffers):
        for handle, value in zip(self.inputs, [frame] + list(buffers)):
            value = np.ascontiguousarray(value, dtype=np.float32)
            handle.reshape(list(value.shape))
            handle.copy_from_cpu(value)
        self.ran = run_quietly(self.predictor, self.ran)
        logits, *buffers = [h.copy_to_cpu() for h in self.outputs]
        return logits, buffers


class ExportedStream:
    """OnlineTSM's streaming interface on an exported step (a StepPredictor): step(frames
    [N, 3, H, W]) -> logits [N, K] as a paddle Tensor, keeping the buffers between calls;
    `shapes` the buffers' shapes (OnlineTSM(model, size).shapes, or OnlineStep's)."""

    def __init__(self, predictor, shapes):
        self.predictor, self.shapes = predictor, [list(s) for s in shapes]
        self.reset()

    def reset(self):
        self.buffers = [np.zeros(s, np.float32) for s in self.shapes]

    def step(self, frames):
        if isinstance(frames, paddle.Tensor):
            frames = frames.numpy()
        logits, self.buffers = self.predictor.step(frames, self.buffers)
        return paddle.to_tensor(logits)


def check_step(name, runner, model, frame_size, frames=CHECKED_FRAMES):
    """Stream `frames` random frames through `runner` (a StepPredictor or OnnxStep) from zero
    buffers and through the dynamic model; RuntimeError naming `name` when a frame's logits
    differ by more than TOLERANCE (relative). Returns the largest error."""
    height, width = _pair(frame_size)
    x = np.random.default_rng(0).standard_normal([frames, 1, 3, height, width],
                                                 dtype=np.float32)
    model.eval()
    engine = OnlineTSM(model, (height, width))
    buffers, worst = [np.zeros(s, np.float32) for s in engine.shapes], 0.0
    for t, frame in enumerate(x):
        with paddle.no_grad():
            want = engine.step(paddle.to_tensor(frame)).numpy()
        got, buffers = runner.step(frame, buffers)
        error = relative_error(got, want)
        if error > TOLERANCE:
            raise RuntimeError(f'{name}: frame {t} of a stream differs from the dynamic '
                               f'model by {error:.2e} (relative), more than {TOLERANCE:.0e}')
        worst = max(worst, error)
    log.info('%s: %d streamed frames equal the dynamic stream (relative error %.1e)', name,
             frames, worst)
    return worst
