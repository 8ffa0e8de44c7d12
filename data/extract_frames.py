"""Decode videos once into folders of JPEG frames, so training reads JPEGs instead of decoding.

    python data/extract_frames.py --videos DIR_OR_LIST --out OUT [--data_root ROOT]
                                  [--workers N] [--short_size S] [--resize cv2|pil]
                                  [--quality Q] [--shard K/N] [--frame_template T]
    python data/extract_frames.py --videos LIST --out OUT --merge

--videos is a folder (every video below it, of reader.decode.VIDEO_EXTENSIONS) or a list file of `path label`
lines (reader.listfile; relative paths resolve against --data_root, '' = the list's folder).
Each video becomes OUT/<its path relative to the folder or root, without the extension>/
img_00001.jpg ... img_<n>.jpg (or as --frame_template names them: {:05d}.jpg as
Something-Something V1 and Jester ship frames, {:06d}.jpg as the original TSM code extracts
them; the reader finds which, or DATA.frame_template says): every frame, decoded in order by
reader.decode (never by seeking, which returns wrong frames on some files), resized so the
short side is S (0 keeps the size) with --resize's library (as DATA.resize in training) and
saved as JPEG quality Q.
reader.decode.open_video reads such a folder as a video.

Given a list file, OUT/<list name> is written too, the same lines pointing at the frame folders
(relative to OUT), so training on frames is DATA.data_root=OUT with that list as the filelist.
The list keeps every line, also those whose video failed: the set of videos stays the one
asked for, and a missing folder fails in training as the broken video would have.

On a cluster, machine K of N runs the same command with --shard K/N (K = 1..N): it extracts
videos K, K+N, K+2N, ... of the list or folder, disjoint shares that together are all of it,
into the same OUT (a shared file system, or copied together afterwards). Then --merge N writes
OUT/<list name> for the whole list, after checking that every video's frame folder is there
(it names the missing ones and the share each belongs to).

A video's frames are written into a hidden temporary folder that is renamed when complete, so
an interrupted run never leaves a partial folder that looks done; a rerun skips the finished
videos and redoes the rest. A video that cannot be extracted is reported with its path and the
others go on; the exit status is then 1, after the list of failures.
"""
import argparse
import multiprocessing
import os
import shutil
import signal
import sys

import cv2
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import outputs  # noqa: E402
from models.device import usable_cores  # noqa: E402
from reader.decode import VIDEO_EXTENSIONS, DecodeError  # noqa: E402
from reader.frames import TEMPLATES, template_problem  # noqa: E402
from reader.listfile import ListFileError, read_list  # noqa: E402
from reader.extraction import write_frames  # noqa: E402
from reader.transforms import RESIZE_LIBRARIES  # noqa: E402

FRAME_NAME = TEMPLATES[0]  # 1-based, the naming of the TSN extraction scripts

def build_parser():
    p = argparse.ArgumentParser(description='Extract the frames of videos into JPEG folders')
    p.add_argument('--videos', required=True,
                   help='a folder of videos (searched recursively) or a "path label" list file')
    p.add_argument('--out', required=True, help='folder that receives one frame folder a video')
    p.add_argument('--data_root', default='',
                   help="relative list paths resolve here; '' = the list file's folder")
    p.add_argument('--workers', type=int, default=usable_cores(),
                   help='videos extracted in parallel (default: the usable cores)')
    p.add_argument('--short_size', type=int, default=0,
                   help='resize so the short side is this; 0 keeps the size')
    p.add_argument('--resize', choices=RESIZE_LIBRARIES, default='cv2',
                   help='bilinear resizing library, as DATA.resize of the training config')
    p.add_argument('--quality', type=int, default=95, help='JPEG quality, 0-100')
    p.add_argument('--frame_template', default=FRAME_NAME,
                   help=f'frame file names, one integer field, frame 1 first (default '
                        f'{FRAME_NAME}; DATA.frame_template reads them)')
    p.add_argument('--shard', type=parse_shard, default=(1, 1), metavar='K/N',
                   help='extract only the K-th of N disjoint shares (K = 1..N): videos K, '
                        'K+N, ... of the list')
    p.add_argument('--merge', type=int, nargs='?', const=0, default=None, metavar='N',
                   help='extract nothing: write OUT/<list name> once every share is done '
                        '(N: the number of shares, to name the share of a missing video)')
    return p


