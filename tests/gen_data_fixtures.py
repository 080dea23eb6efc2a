"""Writes tests/fixtures/data/: small .npy/.npz files as NumPy writes them, images written by
Pillow with the values Keras reads from them, and an image folder with Keras's own file order
and validation split. Run from the repository root with the k3 venv and Pillow:
    KERAS_BACKEND=jax PYTHONPATH=/path/to/pillow /work/venvs/k3/bin/python tests/gen_data_fixtures.py
"""
import os
import shutil

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np
from PIL import Image
import keras
from keras.src.utils import dataset_utils, image_dataset_utils, image_utils

OUT = "tests/fixtures/data"
os.makedirs(OUT, exist_ok=True)
rng = np.random.RandomState(7)

# ---- .npy / .npz ----
np.save(f"{OUT}/x_f4.npy", np.arange(12, dtype="<f4").reshape(4, 3) / 4)
np.save(f"{OUT}/x_f8_be.npy", (np.arange(12, dtype=">f8").reshape(4, 3) - 5) / 8)
np.save(f"{OUT}/x_u1.npy", np.arange(4 * 2 * 3, dtype="u1").reshape(4, 2, 3) * 10)
np.save(f"{OUT}/x_i8.npy", np.array([[1, -2], [3, 4], [5, 6], [70000, 8]], dtype="<i8"))
np.save(f"{OUT}/y_i8.npy", np.array([2, 0, 1, 2], dtype="<i8"))
np.save(f"{OUT}/y_i4_5.npy", np.array([0, 1, 0, 1, 1], dtype="<i4"))
np.save(f"{OUT}/y_f4_2d.npy", np.array([[0.5, 1], [1.5, 2], [2.5, 3], [3.5, 4]], dtype="<f4"))
np.save(f"{OUT}/fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
np.save(f"{OUT}/bool.npy", np.array([True, False]))
np.save(f"{OUT}/f2.npy", np.zeros(3, dtype="<f2"))
np.savez_compressed(f"{OUT}/xy_deflated.npz", x=np.arange(6, dtype="<f4").reshape(3, 2),
                    y=np.array([1, 0, 3], dtype="<i8"))
np.savez(f"{OUT}/train_test.npz", x_train=np.arange(8, dtype="u1").reshape(4, 2),
         y_train=np.array([0, 1, 1, 0], dtype="<i4"),
         x_test=np.arange(4, dtype="u1").reshape(2, 2) + 100, y_test=np.array([1, 1], dtype="<i4"))

# ---- single images: the file, and what Keras reads from it ----
def smooth(h, w, c):
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [(xx * 37 + yy * 11 + k * 60) % 256 for k in range(c)]
    return np.stack(planes, -1).astype("uint8")

imgs = {
    "rgb.png": Image.fromarray(rng.randint(0, 256, (5, 7, 3), dtype="uint8"), "RGB"),
    "rgba.png": Image.fromarray(rng.randint(0, 256, (4, 3, 4), dtype="uint8"), "RGBA"),
    "gray.png": Image.fromarray(rng.randint(0, 256, (6, 4), dtype="uint8"), "L"),
    "photo.jpg": Image.fromarray(smooth(16, 16, 3), "RGB"),
    "gray.pgm": Image.fromarray(rng.randint(0, 256, (3, 5), dtype="uint8"), "L"),
    "rgb.ppm": Image.fromarray(rng.randint(0, 256, (3, 2, 3), dtype="uint8"), "RGB"),
    "rgb.bmp": Image.fromarray(rng.randint(0, 256, (3, 5, 3), dtype="uint8"), "RGB"),
    "gray.bmp": Image.fromarray(rng.randint(0, 256, (4, 3), dtype="uint8"), "L"),
    "palette.bmp": Image.fromarray(rng.randint(0, 256, (2, 6, 3), dtype="uint8"), "RGB").quantize(5),
}
with open(f"{OUT}/images_expected.txt", "w") as f:
    f.write("# file mode height width channels values... (PIL load_img; resize: keras.ops.image.resize "
            "bilinear, antialias=False, of the rgb image to 4x5, as image_dataset_from_directory)\n")
    for name, im in imgs.items():
        if name.endswith(".jpg"):
            im.save(f"{OUT}/{name}", quality=90)
        else:
            im.save(f"{OUT}/{name}")
        for mode in ("rgb", "grayscale"):
            a = image_utils.img_to_array(image_utils.load_img(f"{OUT}/{name}", color_mode=mode))
            f.write(f"{name} {mode} {a.shape[0]} {a.shape[1]} {a.shape[2]} "
                    + " ".join(str(int(v)) for v in a.ravel()) + "\n")
        a = image_utils.img_to_array(image_utils.load_img(f"{OUT}/{name}", color_mode="rgb"))
        r = np.asarray(keras.ops.image.resize(a, (4, 5), interpolation="bilinear", antialias=False))
        f.write(f"{name} resize {r.shape[0]} {r.shape[1]} {r.shape[2]} "
                + " ".join(f"{v:.4f}" for v in r.ravel()) + "\n")

# a file that will not decode
with open(f"{OUT}/broken.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)

# ---- an image folder: Keras's order and split ----
top = f"{OUT}/folder"
shutil.rmtree(top, ignore_errors=True)
files = ["cat/b.png", "cat/a.png", "cat/sub/c.png", "cat/Z.PNG", "dog/x.jpg", "dog/notes.txt",
         "dog/y.png", "ant/q.png", "ant/p.png", "ant/.hidden/h.png", "dog/w.png", "cat/d.png"]
for i, rel in enumerate(files):
    p = f"{top}/{rel}"
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if rel.endswith(".txt"):
        open(p, "w").write("not an image")
        continue
    arr = np.full((3, 2, 3), i * 20, dtype="uint8")
    arr[0, 0] = (i, 255 - i, 7)
    Image.fromarray(arr, "RGB").save(p, format="JPEG" if rel.endswith(".jpg") else "PNG",
                                     **({"quality": 95} if rel.endswith(".jpg") else {}))
os.makedirs(f"{top}/.hiddenclass", exist_ok=True)
with open(f"{OUT}/folder_expected.txt", "w") as f:
    f.write("# seed shuffle split subset : relative paths in order, then labels "
            "(dataset_utils.index_directory + get_training_or_validation_split)\n")
    for seed, shuffle, split, subset in [(1337, True, 0, None), (0, False, 0, None),
                                         (42, True, 0.25, "training"), (42, True, 0.25, "validation"),
                                         (5, True, 0.5, "validation")]:
        paths, labels, names = dataset_utils.index_directory(
            top, "inferred", formats=image_dataset_utils.ALLOWLIST_FORMATS, shuffle=shuffle, seed=seed)
        paths, labels = dataset_utils.get_training_or_validation_split(paths, labels, split or None, subset)
        rel = [os.path.relpath(p, top) for p in paths]
        f.write(f"{seed} {int(shuffle)} {split} {subset or '-'} : {' '.join(rel)} : "
                f"{' '.join(str(int(l)) for l in labels)}\n")
    f.write("# classes: " + " ".join(names) + "\n")
print("wrote", OUT)
