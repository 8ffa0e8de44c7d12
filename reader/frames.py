"""A folder of pre-extracted frames read like a video: `FrameFolder(path)`, as `Video` does.

The frames are named by a template with one integer field, frame i of the video being the
file named template.format(i + 1): img_{:05d}.jpg as written by data/extract_frames.py (and by
the TSN extraction scripts), {:05d}.jpg as Something-Something V1 and Jester ship them,
{:06d}.jpg as the original TSM code extracts Something-Something V2 (TEMPLATES). With no
template given, the folder says which: the one of TEMPLATES whose frame 1 it holds; a folder
holding the first frame of two of them is refused rather than guessed (DATA.frame_template
then names one). `reader.decode.open_video` returns a FrameFolder when given a folder, so a
list file may name frame folders instead of video files and nothing downstream changes.

Nothing is guessed: the frames must be numbered 1..n without a gap or a duplicate (a gap
would shift every later frame index), and a JPEG that is unreadable or cut short raises
DecodeError naming the file instead of yielding a partial or substituted frame.
"""
import os
import re

import cv2
import numpy as np

from .errors import DecodeError, check_indices

# the frame names folders are recognised by, the default (extract_frames.py's) first
TEMPLATES = ('img_{:05d}.jpg', '{:05d}.jpg', '{:06d}.jpg')
_FIELD = re.compile(r'\{(?::0?[0-9]*d)?\}')
_NUMBER = re.compile(r'[0-9]+')
# Every complete JPEG ends with the End Of Image marker. cv2.imread decodes a file cut short
# without an error (the missing rows come out gray); cv2.imdecode refuses it in OpenCV 5.0,
# and checking the marker keeps that so whatever the OpenCV version.
_JPEG_END = b'\xff\xd9'


def template_problem(template):
    """Why `template` cannot name frames (None when it can): one integer field such as
    {:05d}, a JPEG name (the reader checks the JPEG end marker), no folder part."""
    fields = _FIELD.findall(template)
    if len(fields) != 1 or template.count('{') != 1 or template.count('}') != 1:
        return 'expected one integer field such as {:05d}'
    if not template.lower().endswith(('.jpg', '.jpeg')):
        return 'expected a .jpg name'
    if '/' in template or os.sep in template:
        return 'expected a file name, without a folder'
    return None


def _pattern(template):
    """A regex of the names `template` gives, the number its group 1 (any digits, so that
    img_1.jpg and img_00001.jpg are found to be the same frame)."""
    head, _, tail = template.partition('{')
    return re.compile(re.escape(head) + '(.*)' + re.escape(tail.partition('}')[2]))


_KNOWN_PATTERNS = tuple({_pattern(t).pattern: _pattern(t) for t in TEMPLATES}.values())


def _other_naming(name, pattern):
    """Whether `name` is a frame of one of TEMPLATES read by another pattern than `pattern`
    (img_00001.jpg beside 00001.jpg frames): another naming's frame, not a misnamed one."""
    for other in _KNOWN_PATTERNS:
        match = other.fullmatch(name)
        if other.pattern != pattern.pattern and match and _NUMBER.fullmatch(match.group(1)):
            return True
    return False


def detect_template(folder, names):
    """The one of TEMPLATES whose frame 1 is among `names`; DecodeError naming `folder`
    when none or several are."""
    found = [t for t in TEMPLATES if t.format(1) in names]
    if len(found) == 1:
        return found[0]
    if found:
        raise DecodeError(folder, f'holds {" and ".join(t.format(1) for t in found)}: '
                                  f'set DATA.frame_template to the naming of its frames '
                                  f'({" or ".join(found)})')
    raise DecodeError(folder, f'no frames named {", ".join(t.format(1) for t in TEMPLATES)} '
                              f'(or set DATA.frame_template) in this folder')


class FrameFolder:
    """Frames 1..n of a folder, named by `template` ('' = detected, see the module's
    docstring): `num_frames`, `read(indices)` like `Video`; `template` is the one read."""

    backend = 'frames'

    def __init__(self, path, template=''):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise DecodeError(self.path, 'folder does not exist' if not os.path.exists(self.path)
                              else 'not a folder')
        problem = template and template_problem(template)
        if problem:
            raise ValueError(f'frame template {template!r}: {problem}')
        self.template, self._files = _numbered_frames(self.path, template)

    @property
    def num_frames(self):
        return len(self._files)

    def read(self, indices):
        """uint8 [len(indices), H, W, 3] RGB, frame k being frame indices[k] (0-based)."""
        indices = check_indices(self.path, indices, self.num_frames)
        frames = {i: self._read_one(i) for i in set(indices)}  # a repeated index is read once
        shapes = {frame.shape for frame in frames.values()}
        if len(shapes) > 1:
            raise DecodeError(self.path, f'frames differ in size: {sorted(shapes)}')
        return np.stack([frames[i] for i in indices])

    def _read_one(self, index):
        path = os.path.join(self.path, self._files[index])
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise DecodeError(path, f'cannot read the file: {e.strerror}') from None
        if data[-2:].tobytes() != _JPEG_END:
            raise DecodeError(path, 'not a complete JPEG (no end marker: cut short or corrupt)')
        frame = cv2.imdecode(data, cv2.IMREAD_COLOR)  # cv2.imread's decoder, on the bytes read
        if frame is None:
            raise DecodeError(path, 'OpenCV cannot decode this JPEG (corrupt or not a JPEG)')
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self):
        pass  # nothing is held open between reads; here for the Video interface

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _numbered_frames(folder, template):
    """(template, file names of frames 1..n of `folder` in order); DecodeError naming the
    folder when they are absent or not numbered 1..n."""
    try:
        names = set(os.listdir(folder))
    except OSError as e:
        raise DecodeError(folder, f'cannot list the folder: {e.strerror}') from None
    template = template or detect_template(folder, names)
    pattern = _pattern(template)
    names = [n for n in names if pattern.fullmatch(n) and not _other_naming(n, pattern)]
    if not names:
        raise DecodeError(folder, f'no frames named like {template.format(1)} in this folder')
    numbered = {}
    for name in sorted(names):
        number = pattern.fullmatch(name).group(1)
        if not _NUMBER.fullmatch(number):
            raise DecodeError(folder, f'{name} is not numbered like {template.format(1)}')
        if int(number) in numbered:
            raise DecodeError(folder, f'{name} and {numbered[int(number)]} are the same frame')
        numbered[int(number)] = name
    missing = sorted(set(range(1, len(names) + 1)) - set(numbered))
    if missing:
        raise DecodeError(folder, f'{len(names)} frames must be numbered 1..{len(names)} '
                                  f'without gaps; {template.format(missing[0])} is missing')
    return template, [numbered[i] for i in range(1, len(names) + 1)]
