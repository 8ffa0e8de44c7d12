"""Write the train/val list files and the label names of a video dataset, from its own layout.

    python data/make_lists.py folders  ROOT --out OUT [--val_fraction 0.2] [--seed 0]
    python data/make_lists.py folders  ROOT --out OUT --split_files TRAIN.txt VAL.txt
    python data/make_lists.py ucf101   ROOT --splits ucfTrainTestlist --split 1 --out OUT
    python data/make_lists.py hmdb51   ROOT --splits testTrainMulti_7030_splits --split 1 --out OUT
    python data/make_lists.py kinetics ROOT --train_csv train.csv --val_csv validate.csv --out OUT
    python data/make_lists.py sthv2    ROOT --labels L --train T --val V [--test X] --out OUT
    python data/make_lists.py sthv1    ROOT --labels L --train T --val V [--test X] --out OUT
    python data/make_lists.py jester   ROOT --labels L --train T --val V [--test X] --out OUT
    each also takes [--no_check] [--allow_missing] [--workers N]

ROOT is the folder that holds the videos. Written into OUT:
- train.list, val.list: `path label` lines (reader.listfile), sorted by label then path, the
  paths relative to ROOT: train with DATA.data_root=ROOT (the summary prints the flags);
- labels.txt: line i names label i (INFER.label_file; its line count is MODEL.num_classes);
- left_out.txt: one line per video the layout names that is not in the lists, and why;
- test.list, when a layout's unlabelled test split is given (--test): one path a line, a
  prediction list (INFER.filelist; reader.listfile reads a line without a label).

Layouts, and the order of their labels:
- folders: ROOT/<class>/<video> (reader.decode.VIDEO_EXTENSIONS, anywhere below the class
  folder, hidden files skipped). The classes are the class folders sorted by name. --val_fraction puts
  round(n x fraction) of a class's n readable videos in val, but at least 1 and at most n-1
  when n >= 2 (a lone video goes to train): every class with two videos is in both splits.
  The draw is seeded by (--seed, class name), so adding a class leaves the other classes'
  splits as they were. --split_files names each split's videos instead, one `<class>/<video>`
  a line relative to ROOT (comments as in list files: `# ` first); a trailing integer (as in
  UCF's lists) is ignored, the folder is the class, and a class named there without a folder
  still gets its label.
- ucf101: ROOT/<class>/<video>.avi and the official split folder: the classes in the order of
  classInd.txt (its 1-based indices become labels 0..N-1), trainlist0N.txt / testlist0N.txt
  for split N; a label written in trainlist must be the class's in classInd.txt.
- hmdb51: ROOT/<class>/<video>.avi and the official folder of <class>_test_splitN.txt files,
  `<video> <mark>` lines: 1 train, 2 test (here val), 0 neither (counted as unused), no
  comments (videos such as `#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi` start with `#`). The
  classes are those of the split files, sorted by name.
- kinetics: the annotation CSVs (columns label, youtube_id, time_start, time_end, in any
  order, more allowed). The labels are every label name of both CSVs, sorted: for
  Kinetics-400 the usual order, that of data/kinetics400_labels.txt. KINETICS_NAME says
  where and under which name a clip's file is looked for.
- sthv2 (Something-Something V2): ROOT/<id>.webm and the JSON annotations:
  something-something-v2-labels.json ({template: "index"}: the labels in index order),
  -train.json / -validation.json (entries with "id" and "template"; the class is the
  template without its square brackets: "Putting [something] on [something]" is "Putting
  something on something"), -test.json (entries with "id" only, for --test). An entry is
  named `FILE: entry N (id I)`, N counted from 1.
- sthv1 (Something-Something V1) and jester (Jester): frame folders ROOT/<id>/00001.jpg...
  (reader.frames finds the naming) and the CSV annotations: *-labels.csv (one class a line,
  in label order), *-train.csv / *-validation.csv (`id;class` lines), *-test.csv (`id`
  lines, for --test). --label_order sorted numbers the classes in sorted order instead,
  the order of the original TSM code's category.txt, which its published SSv1 and Jester
  weights output (Something-Something V2's labels are in sorted order already).
  A class that is not in the labels file stops the command naming the file and line (or
  entry).

Reports (stderr) and exit status:
- `warning: class 'X' (label i) has no video in val`: the class keeps its label all the same
  (labels.txt always holds every class, in the layout's order), but training cannot learn a
  class without videos, nor validation measure it;
- `missing: PATH (FILE:LINE)`: named by a split file or CSV but absent; `unreadable: PATH:
  REASON`: reader.decode cannot open it, or it has no frame (--no_check skips opening every
  video); `unlistable: 'PATH': REASON`: a list line cannot carry its name (a line break, a
  space at its start or end: reader.listfile.unlistable_reason). All are left out of the
  lists; the first 20 of each are printed, all go to left_out.txt, and the exit status is
  then 1 (the lists are still written), unless --allow_missing, for datasets that always miss
  some (YouTube removes Kinetics videos).
A split file or CSV that does not fit its layout, names a path out of ROOT (`..`) or a video
in both train and val, or a class name labels.txt cannot carry, stops the command with a
message naming the file and line (or the class), exit status 2, before anything is
written. Each file is written under a temporary name and renamed, so a reader never sees half
a file. The same inputs and seed give the same files.
"""
import argparse
import collections
import csv
import json
import math
import multiprocessing
import os
import random
import shlex
import signal
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import outputs  # noqa: E402
from models.device import usable_cores  # noqa: E402
from reader.decode import VIDEO_EXTENSIONS, DecodeError, open_video  # noqa: E402
from reader.listfile import is_comment, unlistable_reason  # noqa: E402