def parse_shard(text):
    """'K/N' -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected K/N such as 2/4, got {text!r}') from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f'{text}: need 1 <= K <= N')
    return k, n


def shard_of(position, shard):
    """Whether the job at `position` (0-based, in list order) is in share (K, N)."""
    k, n = shard
    return position % n == k - 1


def check_args(parser, args):
    if not os.path.exists(args.videos):
        parser.error(f'--videos {args.videos} does not exist')
    if args.merge is not None and (not os.path.isfile(args.videos) or args.shard != (1, 1)):
        parser.error('--merge takes the --videos list file of the shares, and no --shard')
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')
    if args.short_size < 0:
        parser.error(f'--short_size must be >= 0, got {args.short_size}')
    if not 0 <= args.quality <= 100:
        parser.error(f'--quality must be in 0..100, got {args.quality}')
    problem = template_problem(args.frame_template)
    if problem:
        parser.error(f'--frame_template {args.frame_template!r}: {problem}')


def find_videos(folder):
    """[(video path, its path relative to `folder` without the extension, None)], sorted."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
                path = os.path.join(parent, name)
                found.append((path, os.path.splitext(os.path.relpath(path, folder))[0], None))
    return found


def listed_videos(list_path, data_root):
    """[(video path, frame folder name, label)] of a list file, in its order (label may be None)."""
    root = data_root or os.path.dirname(os.path.abspath(list_path))
    entries = []
    for path, label in read_list(list_path, data_root, require_label=False):
        name = os.path.relpath(path, root)
        if name.split(os.sep)[0] == os.pardir:
            # outside the root (absolute, or climbing out with ..): the whole path goes under
            # OUT, rather than a folder name that would escape OUT
            name = os.path.abspath(path).lstrip(os.sep)
        entries.append((path, os.path.splitext(name)[0], label))
    return entries


def unique_jobs(entries):
    """{frame folder name: video path}; ValueError when two videos would share a folder."""
    jobs, clashes = {}, []
    for path, name, _ in entries:
        if jobs.setdefault(name, path) != path:  # a.mp4 and a.avi, say; a repeated line is fine
            clashes.append(f'{jobs[name]} and {path} -> {name}')
    if clashes:
        raise ValueError('videos that would share a frame folder:\n  ' + '\n  '.join(clashes))
    return jobs


def extract_video(job):
    """Pool task (src, dest, short_size, quality, resize library, frame template) -> (src,
    frames written, error or None)."""
    src, dest, short_size, quality, library, template = job
    parent, name = os.path.split(dest)
    tmp = os.path.join(parent, f'.{name}.tmp')  # hidden, and never a finished folder's name
    try:
        shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run
        os.makedirs(tmp)
        count = write_frames(src, tmp, short_size, quality, library, template)
        os.rename(tmp, dest)  # atomic: dest exists only with every frame in it
        return src, count, None
    except Exception as e:  # any failure is this video's: report it, extract the others
        shutil.rmtree(tmp, ignore_errors=True)
        return src, 0, _describe(e, src)


def _describe(error, src):
    """The reason, without the video path that the report prints anyway."""
    if isinstance(error, DecodeError):
        return error.reason if error.path == src else str(error)
    return f'{type(error).__name__}: {error}'


def _init_worker():
    # the workers already fill the cores; OpenCV's own threads would only compete with them
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers
    # with SIGTERM, which Paddle (imported through reader/) would report as a fatal error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def extract_all(jobs, workers):
    """Run extract_video over `jobs` in a Pool with a progress bar; returns {src: error}."""
    failures = {}
    with multiprocessing.Pool(workers, initializer=_init_worker) as pool, \
            tqdm(total=len(jobs), unit='video') as bar:
        for src, _, error in pool.imap_unordered(extract_video, jobs):
            if error is not None:
                failures[src] = error
                bar.write(f'failed: {src}: {error}', file=sys.stderr)
            bar.update()
        pool.close()  # let the workers exit by themselves rather than by the terminate() of
        pool.join()   # the with-block's end
    return failures


