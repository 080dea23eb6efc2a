"""kerac's loaders side by side with NumPy's, alternating in one run (bench/load.c writes the files).

    python3 bench/compare_numpy_load.py [--rounds 5] [--bench build/bench_load] [--mnist DIR]
                                        [--tmp DIR | --dir DIR] [--no-png]

First build/bench_load --write fills a temporary folder (never the repository): a (60000, 1000)
float32 .npy (240 MB), the same as uint8, an uncompressed (60000, 4000) uint8 IDX (240 MB) and
MNIST's 60,000 training images as PNGs (one subfolder per digit). Then each round runs
build/bench_load --rounds 1 (one warm-up and one timed load per case, with plain read()s beside
them) and, in this process, NumPy on the same files:
    npy_float32, npy_uint8   np.load(path)
    idx                      np.fromfile(path, np.uint8, offset=header).reshape(dims)
    idx_gz                   np.frombuffer(gzip.open(MNIST's train-images .gz).read(), offset=16)
    png                      PIL: np.stack of np.asarray(Image.open(p).convert("L")) for the
                             60,000 files in one process (Keras has no PNG folder loader without
                             TensorFlow), when Pillow is importable; kerac on 1 thread and on all
Prints each round's lines, then one summary JSON line per case: both medians and the ratio
numpy_s / kerac_s (above 1: kerac is faster). The temporary folder is removed at the end
(--dir DIR: that folder instead, kept).
"""
import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numpy_case(case, d, gz):
    t0 = time.perf_counter()
    if case == "npy_float32":
        a = np.load(os.path.join(d, "float32.npy"))
    elif case == "npy_uint8":
        a = np.load(os.path.join(d, "uint8.npy"))
    elif case == "idx":
        path = os.path.join(d, "raw.idx")
        with open(path, "rb") as f:
            head = f.read(4)
            rank = head[3]
            dims = [int.from_bytes(f.read(4), "big") for _ in range(rank)]
        a = np.fromfile(path, np.uint8, offset=4 + 4 * rank).reshape(dims)
    elif case == "idx_gz":
        with gzip.open(gz, "rb") as f:
            a = np.frombuffer(f.read(), np.uint8, offset=16).reshape(60000, 28, 28)
    t = time.perf_counter() - t0
    del a
    return t


def pil_folder(paths):
    from PIL import Image

    t0 = time.perf_counter()
    x = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
    t = time.perf_counter() - t0
    assert x.shape == (len(paths), 28, 28)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench_load"))
    ap.add_argument("--mnist", default=None, help="MNIST's IDX .gz folder ($KERAC_DATA/mnist)")
    ap.add_argument("--tmp", default=None, help="where the temporary folder goes ($TMPDIR)")
    ap.add_argument("--dir", default=None, help="use (and fill) DIR and keep it: the PNGs take a "
                    "minute to write (each one fsynced)")
    ap.add_argument("--no-png", action="store_true")
    a = ap.parse_args()
    mnist = a.mnist or os.path.join(os.environ.get("KERAC_DATA", ""), "mnist")
    gz = os.path.join(mnist, "train-images-idx3-ubyte.gz")
    try:
        import PIL

        pil = PIL.__version__
    except ImportError:
        pil = None
    png = not a.no_png
    cases = ["npy_float32", "npy_uint8", "idx", "idx_gz"] + (["png"] if png else [])
    d = a.dir or tempfile.mkdtemp(prefix="kerac_load_", dir=a.tmp)
    try:
        base = [a.bench, "--dir", d, "--keep", "--mnist", mnist, "--cases", ",".join(cases)]
        subprocess.run(base + ["--write"], check=True, stdout=subprocess.DEVNULL)
        paths = []
        if png:
            for digit in sorted(os.listdir(os.path.join(d, "png"))):
                sub = os.path.join(d, "png", digit)
                paths += [os.path.join(sub, f) for f in sorted(os.listdir(sub))]
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0],
                          "pillow": pil or "not importable: no PNG reference",
                          "rounds": a.rounds, "cpus": os.cpu_count()}), flush=True)
        for case in cases[:4]:  # NumPy's warm-up
            numpy_case(case, d, gz)
        if png and pil:
            pil_folder(paths[:1000])
        kerac, numpy_t, reads = {}, {}, {}
        for r in range(a.rounds):
            out = subprocess.run(base + ["--rounds", "1"], check=True, capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                j = json.loads(line)
                if j["case"] == "png_folder":
                    kerac.setdefault("png_1", []).append(j["threads_1_s"])
                    kerac.setdefault("png_all", []).append(j["threads_all_s"])
                    reads.setdefault("png", []).append(j["read_files_s"])
                    reads.setdefault("png_cores", []).append(j["threads_all_cores_used"])
                    threads = j["threads"]
                else:
                    kerac.setdefault(j["case"], []).append(j["kerac_s"])
                    reads.setdefault(j["case"], []).append((j["read_s"], j["file_bytes"],
                                                            j["array_bytes"]))
            row = {"round": r + 1}
            for case in cases[:4]:
                t = numpy_case(case, d, gz)
                numpy_t.setdefault(case, []).append(t)
                row[case] = {"kerac_s": round(kerac[case][-1], 5), "numpy_s": round(t, 5)}
            if png:
                row["png"] = {"kerac_1_thread_s": round(kerac["png_1"][-1], 4),
                              "kerac_all_s": round(kerac["png_all"][-1], 4)}
                if pil:
                    t = pil_folder(paths)
                    numpy_t.setdefault("png", []).append(t)
                    row["png"]["pil_s"] = round(t, 4)
            print(json.dumps(row), flush=True)
        med = statistics.median
        for case in cases[:4]:
            k, n = med(kerac[case]), med(numpy_t[case])
            rd = med(x[0] for x in reads[case])
            fb, ab = reads[case][0][1], reads[case][0][2]
            s = {"summary": case, "rounds": a.rounds, "kerac_s": round(k, 5),
                 "numpy_s": round(n, 5), "numpy_over_kerac": round(n / k, 3),
                 "read_s": round(rd, 5), "kerac_over_read": round(k / rd, 3),
                 "numpy_over_read": round(n / rd, 3)}
            if case == "idx_gz":
                s.update(kerac_output_mb_per_s=round(ab / k / 1e6, 1),
                         numpy_output_mb_per_s=round(ab / n / 1e6, 1))
            else:
                s.update(kerac_gb_per_s=round(fb / k / 1e9, 3), numpy_gb_per_s=round(fb / n / 1e9, 3),
                         read_gb_per_s=round(fb / rd / 1e9, 3))
            print(json.dumps(s), flush=True)
        if png:
            k1, kn = med(kerac["png_1"]), med(kerac["png_all"])
            s = {"summary": "png_folder", "images": 60000, "rounds": a.rounds,
                 "kerac_1_thread_s": round(k1, 4), "kerac_1_thread_images_per_s": round(60000 / k1),
                 "kerac_threads": threads, "kerac_all_s": round(kn, 4),
                 "kerac_all_images_per_s": round(60000 / kn), "speedup": round(k1 / kn, 3),
                 "kerac_all_cores_used": round(med(reads["png_cores"]), 2),
                 "read_files_s": round(med(reads["png"]), 4)}
            if pil:
                p = med(numpy_t["png"])
                s.update(pil_s=round(p, 4), pil_images_per_s=round(60000 / p),
                         pil_over_kerac_1_thread=round(p / k1, 3), pil_over_kerac_all=round(p / kn, 3))
            else:
                s["pil"] = "Pillow not importable: no reference"
            print(json.dumps(s), flush=True)
    finally:
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