SPLITS = ('train', 'val')
SHOWN = 20  # report lines printed per kind; left_out.txt has them all

# The file name of a Kinetics clip: `<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`, the
# times in whole seconds. The ActivityNet crawler (github.com/activitynet/ActivityNet,
# Crawler/Kinetics/download.py, construct_video_filename) names clips so, into ROOT/<label>/;
# the CVDF archives (github.com/cvdfoundation/kinetics-dataset) keep those names flat in
# train/ val/ folders; mmaction2's tools/data/kinetics puts them in videos_train/<label with
# `_` for spaces>/. So a clip is looked for under this name, with any of VIDEO_EXTENSIONS
# (youtube-dl may give .mkv or .webm), anywhere below ROOT. When the name is in several places
# (a copy, or arrange_by_classes.py's links next to the archive's files) the one in a folder
# named after the label is taken, else the first path in sorted order.
KINETICS_NAME = '{youtube_id}_{start:06d}_{end:06d}'
KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')

# path: relative to ROOT; label: its class index (None in a test split); where: the
# 'FILE:LINE' that names the video, '' when it was found by listing ROOT
Video = collections.namedtuple('Video', 'path label where')
TEST = 'test'  # the unlabelled split of the 20BN layouts, written as a prediction list


class LayoutError(ValueError):
    """A split file, class index or CSV that does not fit its layout (names file and line)."""


def read_lines(path, comments=True):
    """[(line number, stripped text)] of a split file, without blank lines, nor comments
    (reader.listfile's) unless `comments` is False: the official UCF-101 and HMDB-51 files
    have none, and HMDB-51 names videos `#20_...`."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise LayoutError(f'cannot read {path}: {e.strerror}') from None
    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            text = raw.decode('utf-8-sig' if number == 1 else 'utf-8').strip()
        except UnicodeDecodeError:
            raise LayoutError(f'{path}:{number}: not UTF-8: {raw!r}') from None
        if text and not (comments and is_comment(text)):
            lines.append((number, text))
    return lines


def split_number(text):
    """(head, n) when the last whitespace-separated token of `text` is an integer n, else
    (text, None): `Class/v_x.avi 1` in UCF's trainlist, `v_x.avi` in its testlist."""
    parts = text.rsplit(None, 1)
    if len(parts) == 2:
        try:
            return parts[0], int(parts[1])
        except ValueError:
            pass  # a path whose last part is not a number: the whole line is the path
    return text, None


