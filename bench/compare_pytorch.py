#!/usr/bin/env python3
"""Side by side: kerac against PyTorch on the CPU, the seed's two-hidden MNIST network
(--model mlp) or keras.io's simple MNIST convnet (--model convnet).

Same network (784-512-512-10, relu, dropout 0.2, softmax / cross-entropy), same batch (128),
same optimizer (RMSprop, lr 0.001, rho 0.9, eps 1e-7), same thread count, the same 60,000
images shuffled every epoch. Runs alternate (kerac, PyTorch, kerac, PyTorch, ...) in one
invocation so that both see the same machine. The convnet: Conv2D(32, 3, relu),
MaxPooling2D(2), Conv2D(64, 3, relu), MaxPooling2D(2), Flatten, Dropout(0.5), Dense(10,
softmax), Adam (lr 0.001, eps 1e-7), batch 128, on the first 54,000 images (what
validation_split 0.1 trains on); PyTorch in its native NCHW layout.
 each run's seconds per epoch is the median of
its epochs; the script prints one JSON line per run and a summary line with the medians and
the ratio. PyTorch gets its most favourable setup: the images converted to one float32 tensor
up front (kerac keeps them as uint8 and converts each batch).

    pip install torch numpy
    make build/bench
    KERAC_DATA=../shared/datasets python3 bench/compare_pytorch.py --threads 2 --rounds 3
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def read_idx(path):
    """IDX (gzip or raw) into a numpy array: magic, type 0x08, rank, big-endian dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def find(directory, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"compare_pytorch: {name} not found in {directory}")


def torch_run(x_train, y_train, epochs, threads, seed, model_name):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    nn = torch.nn
    if model_name == "convnet":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)
        x_train, y_train = x_train[:54000], y_train[:54000]
        shape = (-1, 1, 28, 28)
    else:
        model = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 10),
        )
        # Keras's RMSprop defaults (PyTorch puts eps outside the square root: same work)
        opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
        shape = (-1, 784)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(x_train.reshape(shape).astype(np.float32) / 255.0)
    y = torch.from_numpy(y_train.astype(np.int64))
    n = x.shape[0]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        model.train()
        total = 0.0
        for i in range(0, n, 128):
            idx = order[i : i + 128]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        seconds.append(time.perf_counter() - start)
    return {"framework": "pytorch", "model": model_name, "version": torch.__version__, "threads": threads,
            "epochs": epochs, "sec_per_epoch": round(statistics.median(seconds), 4),
            "final_loss": round(total / n, 4)}


def kerac_run(bench, epochs, threads, data_dir, model_name):
    out = subprocess.run([bench, "--model", model_name, "--epochs", str(epochs), "--threads",
                          str(threads), "--no-peak", "--data", data_dir],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"framework": "kerac", "model": model_name, "gemm": result["gemm"], "threads": threads, "epochs": epochs,
            "sec_per_epoch": result["sec_per_epoch"], "final_loss": result["final_loss"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "convnet"], default="mlp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run")
    parser.add_argument("--rounds", type=int, default=3, help="kerac/PyTorch pairs")
    parser.add_argument("--bench", default="build/bench")
    parser.add_argument("--data", default=None, help="directory with the MNIST IDX files")
    args = parser.parse_args()
    data_dir = args.data or os.path.join(os.environ.get("KERAC_DATA", "../shared/datasets"), "mnist")
    x_train = read_idx(find(data_dir, "train-images-idx3-ubyte"))
    y_train = read_idx(find(data_dir, "train-labels-idx1-ubyte"))

    runs = {"kerac": [], "pytorch": []}
    for r in range(args.rounds):
        for framework in ("kerac", "pytorch"):
            if framework == "kerac":
                result = kerac_run(args.bench, args.epochs, args.threads, data_dir, args.model)
            else:
                result = torch_run(x_train, y_train, args.epochs, args.threads, r, args.model)
            result["round"] = r + 1
            print(json.dumps(result), flush=True)
            runs[framework].append(result["sec_per_epoch"])
    kerac, torch_sec = statistics.median(runs["kerac"]), statistics.median(runs["pytorch"])
    print(json.dumps({"summary": "median sec_per_epoch", "model": args.model,
                      "threads": args.threads,
                      "kerac": kerac, "pytorch": torch_sec,
                      "pytorch_over_kerac": round(torch_sec / kerac, 2)}))


if __name__ == "__main__":
    main()
