"""A video's frames written as JPEG files, the folders the frame reader (reader/frames.py)
reads; data/extract_frames.py runs it over a dataset, the benchmarks on their own video."""
import os

import cv2

from .decode import open_video
from .frames import TEMPLATES
from .transforms import resize_short


def write_frames(src, folder, short_size, quality, library, template=TEMPLATES[0]):
    """Decode every frame of `src` into `folder` as JPEGs named by `template`; returns the
    frame count."""
    count = 0
    with open_video(src) as video:
        for frame in video.iter_frames():
            if short_size:
                # the training transform's own resize: with DATA.resize's library, frames
                # resized here equal the ones training would resize from the video, and then
                # it leaves them alone
                frame = resize_short(frame[None], short_size, library)[0]
            count += 1
            path = os.path.join(folder, template.format(count))
            if not cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise OSError(f'OpenCV cannot write {path}')
    return count