def class_of(path, where):
    """The class folder of a `<class>/<video>` path from a split file."""
    parts = path.replace('\\', '/').split('/')
    if len(parts) < 2 or not parts[0]:
        raise LayoutError(f'{where}: expected <class>/<video>, got {path!r}')
    return parts[0]


def find_videos(folder):
    """Yield the video files below `folder` in sorted order, hidden files and folders skipped
    (a generator, so that a progress bar moves while a large tree is walked)."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in sorted(files):
            if not name.startswith('.') and name.lower().endswith(VIDEO_EXTENSIONS):
                yield os.path.join(parent, name)


def class_folders(root, out):
    """The class folder names of ROOT, sorted (OUT is no class when it is inside ROOT)."""
    return sorted(name for name in os.listdir(root)
                  if os.path.isdir(os.path.join(root, name)) and not name.startswith('.')
                  and os.path.realpath(os.path.join(root, name)) != os.path.realpath(out))


def layout_folders(args):
    """ROOT/<class>/<video>. Each layout returns (class names in label order, {split:
    [Video]}, videos named for neither split); here split 'all' with --val_fraction, which is
    drawn later, among the videos that open."""
    classes = class_folders(args.root, args.out)
    if args.split_files is None:
        if not classes:
            raise LayoutError(f'{args.root} has no class folders (ROOT/<class>/<video>)')
        videos = [Video(os.path.relpath(path, args.root), label, '')
                  for label, name in enumerate(classes)
                  for path in find_videos(os.path.join(args.root, name))]
        return classes, {'all': videos}, 0
    # a class named in a split file without a folder is still a class: its videos are missing
    named = {split: [(split_number(text)[0], f'{path}:{number}')
                     for number, text in read_lines(path)]
             for split, path in zip(SPLITS, args.split_files)}
    classes = sorted(set(classes) | {class_of(video, where) for lines in named.values()
                                     for video, where in lines})
    label = {name: i for i, name in enumerate(classes)}
    return classes, {split: [Video(video, label[class_of(video, where)], where)
                             for video, where in lines]
                     for split, lines in named.items()}, 0


def read_class_index(path):
    """UCF-101 classInd.txt (`1 ApplyEyeMakeup` ...): the class names, label i on line i+1."""
    classes = []
    for number, text in read_lines(path, comments=False):
        index, _, name = text.partition(' ')
        if not index.isdigit() or int(index) != len(classes) + 1 or not name.strip():
            raise LayoutError(f'{path}:{number}: expected "{len(classes) + 1} <class name>", '
                              f'got {text!r}')
        classes.append(name.strip())
    if not classes:
        raise LayoutError(f'{path} names no class')
    return classes


def layout_ucf101(args):
    """UCF-101: classInd.txt order, trainlist0N.txt / testlist0N.txt."""
    classes = read_class_index(os.path.join(args.splits, 'classInd.txt'))
    label = {name: i for i, name in enumerate(classes)}
    named = {}
    for split, stem in zip(SPLITS, ('trainlist', 'testlist')):
        path = os.path.join(args.splits, f'{stem}{args.split:02d}.txt')
        named[split] = []
        for number, text in read_lines(path, comments=False):
            where = f'{path}:{number}'
            video, given = split_number(text)
            name = class_of(video, where)
            if name not in label:
                raise LayoutError(f'{where}: class {name!r} is not in classInd.txt')
            if given is not None and given != label[name] + 1:
                raise LayoutError(f'{where}: label {given}, but classInd.txt has {name!r} '
                                  f'as {label[name] + 1}')
            named[split].append(Video(video, label[name], where))
    return classes, named, 0


def layout_hmdb51(args):
    """HMDB-51: <class>_test_splitN.txt files of `<video> <mark>` lines (1 train, 2 test)."""
    suffix = f'_test_split{args.split}.txt'
    files = sorted(f for f in os.listdir(args.splits) if f.endswith(suffix))
    if not files:
        raise LayoutError(f'{args.splits} has no *{suffix} files')
    classes = [f[:-len(suffix)] for f in files]
    named, unused = {split: [] for split in SPLITS}, 0
    for label, (name, file) in enumerate(zip(classes, files)):
        path = os.path.join(args.splits, file)
        for number, text in read_lines(path, comments=False):
            video, mark = split_number(text)
            if mark not in (0, 1, 2):
                raise LayoutError(f'{path}:{number}: expected "<video> <0, 1 or 2>", '
                                  f'got {text!r}')
            if mark == 0:
                unused += 1
                continue
            named[SPLITS[mark - 1]].append(Video(f'{name}/{video}', label, f'{path}:{number}'))
    return classes, named, unused


def read_kinetics_csv(path):
    """[(label name, clip file name without extension, 'FILE:LINE')] of an annotation CSV."""
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f)
            absent = [c for c in KINETICS_COLUMNS if c not in (reader.fieldnames or ())]
            if absent:
                raise LayoutError(f'{path}:1: no column {", ".join(absent)} in the header '
                                  f'(expected {",".join(KINETICS_COLUMNS)},...)')
            return [_kinetics_row(row, f'{path}:{reader.line_num}') for row in reader]
    except OSError as e:
        raise LayoutError(f'cannot read {path}: {e.strerror}') from None
    except UnicodeDecodeError as e:
        raise LayoutError(f'{path}: not UTF-8 ({e.reason} at byte {e.start})') from None


def _kinetics_row(row, where):
    label, youtube_id = (row['label'] or '').strip(), (row['youtube_id'] or '').strip()
    if not label or not youtube_id:
        raise LayoutError(f'{where}: a clip needs its label and youtube_id (test.csv has no '
                          f'labels: it cannot make a list)')
    try:
        # whole seconds, truncated as the crawler's %06d truncates them
        start, end = (int(float(row[key])) for key in ('time_start', 'time_end'))
    except (TypeError, ValueError):
        raise LayoutError(f'{where}: time_start and time_end must be numbers, got '
                          f'{row["time_start"]!r}, {row["time_end"]!r}') from None
    return label, KINETICS_NAME.format(youtube_id=youtube_id, start=start, end=end), where


def index_videos(root):
    """{file name without extension: [paths relative to ROOT, sorted]} of the videos below."""
    index = collections.defaultdict(list)
    for path in tqdm(find_videos(root), desc='indexing', unit='video', disable=None):
        rel = os.path.relpath(path, root)
        index[os.path.splitext(os.path.basename(rel))[0]].append(rel)
    return index


def pick_clip(paths, label):
    """The path of a clip found in several places: in a folder named after its label first."""
    names = {label, label.replace(' ', '_')}
    in_label = [p for p in paths if os.path.basename(os.path.dirname(p)) in names]
    return (in_label or paths)[0]


def layout_kinetics(args):
    """Kinetics annotation CSVs, the clips found by name below ROOT."""
    rows = {split: read_kinetics_csv(path)
            for split, path in zip(SPLITS, (args.train_csv, args.val_csv))}
    classes = sorted({label for split_rows in rows.values() for label, _, _ in split_rows})
    label_of = {name: i for i, name in enumerate(classes)}
    index = index_videos(args.root)
    named = {}
    for split, split_rows in rows.items():
        named[split] = [Video(pick_clip(index[name], label) if name in index
                              # absent: reported where the crawler would have put it
                              else os.path.join(label, name + '.mp4'), label_of[label], where)
                        for label, name, where in split_rows]
    return classes, named, 0


def read_json(path):
    """The JSON document of an annotation file; LayoutError naming it (and the line) if it
    cannot be read."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            return json.load(f)
    except OSError as e:
        raise LayoutError(f'cannot read {path}: {e.strerror}') from None
    except UnicodeDecodeError as e:
        raise LayoutError(f'{path}: not UTF-8 ({e.reason} at byte {e.start})') from None
    except json.JSONDecodeError as e:
        raise LayoutError(f'{path}:{e.lineno}: not JSON: {e.msg}') from None


