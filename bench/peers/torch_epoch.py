"""PyTorch's side of `cargo bench -p nas-bench --bench train_epoch`: one
epoch of the same network (nas-host's network JSON, compiled here to torch
modules op by op), on the same Fashion-MNIST split sizes, Adam at 1e-3,
on the CPU with 2 threads or on a GPU with the data resident there. Prints
one JSON line: training seconds, validation pass seconds, validation
accuracy.

    python3 -m venv pt && pt/bin/pip install torch numpy
    NAS_BENCH_PYTHON=pt/bin/python cargo bench -p nas-bench --bench train_epoch

(The bench calls this script itself when NAS_BENCH_PYTHON is set:
`torch_epoch.py NETWORK.json BATCH DEVICE SUBSET`, DEVICE `cpu:0` or
`cuda:N`, SUBSET a number of images or `all`; the files are read from
$NAS_BENCH_FASHION_MNIST, by default Debian's folder.)
"""

import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from torch_graph import Graph

D = os.environ.get("NAS_BENCH_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    network = json.load(open(sys.argv[1]))
    batch = int(sys.argv[2])
    device = torch.device(sys.argv[3])
    subset = None if sys.argv[4] == "all" else int(sys.argv[4])
    gpu = device.type == "cuda"
    if not gpu:
        torch.set_num_threads(2)
    torch.manual_seed(1)
    x = torch.tensor(idx(f"{D}/train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255.0
    y = torch.tensor(idx(f"{D}/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    if subset:
        x, y = x[:subset], y[:subset]
    x = (x - x.mean()) / x.std()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    ntr = int(0.8 * len(x))
    tr, va = perm[:ntr], perm[ntr:]
    x, y, tr, va = x.to(device), y.to(device), tr.to(device), va.to(device)
    model = Graph(network, 1, 28, 28).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    lossf = nn.CrossEntropyLoss()
    model.train()
    start = time.time()
    p = tr[torch.randperm(len(tr), device=device)]
    for i in range(0, len(p), batch):
        b = p[i : i + batch]
        opt.zero_grad()
        loss = lossf(model(x[b]), y[b])
        loss.backward()
        opt.step()
        # nas-host reads each batch's loss (for its divergence check and
        # progress), which waits for the step; so does this.
        loss.item()
    if gpu:
        torch.cuda.synchronize()
    train_s = time.time() - start
    model.eval()
    start = time.time()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(va), 500):
            b = va[i : i + 500]
            correct += (model(x[b]).argmax(1) == y[b]).sum().item()
    val_s = time.time() - start
    where = torch.cuda.get_device_name(device) if gpu else f"{torch.get_num_threads()} threads"
    print(json.dumps({"torch": torch.__version__, "where": where, "train_s": train_s, "val_s": val_s, "val_acc": correct / len(va)}))


if __name__ == "__main__":
    main()
