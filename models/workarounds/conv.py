"""The backbone's convolution: paddle's Conv2D, computed as one matrix product where that is
faster in training on the CPU.

Paddle's CPU convolution kernel loops over the images of a batch, one im2col and one matrix
product each, and reads the whole filter once per image. On small feature maps the filter is
far larger than an image's columns, so the loop spends its time streaming the filter: a 3x3
conv of 512 channels on 1x1 maps (ResNet-18's last stage on 32x32 frames) costs as much for
128 images as one on 56x56 maps. Laid out as one product of the filter with the columns of
every image, the filter is read once: faster up to 7x7 maps, slower from 14x14 on
(docs/speed.md). Evaluation, export and the GPU keep paddle's kernel (oneDNN and cuDNN
are fast at every size), and so do shapes outside the rule.

The product leaves out the kernel taps that read nothing but padding at every output pixel
(on a 1x1 map a 3x3 kernel reads its centre alone): their columns are zeros, so they add
nothing to the output and their gradient is zero, and the product shrinks with them, 9x in
ResNet-18's last stage on 32x32 frames. Its gradient is written out (a PyLayer), since the one
autograd derives for the slice of live taps costs more than the product (docs/speed.md).

Depthwise convolutions (MobileNetV2's) have a kernel of their own in Paddle, whose CPU
training is slowest on the smallest maps: 64 images of 960 channels at 1x1 took 234 ms forward
and backward (docs/speed.md). Up to 2x2 output maps they are computed here as the input's
columns times each channel's taps, summed (24 ms there), and a 1x1 map as the centre tap alone.

A workaround (models/workarounds/): to delete when Paddle's CPU convolution is as fast on
small maps.
"""
import collections

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer

SMALL_OUTPUT = 49  # output pixels per image up to which the single product pays (7x7)
SMALL_DEPTHWISE = 4  # output pixels up to which the depthwise columns pay (2x2; equal at 4x4)

# Along one axis of the map: the first and last kernel tap that reads an input pixel for some
# output pixel, and the padding the product needs before and after the map with those taps.
Taps = collections.namedtuple('Taps', 'first last before after')


def output_side(side, kernel, stride, padding):
    return (side + 2 * padding - kernel) // stride + 1


def live_taps(side, kernel, stride, padding):
    """The Taps of a `side`-long axis: tap i of output o reads input o * stride + i - padding."""
    out = output_side(side, kernel, stride, padding)
    live = [i for i in range(kernel)
            if any(0 <= o * stride + i - padding < side for o in range(out))]
    first, last = live[0], live[-1]
    return Taps(first, last, padding - first,
                max(0, (out - 1) * stride + last - padding - (side - 1)))


# The product of a conv2d: the vertical and horizontal Taps, the [height, width] of the live
# taps, unfold's paddings (top, left, bottom, right) for them, and the output's [height, width].
class Plan(collections.namedtuple('Plan', 'down across kernel pads out_size')):
    @property
    def pixels(self):
        return self.out_size[0] * self.out_size[1]


def plan(x_shape, k, stride, padding):
    down, across = (live_taps(side, k, stride, padding) for side in x_shape[2:])
    return Plan(down, across, [down.last - down.first + 1, across.last - across.first + 1],
                [down.before, across.before, down.after, across.after],
                [output_side(side, k, stride, padding) for side in x_shape[2:]])


def _covers_map(x_shape, kernel, pads):
    """Whether the live taps cover the map exactly, unpadded (a 1x1 map, ResNet's last stage
    on small frames): the columns are the map itself, and Paddle 2.6's fold refuses a map
    of one row."""
    return list(x_shape[2:]) == kernel and not any(pads)


class _OneProduct(PyLayer):
    """conv2d as one matrix product over the live taps (see the module doc), with its
    gradient: the filter's from the saved columns, the input's folded back from the
    columns' gradient."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        n = x.shape[0]
        out_channels = weight.shape[0]
        product = plan(x.shape, weight.shape[2], stride, padding)
        down, across, kernel, pads, out_size = product
        live = weight[:, :, down.first:down.last + 1, across.first:across.last + 1]
        live = live.reshape([out_channels, -1])
        pixels = product.pixels
        if _covers_map(x.shape, kernel, pads):  # the map is its one column
            cols = x.reshape([n, -1])
        else:
            cols = F.unfold(x, kernel, strides=stride, paddings=pads)  # [N, C*kh*kw, pixels]
        if pixels == 1:  # [N, C*kh*kw] as it comes: no transposes
            cols = cols.reshape([n, -1])
            y = paddle.matmul(cols, live, transpose_y=True)
        else:
            cols = cols.transpose([1, 0, 2]).reshape([live.shape[1], n * pixels])
            y = paddle.matmul(live, cols).reshape([out_channels, n, pixels]).transpose([1, 0, 2])
        ctx.save_for_backward(cols, live)
        ctx.geometry = (x.shape, weight.shape, stride, product)
        # Paddle wants None for an input without gradient (the frames, a frozen filter)
        ctx.wanted = (not x.stop_gradient, not weight.stop_gradient)
        return y.reshape([n, out_channels] + out_size)

    @staticmethod
    def backward(ctx, grad):
        cols, live = ctx.saved_tensor()
        x_shape, w_shape, stride, product = ctx.geometry
        n, out_channels = x_shape[0], w_shape[0]
        pixels = product.pixels
        if pixels == 1:
            grad = grad.reshape([n, out_channels])
        else:
            grad = grad.reshape([n, out_channels, pixels]).transpose([1, 0, 2])
            grad = grad.reshape([out_channels, n * pixels])
        want_x, want_weight = ctx.wanted
        return (_input_grad(grad, live, x_shape, stride, product) if want_x else None,
                _filter_grad(grad, cols, w_shape, product) if want_weight else None)


def _input_grad(grad, live, x_shape, stride, product):
    """The input's gradient from the output's (laid out as the product made it): the
    columns' gradient folded back onto the map."""
    pixels, kernel, pads = product.pixels, product.kernel, product.pads
    if pixels == 1:
        grad_cols = paddle.matmul(grad, live).unsqueeze(-1)
    else:
        grad_cols = paddle.matmul(live, grad, transpose_x=True)
        grad_cols = grad_cols.reshape([-1, x_shape[0], pixels]).transpose([1, 0, 2])
    if _covers_map(x_shape, kernel, pads):
        return grad_cols.reshape(x_shape)
    return F.fold(grad_cols, x_shape[2:], kernel, strides=stride, paddings=pads)