def read_sthv2_labels(path):
    """something-something-v2-labels.json, {template: "index"}: the names in index order."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise LayoutError(f'{path}: expected a JSON object {{"<class>": "<index>", ...}}')
    by_index = {}
    for name, index in data.items():
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise LayoutError(f'{path}: {name!r}: index {index!r} is not an integer') from None
        if index in by_index:
            raise LayoutError(f'{path}: {name!r} and {by_index[index]!r} have the same '
                              f'index {index}')
        by_index[index] = name
    absent = sorted(set(range(len(by_index))) - set(by_index))
    if absent:
        raise LayoutError(f'{path}: the indices of {len(by_index)} classes must be 0..'
                          f'{len(by_index) - 1}; {absent[0]} is absent')
    return [by_index[i] for i in range(len(by_index))]


def read_label_lines(path):
    """*-labels.csv of SSv1 and Jester: one class name a line, in label order."""
    classes = {}
    for number, name in read_lines(path, comments=False):
        if name in classes:
            raise LayoutError(f'{path}:{number}: {name!r} is already on line {classes[name]}')
        classes[name] = number
    if not classes:
        raise LayoutError(f'{path} names no class')
    return list(classes)


def template_class(template):
    """The class of an SSv2 entry: its template without the square brackets."""
    return template.replace('[', '').replace(']', '')


def read_sthv2_split(path, label_of, labels_path):
    """[(id, label, where)] of an SSv2 split JSON; label None when `label_of` is None (the
    test split, which has no template)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise LayoutError(f'{path}: expected a JSON list of {{"id": ..., "template": ...}}')
    rows = []
    for number, entry in enumerate(data, start=1):
        video_id = str(entry.get('id', '')).strip() if isinstance(entry, dict) else ''
        if not video_id:
            raise LayoutError(f'{path}: entry {number}: expected an object with an "id", '
                              f'got {entry!r:.80}')
        where = f'{path}: entry {number} (id {video_id})'
        if label_of is None:
            rows.append((video_id, None, where))
            continue
        template = entry.get('template')
        if not isinstance(template, str):
            raise LayoutError(f'{where}: no "template" (a test split has none: give it '
                              f'as --test)')
        rows.append((video_id, _label(label_of, template_class(template), where,
                                      labels_path), where))
    return rows


