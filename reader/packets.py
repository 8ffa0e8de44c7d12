"""What a video file holds, read from its packets with PyAV, without decoding them.

`index(path)` lists the frames the file shows (packets with data, less those an edit list
discards and the last one when the end of the file cuts it short), says whether data is
missing at the end and whether the container's announced count disagrees with the packets;
reader.decode counts and checks the decoded frames against it.
"""
import bisect
import collections

import av

from .errors import DecodeError

# Containers whose packets carry their own presentation timestamps (mp4/mov, mkv/webm), so
# the decoded frames can be checked against them; elsewhere only their count is checked.
_TIMESTAMPED_FORMATS = ('mov', 'mp4', 'matroska', 'webm')


# shown: (pts, dts) of the shown frames in decode order; feed: packets with data to decode;
# reorders: the codec may show frames in another order than it stores them (B-frames);
# in_file: the frames the file claims to hold, for saying how much of it decodes
Index = collections.namedtuple('Index', 'shown feed timestamped reorders cut in_file problem')


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
    """An Index of `path`: the shown frames' (pts, dts) in decode order, how many packets
    with data to feed the decoder, whether the container stores presentation timestamps,
    whether data is missing at the end, and what to log or None.

    Packets cut short by the end of the file (flagged corrupt, with no complete packet after
    them) are neither fed nor counted: decoding one yields an error or a damaged frame. A
    packet flagged corrupt before a complete one (MPEG-TS flags a continuity break, as where
    two files were joined) is fed like any other, as players do; the decoder's own check of
    the frame says whether it is damaged. Discarded packets are complete but never shown.
    """
    container, stream = open_container(path)
    with container:
        announced, errors, packets = stream.frames, [], []
        for packet in with_data(container, stream, errors):
            packets.append((packet.pts, packet.dts, packet.is_corrupt, packet.is_discard))
        timestamped = any(name in _TIMESTAMPED_FORMATS
                          for name in container.format.name.split(','))
        reorders = bool(stream.codec_context.has_b_frames)
        slots = 'avi' in container.format.name.split(',')
    feed = len(packets)
    while feed and packets[feed - 1][2]:
        feed -= 1
    cut_packet = feed < len(packets)
    shown = [(pts, dts) for pts, dts, _, discard in packets[:feed] if not discard]
    if slots and feed and None not in (packets[0][1], packets[feed - 1][1]):
        # an .avi announces a slot per frame time and skips a frame held on screen (variable
        # frame rate) as an empty chunk, which FFmpeg does not return: the slots up to the
        # last packet present are no missing frames
        announced -= max(packets[feed - 1][1] - packets[0][1] + 1 - feed, 0)
    cut = announced > feed or bool(errors) or cut_packet
    return Index(shown, feed, timestamped, reorders, cut, max(announced, feed),
                 _index_problem(announced, feed, errors, cut_packet))


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
    return _sorted_unique([pts for pts, _ in shown])


def sorted_stamps(shown):
    """The shown frames' times in the stream's time base, in order: their pts, else their
    dts (what a container without presentation times stores), or None when neither is known
    and distinct for every frame. An .avi with irregular frame times keeps them this way: its
    skipped frames are empty chunks whose place in the index is the time."""
    return sorted_pts(shown) or _sorted_unique([dts for _, dts in shown])


def reordered(shown):
    """Whether the timestamps tell presentation from decode order (some pts differs from its
    dts): a muxer that wrote none for B-frames stored pts == dts, in decode order."""
    return any(pts != dts for pts, dts in shown)


def _sorted_unique(stamps):
    if any(t is None for t in stamps):
        return None
    stamps = sorted(stamps)
    return stamps if len(set(stamps)) == len(stamps) else None


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