def _filter_grad(grad, cols, w_shape, product):
    """The filter's gradient: the live taps' from the saved columns, zero for the others."""
    if product.pixels == 1:
        grad_live = paddle.matmul(grad, cols, transpose_x=True)
    else:
        grad_live = paddle.matmul(grad, cols, transpose_y=True)
    grad_live = grad_live.reshape(w_shape[:2] + product.kernel)
    if product.kernel == list(w_shape[2:]):
        return grad_live
    down, across = product.down, product.across
    grad_weight = paddle.zeros(w_shape, grad_live.dtype)
    grad_weight[:, :, down.first:down.last + 1, across.first:across.last + 1] = grad_live
    return grad_weight


def as_one_product(x, weight, stride, padding):
    """conv2d of x [N, C, H, W] with weight [O, C, k, k] (one group, no dilation, bias
    free, square stride and padding) as one matrix product over the columns of all images
    and the live taps."""
    return _OneProduct.apply(x, weight, stride, padding)


def depthwise_as_columns(x, weight, stride, padding):
    """conv2d of x [N, C, H, W] with weight [C, 1, k, k] in C groups (bias free, square stride
    and padding, no dilation) as each channel's columns weighted by its taps and summed; on a
    1x1 map, where only the tap at (padding, padding) reads the map, as that tap times x."""
    n, c, height, width = x.shape
    k = weight.shape[-1]
    if height == width == 1:  # also: Paddle 2.6's fold, unfold's gradient, refuses it
        tap = weight[:, :, padding:padding + 1, padding:padding + 1]
        return x * tap.reshape([1, c, 1, 1])
    out_h, out_w = (output_side(side, k, stride, padding) for side in (height, width))
    cols = F.unfold(x, k, strides=stride, paddings=padding)
    cols = cols.reshape([n, c, k * k, out_h * out_w])
    y = (cols * weight.reshape([1, c, k * k, 1])).sum(axis=2)
    return y.reshape([n, c, out_h, out_w])


def _square(values):
    """The common value of a [height, width] pair, or None when they differ."""
    return values[0] if len(set(values)) == 1 else None


class Conv2D(nn.Conv2D):
    """nn.Conv2D with the same parameters and results; trains on small maps on the CPU as
    one matrix product (see the module doc)."""

    def _route(self, x):
        """(function, stride, padding) when this call goes through as_one_product or
        depthwise_as_columns, else None (paddle's kernel)."""
        if not (self.training and paddle.in_dynamic_mode()) or not x.place.is_cpu_place():
            return None
        if (self.bias is not None or self._data_format != 'NCHW'
                or not isinstance(self._padding, int)):
            return None
        stride, kernel = _square(self._stride), _square(self._kernel_size)
        padding = self._padding
        # padding below the kernel: some tap reads the map at every output (live_taps)
        if None in (stride, kernel) or _square(self._dilation) != 1 or padding >= kernel:
            return None
        out_h, out_w = (output_side(side, kernel, stride, padding) for side in x.shape[2:])
        channels = x.shape[1]
        if self._groups == 1:
            if 1 in x.shape[2:]:  # Paddle 2.6's fold refuses a map of one row or column
                p = plan(x.shape, kernel, stride, padding)
                if not _covers_map(x.shape, p.kernel, p.pads):
                    return None
            return (as_one_product, stride, padding) if out_h * out_w <= SMALL_OUTPUT else None
        if self._groups == channels == self.weight.shape[0]:  # depthwise
            if 1 in x.shape[2:] and list(x.shape[2:]) != [1, 1]:  # the same fold
                return None
            if out_h * out_w <= SMALL_DEPTHWISE:
                return depthwise_as_columns, stride, padding
        return None

    def forward(self, x):
        route = self._route(x)
        if route is not None:
            function, stride, padding = route
            return function(x, self.weight, stride, padding)
        # Paddle 2.6's static translation cannot resolve a bare super()
        return nn.Conv2D.forward(self, x)