def read_20bn_csv(path, label_of, labels_path):
    """[(id, label, where)] of an SSv1 / Jester split CSV (`id;class` lines, `id` lines in
    the test split, where `label_of` is None)."""
    rows = []
    for number, text in read_lines(path, comments=False):
        where = f'{path}:{number}'
        video_id, sep, name = (part.strip() for part in text.partition(';'))
        if not video_id or (label_of is not None and not (sep and name)):
            expected = 'an id' if label_of is None else '"id;class"'
            raise LayoutError(f'{where}: expected {expected}, got {text!r}')
        label = None if label_of is None else _label(label_of, name, where, labels_path)
        rows.append((video_id, label, where))
    return rows


def _label(label_of, name, where, labels_path):
    if name not in label_of:
        raise LayoutError(f'{where}: class {name!r} is not in {labels_path}')
    return label_of[name]


def layout_20bn(args):
    """Something-Something V1/V2 and Jester: the official annotations, ROOT/<id>.webm
    (sthv2) or frame folders ROOT/<id> (sthv1, jester)."""
    sthv2 = args.layout == 'sthv2'
    classes = (read_sthv2_labels if sthv2 else read_label_lines)(args.labels)
    if getattr(args, 'label_order', 'file') == 'sorted':
        classes = sorted(classes)
    label_of = {name: i for i, name in enumerate(classes)}
    read_split = read_sthv2_split if sthv2 else read_20bn_csv
    named = {}
    for split, path in (('train', args.train), ('val', args.val), (TEST, args.test)):
        if path is not None:
            rows = read_split(path, None if split == TEST else label_of, args.labels)
            named[split] = [Video(f'{video_id}.webm' if sthv2 else video_id, label, where)
                            for video_id, label, where in rows]
    return classes, named, 0