def write_frames_list(entries, out, list_name):
    """OUT/<list_name>: each entry's frame folder (relative to OUT) and its label."""
    os.makedirs(out, exist_ok=True)  # when every video failed, nothing has made it yet
    path = os.path.join(out, list_name)
    lines = [name if label is None else f'{name} {label}' for _, name, label in entries]
    with outputs.replacing(path, encoding='utf-8') as f:  # a reader never sees half a list
        f.write(''.join(line + '\n' for line in lines))
    return path


def plan(parser, args):
    """(entries, {frame folder name: video}) to extract; parser.error on unusable input."""
    from_list = os.path.isfile(args.videos)
    try:
        entries = (listed_videos(args.videos, args.data_root) if from_list
                   else find_videos(args.videos))
        jobs = unique_jobs(entries)
    except (ListFileError, ValueError) as e:
        parser.error(str(e))
    if not jobs:
        parser.error(f'no {"/".join(VIDEO_EXTENSIONS)} videos in {args.videos}')
    frames_list = os.path.join(args.out, os.path.basename(args.videos))
    if from_list and os.path.abspath(frames_list) == os.path.abspath(args.videos):
        parser.error(f'the frames list would overwrite {args.videos}: choose another --out')
    return (entries if from_list else None), jobs


def report(extracted, skipped, failures):
    """Print the counts and the failures; the exit status."""
    print(f'videos: {extracted} extracted, {skipped} already done (skipped), '
          f'{len(failures)} failed')
    if not failures:
        return 0
    total = extracted + skipped + len(failures)
    print(f'{len(failures)} of {total} videos could not be extracted:', file=sys.stderr)
    for src in sorted(failures):
        print(f'  {src}: {failures[src]}', file=sys.stderr)
    return 1


def merge(entries, jobs, args):
    """--merge: the whole list's frames list, once every share has extracted its videos."""
    missing = [(position, name) for position, name in enumerate(jobs)
               if not os.path.isdir(os.path.join(args.out, name))]
    if missing:
        print(f'{len(missing)} of {len(jobs)} videos have no frame folder in {args.out}:',
              file=sys.stderr)
        for position, name in missing[:20]:
            share = f' (share {position % args.merge + 1}/{args.merge})' if args.merge else ''
            print(f'  {name}{share}', file=sys.stderr)
        return 1
    print(f'frames list: {write_frames_list(entries, args.out, os.path.basename(args.videos))}')
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    entries, jobs = plan(parser, args)
    if args.merge is not None:
        return merge(entries, jobs, args)
    todo = [(src, os.path.join(args.out, name), args.short_size, args.quality, args.resize,
             args.frame_template)
            for position, (name, src) in enumerate(jobs.items())
            if shard_of(position, args.shard) and not os.path.isdir(os.path.join(args.out, name))]
    try:
        failures = extract_all(todo, min(args.workers, len(todo))) if todo else {}
    except KeyboardInterrupt:
        print('interrupted: the finished videos are kept; rerun the same command to extract '
              'the others', file=sys.stderr)
        return 130  # the shell's status for a command stopped by Ctrl-C
    if entries is not None and args.shard == (1, 1):
        path = write_frames_list(entries, args.out, os.path.basename(args.videos))
        print(f'frames list: {path}')
    elif entries is not None:
        print(f'share {args.shard[0]} of {args.shard[1]} done; once every share is, write the '
              f'frames list with --merge')
    share = sum(shard_of(p, args.shard) for p in range(len(jobs)))
    return report(len(todo) - len(failures), share - len(todo), failures)


if __name__ == '__main__':
    sys.exit(main())
