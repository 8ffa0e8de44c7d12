"""The online model's per-frame step exported for Paddle Inference: the frame and the shift
buffers in, the logits and the next buffers out, so a runtime streams a video with no Paddle
layer code."""
import paddle

import noise
from ..online import OnlineStep, _pair
from .predictor import model_files


def export_online_step(model, path, frame_size):
    """Save the per-frame step as a static inference model at `path` (a prefix):
    inputs frame [N, 3, H, W] then the buffers, outputs logits then the new
    buffers; N stays free. Each residual shift is merged into its conv1
    (models.fused), so the step never splices the buffer into a copy of the block
    input. Puts `model` in eval mode. Returns the program file written (load it
    with the .pdiparams next to it)."""
    model.eval()
    step = OnlineStep(model, merge=True)
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
