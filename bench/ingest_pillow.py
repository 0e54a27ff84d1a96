#!/usr/bin/python3
"""Reference for data.DecodeFile's speed: decode a folder's JPEGs with Pillow.

Run with Debian's interpreter (python3-pil):

    /usr/bin/python3 bench/ingest_pillow.py /usr/share/backgrounds/mate/nature --size 64 --workers 2

Each JPEG is decoded in full (no draft mode, as Go's image/jpeg cannot
decode at reduced scale; --draft lets libjpeg do it, for comparison), turned
upright by its EXIF orientation, converted to RGB, and resized as
data.ResizeCrop does: the centre square (the shorter side) is resized to
size×size with Image.BILINEAR and reducing_gap=2.0, i.e. first averaged over
integer blocks when it shrinks by 4× or more, then the antialiased triangle
filter. Prints {"images": N, "seconds": S, "images_per_s": R}; --repeat
takes the best of several passes (the first also warms the page cache).
"""

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

from PIL import Image, ImageOps

SIZE = 64
DRAFT = False


def init(size, draft):
    global SIZE, DRAFT
    SIZE, DRAFT = size, draft


def convert(path):
    with Image.open(path) as im:
        if DRAFT:
            im.draft("RGB", (SIZE * 2, SIZE * 2))
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        w, h = im.size
        m = min(w, h)
        left, top = (w - m) // 2, (h - m) // 2
        im = im.resize((SIZE, SIZE), Image.BILINEAR, box=(left, top, left + m, top + m), reducing_gap=2.0)
        return len(im.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--draft", action="store_true", help="let libjpeg decode at reduced scale (DCT scaling)")
    a = ap.parse_args()
    paths = sorted(
        os.path.join(d, f)
        for d, _, fs in os.walk(a.folder)
        for f in fs
        if f.lower().endswith((".jpg", ".jpeg"))
    )
    if not paths:
        sys.exit("no JPEG files in " + a.folder)
    best = None
    with Pool(a.workers, initializer=init, initargs=(a.size, a.draft)) as pool:
        for _ in range(a.repeat):
            t = time.perf_counter()
            n = pool.map(convert, paths, chunksize=1)
            s = time.perf_counter() - t
            assert all(x == a.size * a.size * 3 for x in n)
            best = s if best is None else min(best, s)
    print(json.dumps({"images": len(paths), "seconds": round(best, 4), "images_per_s": round(len(paths) / best, 2)}))


if __name__ == "__main__":
    main()
