#!/usr/bin/env python3
"""Side by side: kerac's recurrent layers against PyTorch's nn.LSTM / nn.GRU / nn.RNN on the
CPU, training step time of the classifier on MNIST rows: 28 steps of 28 pixels, batch 128,
<cell>(128) -> Dense(10) softmax / cross-entropy, Adam (lr 0.001).

Both run on the same thread count (default 2). Rounds alternate (kerac, PyTorch, kerac,
PyTorch, ...) in one invocation, so both see the same machine; each round's figure is the
median step over --steps steps after 3 warm-up steps (kerac: build/bench_rnn, one process per
round; PyTorch: in this process, its peak memory measured in a child). The summary line gives
the medians over rounds, the ratio (PyTorch / kerac) and each side's peak resident memory;
and the floor: the step's arithmetic (multiply-adds x 2) at the float32 product rate that
kerac's kernels reach on 2048^3 products on the same threads, measured once per round; no
float32 implementation of the step beats it, so PyTorch / floor bounds any ratio.

    make build/bench_rnn
    /work/venvs/torch/bin/python bench/compare_pytorch_rnn.py --threads 2 --rounds 3
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def torch_round(cell, steps, threads, units=128, batch=128):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[cell]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn_cls(28, units, batch_first=True)
            self.out = torch.nn.Linear(units, 10)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.out(y[:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((batch, 28, 28), dtype=np.float32))
    y = torch.from_numpy(np.arange(batch) % 10)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--cells", default="lstm,gru,simple_rnn")
    ap.add_argument("--kerac", default="build/bench_rnn")
    ap.add_argument("--torch-child", default=None)
    args = ap.parse_args()
    if args.torch_child:  # one PyTorch round in its own process: its peak memory is its own
        ms = torch_round(args.torch_child, args.steps, args.threads)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        import torch

        print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "cell": args.torch_child,
                          "median_step_ms": round(ms, 3), "peak_rss_mb": round(rss, 1)}))
        return
    # torch is imported by the children only: a process's peak memory survives exec, so the
    # parent stays small for both sides' figures
    results = {}
    peaks = []
    for r in range(args.rounds):
        # the machine's float32 product rate on these threads, in the same alternation: the
        # floor of a step is its arithmetic at that rate
        pk = subprocess.run([args.kerac, "--cell", "none", "--peak", "--threads",
                             str(args.threads)], check=True, capture_output=True, text=True).stdout
        pj = json.loads(pk.strip().splitlines()[-1])
        print(json.dumps({"round": r, **pj}))
        peaks.append(pj["gemm_peak_gflops"])
        for cell in args.cells.split(","):
            k = subprocess.run([args.kerac, "--cell", cell, "--steps", str(args.steps),
                                "--threads", str(args.threads)],
                               check=True, capture_output=True, text=True).stdout
            kj = json.loads(k.strip().splitlines()[-1])
            t = subprocess.run([sys.executable, __file__, "--torch-child", cell, "--steps",
                                str(args.steps), "--threads", str(args.threads)],
                               check=True, capture_output=True, text=True).stdout
            tj = json.loads(t.strip().splitlines()[-1])
            print(json.dumps({"round": r, **kj}))
            print(json.dumps({"round": r, **tj}))
            sys.stdout.flush()
            results.setdefault(cell, {"kerac": [], "pytorch": [], "kmem": [], "tmem": [],
                                      "torch": tj["torch"], "gflop": kj["step_gflop"]})
            results[cell]["kerac"].append(kj["median_step_ms"])
            results[cell]["pytorch"].append(tj["median_step_ms"])
            results[cell]["kmem"].append(kj["peak_rss_mb"])
            results[cell]["tmem"].append(tj["peak_rss_mb"])
    for cell, v in results.items():
        k, t = statistics.median(v["kerac"]), statistics.median(v["pytorch"])
        peak = statistics.median(peaks)
        floor = 1e3 * v["gflop"] / peak
        print(json.dumps({"summary": cell, "threads": args.threads, "torch": v["torch"],
                          "kerac_median_step_ms": k, "pytorch_median_step_ms": t,
                          "ratio_pytorch_over_kerac": round(t / k, 2),
                          "step_gflop": v["gflop"], "gemm_peak_gflops": peak,
                          "floor_step_ms": round(floor, 3),
                          "kerac_share_of_peak": round(floor / k, 2),
                          "best_possible_ratio": round(t / floor, 2),
                          "kerac_peak_rss_mb": max(v["kmem"]),
                          "pytorch_peak_rss_mb": max(v["tmem"])}))


if __name__ == "__main__":
    main()