def check_named(named):
    """LayoutError naming the file and line of a video whose path leaves ROOT (a `..`, an
    absolute path) or that is named in both train and val."""
    first = {}
    for split, videos in named.items():
        for video in videos:
            if os.path.isabs(video.path) or '..' in video.path.replace('\\', '/').split('/'):
                raise LayoutError(f'{video.where}: {video.path!r} is not a path inside ROOT')
            other, where = first.setdefault(os.path.normpath(video.path), (split, video.where))
            if other != split:
                raise LayoutError(f'{video.where}: {video.path} is in {split} and also in '
                                  f'{other} ({where})')


def check_classes(classes):
    """LayoutError naming a class that labels.txt, one stripped name a line, cannot carry."""
    for name in classes:
        reason = unlistable_reason(name) if name else 'an empty name'
        if reason:
            raise LayoutError(f'class {name!r}: {reason}; labels.txt cannot hold it, rename it')


def unreadable_reason(path):
    """None when reader.decode opens `path` and finds a frame, else why not."""
    try:
        with open_video(path) as video:
            if video.num_frames < 1:
                return 'no frame'
    except DecodeError as e:
        return e.reason
    except OSError as e:
        return f'{type(e).__name__}: {e}'
    return None


def _init_worker():
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers
    # with SIGTERM, which Paddle (imported through reader/) would report as a fatal error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def open_all(paths, workers):
    """[reason or None] of each path in order, opened in `workers` processes, with a bar."""
    bar = dict(total=len(paths), desc='opening', unit='video', disable=None)
    if workers == 1 or len(paths) < 2:
        return list(tqdm(map(unreadable_reason, paths), **bar))
    with multiprocessing.Pool(min(workers, len(paths)), initializer=_init_worker) as pool:
        reasons = list(tqdm(pool.imap(unreadable_reason, paths, chunksize=16), **bar))
        pool.close()
        pool.join()
    return reasons


def left_out(root, videos, check, workers, folders=False):
    """{path: report line} of the videos a list cannot name, absent from ROOT (as files, or
    as frame folders when `folders`) or (check) that do not open."""
    present_on_disk = os.path.isdir if folders else os.path.isfile
    lines, present = {}, {}
    for video in videos:
        if video.path in lines or video.path in present:
            continue  # named twice (in both splits, say): one check, one report line
        reason = unlistable_reason(video.path)
        if reason:
            lines[video.path] = f'unlistable: {video.path!r}: {reason}'
        elif present_on_disk(os.path.join(root, video.path)):
            present[video.path] = True
        else:
            lines[video.path] = f'missing: {video.path} ({video.where or "on disk"})'
    if check:
        present = list(present)
        reasons = open_all([os.path.join(root, path) for path in present], workers)
        for path, reason in zip(present, reasons):
            if reason is not None:
                lines[path] = f'unreadable: {path}: {reason}'
    return lines


def val_count(n, fraction):
    """Videos of a class of n that go to val: round(n x fraction) within [1, n-1]; 0 if n < 2."""
    return 0 if n < 2 else min(max(math.floor(n * fraction + 0.5), 1), n - 1)


def split_by_fraction(videos, classes, fraction, seed):
    """{'train': [...], 'val': [...]}: val_count of each class's videos drawn for val."""
    by_label = collections.defaultdict(list)
    for video in videos:
        by_label[video.label].append(video)
    splits = {split: [] for split in SPLITS}
    for label, name in enumerate(classes):
        members = sorted(by_label[label])
        # a generator of its own per class: the draw of one class does not depend on the others
        drawn = set(random.Random(f'{seed}/{name}').sample(range(len(members)),
                                                           val_count(len(members), fraction)))
        for i, video in enumerate(members):
            splits['val' if i in drawn else 'train'].append(video)
    return splits


def write_atomic(path, lines):
    """`path` holding `lines`, written under a hidden name, flushed and renamed into place."""
    with outputs.replacing(path, encoding='utf-8', flushed=True) as f:
        f.write(''.join(line + '\n' for line in lines))
    return path


