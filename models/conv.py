"""The backbone's convolution: paddle's Conv2D, computed as one matrix product where that is
faster in training on the CPU.

Paddle's CPU convolution kernel loops over the images of a batch, one im2col and one matrix
product each, and reads the whole filter once per image. On small feature maps the filter is
far larger than an image's columns, so the loop spends its time streaming the filter: a 3x3
conv of 512 channels on 1x1 maps (ResNet-18's last stage on 32x32 frames) costs as much for
128 images as one on 56x56 maps. Laid out as one product of the filter with the columns of
every image, the filter is read once: 4.7x faster forward and backward on 1x1 maps, 3.4x on
2x2, 1.4x on 4x4, 1.3x on 7x7 of 512 channels, and slower from 14x14 on (measured on a 2-core
Xeon, Paddle 3.3.1). Evaluation, export and the GPU keep paddle's kernel (oneDNN and cuDNN
are fast at every size), and so do shapes outside the rule.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

SMALL_OUTPUT = 49  # output pixels per image up to which the single product pays (7x7)


def output_side(side, kernel, stride, padding):
    return (side + 2 * padding - kernel) // stride + 1


def as_one_product(x, weight, stride, padding):
    """conv2d of x [N, C, H, W] with weight [O, C, k, k] (one group, no dilation, bias
    free, square stride and padding) as one matrix product over the columns of all images."""
    n, c, h, w = x.shape
    out_channels, _, k, _ = weight.shape
    out_h, out_w = (output_side(side, k, stride, padding) for side in (h, w))
    cols = F.unfold(x, k, strides=stride, paddings=padding)  # [N, C*k*k, out_h*out_w]
    cols = cols.transpose([1, 0, 2]).reshape([c * k * k, n * out_h * out_w])
    y = paddle.matmul(weight.reshape([out_channels, c * k * k]), cols)
    y = y.reshape([out_channels, n, out_h * out_w]).transpose([1, 0, 2])
    return y.reshape([n, out_channels, out_h, out_w])


def _square(values):
    """The common value of a [height, width] pair, or None when they differ."""
    return values[0] if len(set(values)) == 1 else None


class Conv2D(nn.Conv2D):
    """nn.Conv2D with the same parameters and results; trains on small maps on the CPU as
    one matrix product (see the module doc)."""

    def _one_product_args(self, x):
        """(stride, padding) when this call goes through as_one_product, else None."""
        if not (self.training and paddle.in_dynamic_mode()) or not x.place.is_cpu_place():
            return None
        if (self.bias is not None or self._groups != 1 or self._data_format != 'NCHW'
                or not isinstance(self._padding, int)):
            return None
        stride, kernel = _square(self._stride), _square(self._kernel_size)
        if None in (stride, kernel) or _square(self._dilation) != 1:
            return None
        padding = self._padding
        out_h, out_w = (output_side(side, kernel, stride, padding) for side in x.shape[2:])
        return (stride, padding) if out_h * out_w <= SMALL_OUTPUT else None

    def forward(self, x):
        args = self._one_product_args(x)
        if args is None:  # Paddle 2.6's static translation cannot resolve a bare super()
            return nn.Conv2D.forward(self, x)
        return as_one_product(x, self.weight, *args)
