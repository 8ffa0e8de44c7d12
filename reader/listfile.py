"""List files: one video a line, `path label`, as in the Kinetics-400 lists.

The label is the last whitespace-separated token, so paths may contain spaces. Blank lines and
comments, a `#` followed by a space or alone on its line, are skipped: a path may start with `#`
(HMDB-51 names videos `#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi`). Relative paths resolve against
`data_root`, or against the list file's own folder when `data_root` is '' (so a list can sit
next to its videos). A line is stripped and split at line breaks, so a path with a line break,
with a space at its start or end, or read as a comment cannot be written (unlistable_reason).
"""
import codecs
import os


class ListFileError(ValueError):
    """A list file that cannot be read or a line that does not fit `path label`."""


def is_comment(text):
    """Whether the stripped line `text` is a comment: `#` followed by a space, or alone."""
    return text == '#' or (text[:1] == '#' and text[1:2].isspace())


def unlistable_reason(path):
    """Why a `path label` line cannot carry `path` (read back as another path, or as other
    lines), or None when it can."""
    if '\n' in path or '\r' in path:
        return 'a line break in its name'
    if path != path.strip():
        return 'a space at the start or end of its name'
    if is_comment(path):
        return "'# ' at its start: read as a comment"
    try:
        path.encode('utf-8')
    except UnicodeEncodeError:
        return 'a name that is not UTF-8'
    return None


def _parse_label(token):
    """The integer spelled by `token`, or None when it is not an integer."""
    try:
        return int(token)
    except ValueError:
        return None


def _parse_line(text, require_label):
    """(path, label) from one stripped line; label None when absent. Raises ValueError."""
    parts = text.rsplit(None, 1)
    head, last = (parts[0], parts[1]) if len(parts) == 2 else ('', parts[0])
    label = _parse_label(last)
    if label is None or not head:
        # A single token, or a last token that is not an integer: the whole line is a path.
        if require_label:
            raise ValueError('expected "path label" with an integer label')
        return text, None
    if label < 0:
        raise ValueError(f'label must be >= 0, got {label}')
    return head, label


def _read_lines(path, what='list file'):
    """The lines of list file `path` as text. Written as UTF-8, with or without the byte-order
    mark some Windows editors put first (it would otherwise become part of the first path);
    other bytes raise ListFileError naming the line, not a UnicodeDecodeError deep in a loader.
    `what` names the file in messages: 'list file', or the config key that gave it.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise ListFileError(f'cannot read {what} {path}: {e.strerror}') from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = []
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            lines.append(line.decode('utf-8'))
        except UnicodeDecodeError as e:
            raise ListFileError(f'{what} {path}:{number}: byte 0x{line[e.start]:02x} at column '
                                f'{e.start + 1} is not UTF-8 (save the list as UTF-8): '
                                f'{line!r}') from None
    return lines


def read_list(path, data_root='', require_label=True, num_classes=None):
    """[(video_path, label)] from list file `path`; label is None for unlabelled lines.

    With require_label=False (inference lists) a line may be just a path, but a line whose last
    token is an integer is still read as path + label. When `num_classes` is given every label
    must be below it. Any problem raises ListFileError naming the file, the line number and the
    line itself.
    """
    lines = _read_lines(path)
    root = data_root or os.path.dirname(os.path.abspath(path))
    entries = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or is_comment(text):
            continue
        try:
            video, label = _parse_line(text, require_label)
            if label is not None and num_classes is not None and label >= num_classes:
                raise ValueError(f'label {label} is not below num_classes={num_classes}')
        except ValueError as e:
            raise ListFileError(f'{path}:{number}: {e}: {line!r}') from None
        entries.append((os.path.join(root, video), label))
    return entries


def read_label_names(path, num_classes, key='INFER.label_file'):
    """Class names, line i naming label i (blank lines skipped), read as list files are;
    their count must be the model's class count, else ListFileError naming `key`."""
    names = [line.strip() for line in _read_lines(path, key) if line.strip()]
    if len(names) != num_classes:
        raise ListFileError(f'{key} {path} has {len(names)} names but MODEL.num_classes is '
                            f'{num_classes}; set num_classes to its line count, or {key} to '
                            f'the matching file')
    return names