def write_outputs(out, classes, splits, problems):
    """Write the files into OUT; {'train' | 'val' | 'test' | 'labels' | 'left_out': path}."""
    os.makedirs(out, exist_ok=True)
    written = {}
    for split in SPLITS:
        videos = sorted(splits[split], key=lambda v: (v.label, v.path))
        written[split] = write_atomic(os.path.join(out, f'{split}.list'),
                                      [f'{v.path} {v.label}' for v in videos])
    if TEST in splits:  # a prediction list: paths without labels
        written[TEST] = write_atomic(os.path.join(out, f'{TEST}.list'),
                                     sorted(v.path for v in splits[TEST]))
    written['labels'] = write_atomic(os.path.join(out, 'labels.txt'), classes)
    written['left_out'] = write_atomic(os.path.join(out, 'left_out.txt'),
                                       [problems[path] for path in sorted(problems)])
    return written


def warn_empty_classes(classes, splits):
    """A warning line for each class without a video in a split."""
    for split in SPLITS:
        present = {video.label for video in splits[split]}
        for label, name in enumerate(classes):
            if label not in present:
                print(f'warning: class {name!r} (label {label}) has no video in {split}',
                      file=sys.stderr)


def print_left_out(problems, left_out_file):
    """The first SHOWN report lines of each kind; {kind: count}."""
    counts = {}
    for kind in ('missing', 'unreadable', 'unlistable'):
        lines = [problems[p] for p in sorted(problems) if problems[p].startswith(kind + ':')]
        counts[kind] = len(lines)
        for line in lines[:SHOWN]:
            print(line, file=sys.stderr)
        if len(lines) > SHOWN:
            print(f'... and {len(lines) - SHOWN} more {kind}, all in {left_out_file}',
                  file=sys.stderr)
    return counts


def report(args, classes, splits, problems, unused, written):
    """Print the warnings, the videos left out and the summary; the exit status."""
    warn_empty_classes(classes, splits)
    counts = print_left_out(problems, written['left_out'])
    print('; '.join(f'{split}: {len(splits[split])} videos of '
                    f'{len({v.label for v in splits[split]})} classes' for split in SPLITS)
          + f'; {len(classes)} classes in all'
          + (f'; test: {len(splits[TEST])} videos without labels' if TEST in splits else ''))
    print(f'left out: {counts["missing"]} missing, {counts["unreadable"]} unreadable'
          + (f', {counts["unlistable"]} unlistable' if counts['unlistable'] else '')
          + ('' if args.check else ' (videos not opened: --no_check)')
          + (f'; {unused} marked 0 (in neither split)' if unused else ''))
    print('wrote ' + ', '.join(written.values()))
    flags = [f'DATA.data_root={os.path.abspath(args.root)}', f'TRAIN.filelist={written["train"]}',
             f'VALID.filelist={written["val"]}', f'TEST.filelist={written["val"]}',
             f'MODEL.num_classes={len(classes)}', f'INFER.label_file={written["labels"]}']
    print('the list paths are relative to ROOT; train with: '
          + ' '.join('-o ' + shlex.quote(flag) for flag in flags))
    if TEST in written:
        print('predict the test split with: -o ' + shlex.quote(f'INFER.filelist={written[TEST]}'))
    return 1 if problems and not args.allow_missing else 0


