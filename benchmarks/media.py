"""Videos the benchmarks make for themselves."""
import numpy as np


def write_video(path, width, height, num_frames, fps=25):
    """An H.264 file (x264 defaults: B-frames, one keyframe per 250 frames) of a moving
    gradient with fine texture, so decoding costs what a real clip costs."""
    import av
    ys, xs = np.mgrid[0:height, 0:width]
    texture = np.random.default_rng(0).integers(0, 40, (height, width, 3))
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        for i in range(num_frames):
            base = np.stack([(xs + 3 * i) % 256, (ys + 2 * i) % 256, (xs + ys + i) % 256], -1)
            rgb = np.clip(base * 0.8 + texture, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
