"""What a video file holds, read from its packets with PyAV, without decoding them.

`index(path)` lists the frames the file shows (packets with data, less those an edit list
discards and the last one when the end of the file cuts it short), says whether data is
missing at the end and whether the container's announced count disagrees with the packets;
reader.decode counts and checks the decoded frames against it.
"""
import bisect

import av

from .errors import DecodeError

# Containers whose packets carry their own presentation timestamps (mp4/mov, mkv/webm), so
# the decoded frames can be checked against them; elsewhere only their count is checked.
_TIMESTAMPED_FORMATS = ('mov', 'mp4', 'matroska', 'webm')


def open_container(path):
    """The container of `path` with its first video stream; DecodeError if there is none."""
    try:
        # metadata is never read: a title in another encoding must not make the file unreadable
        container = av.open(path, metadata_errors='replace')
    except av.error.FFmpegError as e:
        raise DecodeError(path, f'FFmpeg cannot open the file ({first_line(e)})') from None
    if not container.streams.video:
        container.close()
        raise DecodeError(path, 'the file has no video stream')
    return container, container.streams.video[0]


def with_data(container, stream, errors):
    """The packets of `stream` that hold data, in file order, up to the end or to the first
    one the demuxer cannot read (its error appended to `errors`): a damaged file is read as
    far as it goes, and the count at open says where that is."""
    try:
        for packet in container.demux(stream):
            if packet.size:  # PyAV ends with empty packets that mean "flush the decoder"
                yield packet
    except av.error.FFmpegError as e:
        errors.append(e)


def index(path):
    """([(pts, dts)] of the shown frames in decode order, whether the container stores
    presentation timestamps, whether data is missing at the end, what to log or None).

    Packets cut short by the end of the file (flagged corrupt) are not counted: decoding
    one yields an error or a damaged frame. Discarded ones are complete but never shown.
    """
    container, stream = open_container(path)
    with container:
        announced, complete, shown, errors, cut_packet = stream.frames, 0, [], [], False
        for packet in with_data(container, stream, errors):
            if packet.is_corrupt:
                cut_packet = True
                continue
            complete += 1
            if not packet.is_discard:
                shown.append((packet.pts, packet.dts))
        timestamped = any(name in _TIMESTAMPED_FORMATS
                          for name in container.format.name.split(','))
    cut = announced > complete or bool(errors) or cut_packet
    return shown, timestamped, cut, _index_problem(announced, complete, errors, cut_packet)


def _index_problem(announced, complete, errors, cut_packet):
    """What to log about a file whose packets disagree with its container, or None."""
    if announced > complete:
        return (f'the container announces {announced} frames, only {complete} are in the file '
                f'(cut short?)')
    if announced and announced != complete:
        return f'the container announces {announced} frames, the file holds {complete}'
    if errors:
        return f'the demuxer stops after {complete} frames ({first_line(errors[0])})'
    if cut_packet:
        return f'the last packet is cut short, {complete} frames are complete'
    return None


def sorted_pts(shown):
    """The shown frames' timestamps in presentation order, or None when some is unknown or
    two are equal (nothing to check the decoded frames against)."""
    if any(pts is None for pts, _ in shown):
        return None
    pts = sorted(pts for pts, _ in shown)
    return pts if len(set(pts)) == len(pts) else None


def before_missing(shown, pts):
    """How many shown frames, in presentation order, no missing frame can precede.

    In a file cut short the missing packets come after the last one present in decode order,
    so each has a larger dts, and a frame's pts is never below its dts: every frame shown at
    or before the last dts present is complete and in place. With B-frames the last few
    frames present may follow missing ones in time (a P-frame whose B-frames were cut).
    """
    last_dts = shown[-1][1] if shown else None
    return len(pts) if last_dts is None else bisect.bisect_right(pts, last_dts)


def first_line(error):
    """The first line of an error's message, for a one-line reason."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