def parse_fraction(text):
    """--val_fraction: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f'expected a fraction in (0, 1), got {text!r}')
    return value


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('root', metavar='ROOT', help='the folder that holds the videos')
    common.add_argument('--out', required=True, help='folder of the lists and labels.txt')
    common.add_argument('--no_check', dest='check', action='store_false',
                        help='do not open every video (only check that the file exists)')
    common.add_argument('--allow_missing', action='store_true',
                        help='exit 0 even when videos are missing or unreadable')
    common.add_argument('--workers', type=int, default=usable_cores(),
                        help='processes that open the videos (default: the usable cores)')
    p = argparse.ArgumentParser(description='Write train/val lists and labels.txt of a dataset')
    layouts = p.add_subparsers(dest='layout', required=True, metavar='LAYOUT')
    folders = layouts.add_parser('folders', parents=[common], help='ROOT/<class>/<video>')
    how = folders.add_mutually_exclusive_group()
    how.add_argument('--val_fraction', type=parse_fraction, default=0.2,
                     help="of each class's videos, drawn for val (default 0.2)")
    how.add_argument('--split_files', nargs=2, metavar=('TRAIN', 'VAL'),
                     help='files naming the videos of each split, <class>/<video> lines')
    folders.add_argument('--seed', type=int, default=0, help='of the --val_fraction draw')
    for name, what in (('ucf101', 'ucfTrainTestlist'), ('hmdb51', 'testTrainMulti_7030_splits')):
        sub = layouts.add_parser(name, parents=[common], help=f'official {name} splits')
        sub.add_argument('--splits', required=True, help=f'the official split folder ({what})')
        sub.add_argument('--split', type=int, default=1, choices=(1, 2, 3), help='split number')
    kinetics = layouts.add_parser('kinetics', parents=[common], help='Kinetics annotation CSVs')
    kinetics.add_argument('--train_csv', required=True, help='train.csv')
    kinetics.add_argument('--val_csv', required=True, help='validate.csv (or val.csv)')
    for name, what, ext in (('sthv2', 'Something-Something V2', 'json'),
                            ('sthv1', 'Something-Something V1', 'csv'),
                            ('jester', 'Jester', 'csv')):
        sub = layouts.add_parser(name, parents=[common], help=f'{what} annotation files')
        sub.add_argument('--labels', required=True, help=f'*-labels.{ext}')
        sub.add_argument('--train', required=True, help=f'*-train.{ext}')
        sub.add_argument('--val', required=True, help=f'*-validation.{ext}')
        sub.add_argument('--test', help=f'*-test.{ext} (no labels): also write test.list')
        if ext == 'csv':
            sub.add_argument('--label_order', choices=('file', 'sorted'), default='file',
                             help="the labels file's order (default), or sorted names as the "
                                  "original TSM code's category.txt and its published weights")
    return p


def check_args(parser, args):
    if not os.path.isdir(args.root):
        parser.error(f'ROOT {args.root} is not a folder')
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f'--out {args.out} exists and is not a folder')
    above = os.path.abspath(args.out)  # checked now, not after every video was opened
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above) or not os.access(above, os.W_OK | os.X_OK):
        parser.error(f'--out {args.out}: no folder can be made in {above}')
    if getattr(args, 'splits', None) is not None and not os.path.isdir(args.splits):
        parser.error(f'--splits {args.splits} is not a folder')
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')


LAYOUTS = {'folders': layout_folders, 'ucf101': layout_ucf101, 'hmdb51': layout_hmdb51,
           'kinetics': layout_kinetics, 'sthv2': layout_20bn, 'sthv1': layout_20bn,
           'jester': layout_20bn}
FRAME_LAYOUTS = ('sthv1', 'jester')  # their videos are frame folders


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    try:
        classes, named, unused = LAYOUTS[args.layout](args)
        check_classes(classes)
        check_named(named)
    except LayoutError as e:
        parser.error(str(e))
    try:
        problems = left_out(args.root, [v for vs in named.values() for v in vs], args.check,
                            args.workers, args.layout in FRAME_LAYOUTS)
    except KeyboardInterrupt:
        print('interrupted: nothing written', file=sys.stderr)
        return 130  # the shell's status for a command stopped by Ctrl-C
    splits = {split: [v for v in videos if v.path not in problems]
              for split, videos in named.items()}
    if 'all' in splits:
        # drawn among the videos that open, so that a class of two readable videos has one
        # in each split
        splits = split_by_fraction(splits['all'], classes, args.val_fraction, args.seed)
    written = write_outputs(args.out, classes, splits, problems)
    return report(args, classes, splits, problems, unused, written)


if __name__ == '__main__':
    sys.exit(main())
