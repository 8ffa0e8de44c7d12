"""Test videos whose frame i carries i in its pixels, so decoded frames can be checked exactly.

Layout of every frame (any size; 64x48 keeps tests fast):
- top half: INDEX_BITS black/white blocks, the binary digits of i (most significant first),
  8 blocks per row. Blocks of several pixels survive every lossy codec used here, and a frame
  is read by thresholding each block's centre, so read_index gives the written index or raises.
- bottom-left quarter: pure red, so a frame decoded in BGR order is caught (read_index raises).
- the rest of the bottom half: a noise texture that moves by 3 pixels per frame, so encoders
  really predict from other frames (P/B-frames) instead of repeating one picture.
"""
import fractions
import os

import av
import cv2
import numpy as np

INDEX_BITS = 16
_BITS_PER_ROW = 8
_CLEAR = 48  # a block mean must be this far from mid-gray, otherwise the frame is unreadable

# codec -> (writer, default extension)
CODECS = {
    'mp4v': ('opencv', '.mp4'),
    'MJPG': ('opencv', '.avi'),
    'h264': ('pyav', '.mp4'),
    'mpeg4': ('pyav', '.avi'),
    'vp8': ('pyav', '.webm'),
    'vp9': ('pyav', '.webm'),
}


def _block_edges(width, height):
    """[(y0, y1, x0, x1)] of the INDEX_BITS blocks, most significant bit first."""
    rows = INDEX_BITS // _BITS_PER_ROW
    ys = np.linspace(0, height // 2, rows + 1).astype(int)
    xs = np.linspace(0, width, _BITS_PER_ROW + 1).astype(int)
    return [(ys[r], ys[r + 1], xs[c], xs[c + 1]) for r in range(rows) for c in range(_BITS_PER_ROW)]


def index_frame(i, width=64, height=48):
    """The RGB uint8 [height, width, 3] frame that carries index i."""
    if not 0 <= i < 2 ** INDEX_BITS:
        raise ValueError(f'index {i} does not fit in {INDEX_BITS} bits')
    frame = np.zeros((height, width, 3), np.uint8)
    for bit, (y0, y1, x0, x1) in enumerate(_block_edges(width, height)):
        if (i >> (INDEX_BITS - 1 - bit)) & 1:
            frame[y0:y1, x0:x1] = 255
    half, quarter = height // 2, width // 4
    frame[half:, :quarter] = (255, 0, 0)
    texture = np.random.default_rng(0).integers(40, 216, (height - half, 2 * width), np.uint8)
    shift = (3 * i) % width
    frame[half:, quarter:] = texture[:, shift:shift + width - quarter, None]
    return frame


def read_index(frame):
    """The index carried by an RGB uint8 frame; ValueError if the frame is unreadable or BGR."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f'expected an [H, W, 3] frame, got shape {frame.shape}')
    height, width = frame.shape[:2]
    marker = frame[height * 5 // 8:height * 7 // 8, width // 32:width * 7 // 32].reshape(-1, 3).mean(0)
    if not (marker[0] > 128 + _CLEAR and marker[2] < 128 - _CLEAR):
        raise ValueError(f'colour marker is {marker.round()}, expected red: not an RGB index frame')
    value = 0
    for y0, y1, x0, x1 in _block_edges(width, height):
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        level = frame[y0 + dy:y1 - dy, x0 + dx:x1 - dx].mean()
        if abs(level - 128) < _CLEAR:
            raise ValueError(f'index block at y={y0} x={x0} has mean {level:.0f}, neither black nor white')
        value = 2 * value + int(level > 128)
    return value


def write_index_video(path, num_frames, width=64, height=48, fps=25, codec='mp4v', **opts):
    """Write frames 0..num_frames-1 of index_frame to `path` and return the path.

    codec: 'mp4v' or 'MJPG' (OpenCV VideoWriter), 'h264' (PyAV libx264), 'mpeg4' (PyAV, the
    Xvid/DivX family common in older datasets' .avi files), 'vp8' or 'vp9' (PyAV libvpx).
    The container follows the extension of `path` (.mp4 .avi .mkv .webm).
    Options (PyAV codecs): keyint (frames between keyframes, default 250); bframes ('h264'
    default 3, 'mpeg4' default 2, ignored by vp8/vp9); open_gop ('h264', default False: frames
    after a keyframe may reference the previous group); faststart (.mp4, default False: the
    index is written before the frame data, so a file cut short still announces every frame);
    pts_gap (default 0: constant frame rate): the second half of the frames is stamped
    pts_gap frame durations later, a pause as in variable-frame-rate phone videos.
    """
    if codec not in CODECS:
        raise ValueError(f'unknown codec {codec!r}, expected one of {sorted(CODECS)}')
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    frames = (index_frame(i, width, height) for i in range(num_frames))
    if CODECS[codec][0] == 'opencv':
        if opts:
            raise ValueError(f'codec {codec!r} takes no options, got {sorted(opts)}')
        _write_opencv(path, frames, width, height, fps, codec)
    else:
        _write_pyav(path, frames, width, height, fps, codec, **opts)
    return path


def _write_opencv(path, frames, width, height, fps, fourcc):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {fourcc} to {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()


def _codec_setup(container, codec, fps, keyint, bframes, open_gop):
    """The PyAV output stream for `codec` with the keyframe interval and B-frames asked for."""
    if codec == 'h264':
        stream = container.add_stream('libx264', rate=fps)
        # x264's own options, so B-frames and keyframes are exactly as asked (scenecut=0: the
        # encoder inserts no keyframes of its own).
        params = f'bframes={3 if bframes is None else bframes}:keyint={keyint}:min-keyint={keyint}'
        params += ':scenecut=0' + (':open-gop=1' if open_gop else '')
        stream.options = {'crf': '18', 'preset': 'veryfast', 'x264-params': params}
    elif codec == 'mpeg4':
        stream = container.add_stream('mpeg4', rate=fps)
        stream.options = {'qscale': '3'}
        stream.codec_context.max_b_frames = 2 if bframes is None else bframes
        stream.codec_context.gop_size = keyint
    else:
        stream = container.add_stream('libvpx' if codec == 'vp8' else 'libvpx-vp9', rate=fps)
        stream.options = {'crf': '10', 'b': '2M', 'g': str(keyint), 'deadline': 'realtime'}
    return stream


def _write_pyav(path, frames, width, height, fps, codec, keyint=250, bframes=None,
                open_gop=False, faststart=False, pts_gap=0):
    options = {'movflags': 'faststart'} if faststart else {}
    frames = list(frames)
    with av.open(path, 'w', options=options) as container:
        stream = _codec_setup(container, codec, fps, keyint, bframes, open_gop)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.codec_context.time_base = fractions.Fraction(1, fps)
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format='rgb24')
            picture.pts = i + (pts_gap if i >= len(frames) // 2 else 0)
            picture.time_base = stream.codec_context.time_base
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def write_corrupt_video(path, kind, source=None):
    """Write a broken file at `path` and return the path.

    kind: 'empty' (0 bytes), 'random' (4 KiB of random bytes), 'truncated' (the first third
    of the valid video `source`: an mp4 written without faststart loses its index, so nothing
    is readable), or 'cut_tail' (the first 60% of `source`: written with faststart, the index
    survives and still announces every frame, but only the first part can be decoded).
    """
    if kind == 'empty':
        data = b''
    elif kind == 'random':
        data = np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes()
    elif kind in ('truncated', 'cut_tail'):
        if source is None:
            raise ValueError(f'kind={kind!r} needs the path of a valid video as source')
        with open(source, 'rb') as f:
            data = f.read()
        data = data[:len(data) // 3] if kind == 'truncated' else data[:len(data) * 3 // 5]
    else:
        raise ValueError(f"unknown kind {kind!r}, expected 'empty', 'random', 'truncated' or 'cut_tail'")
    with open(path, 'wb') as f:
        f.write(data)
    return path


def write_trimmed_start_video(path, source):
    """`source` (an mp4) remuxed into `path` with every timestamp one frame earlier; returns path.

    The mp4 muxer then writes an edit list that starts the video at timestamp 0, so the first
    encoded frame is decoded (later frames refer to it) but not shown, as in many phone and
    YouTube mp4s with B-frames: the container announces N frames and N-1 are the video.
    """
    def earlier(packet, position, count):
        packet.pts -= packet.duration
        packet.dts -= packet.duration
        return packet
    return remux(source, path, earlier)


def write_damaged_video(path, source, positions, damage):
    """`source` remuxed into `path` with the payload of the packets at `positions` (in decode
    order, negative from the end) replaced by damage(payload bytes) -> bytes; returns path."""
    def damaged(packet, position, count):
        if position not in {p % count for p in positions}:
            return packet
        replaced = av.Packet(damage(bytes(packet)))
        for name in ('pts', 'dts', 'duration', 'time_base', 'is_keyframe'):
            setattr(replaced, name, getattr(packet, name))
        return replaced
    return remux(source, path, damaged)


def hide_vp8_frame(payload):
    """The VP8 frame with its show_frame bit cleared (bit 4 of the frame tag, RFC 6386 9.1):
    decoders decode it as a reference but output nothing for it, and raise no error."""
    return bytes([payload[0] & ~0x10]) + payload[1:]


def remux(source, path, edit):
    """Copy the video packets of `source` into `path` without decoding, each replaced by
    edit(packet, position in decode order, packet count)."""
    with av.open(source) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        with av.open(path, 'w') as out:
            copy = out.add_stream_from_template(stream)
            for position, packet in enumerate(packets):
                packet = edit(packet, position, len(packets))
                packet.stream = copy
                out.mux(packet)
    return path


def sequential_frames(path):
    """Every frame of `path` decoded in order with PyAV, RGB uint8 [N, H, W, 3] (a reference).

    A packet cut short by the end of the file is left out (the decoder would raise on it).
    """
    with av.open(path) as container:
        packets = container.demux(container.streams.video[0])
        return np.stack([frame.to_ndarray(format='rgb24') for packet in packets
                         if not packet.is_corrupt for frame in packet.decode()])


__all__ = ['CODECS', 'INDEX_BITS', 'index_frame', 'read_index', 'write_index_video',
           'write_corrupt_video', 'write_trimmed_start_video', 'write_damaged_video',
           'hide_vp8_frame', 'sequential_frames']

if __name__ == '__main__':  # quick look: write one of each into the current folder
    for name, (_, ext) in CODECS.items():
        print(write_index_video(os.path.join('.', f'index_{name}{ext}'), 30, codec=name))
