#!/usr/bin/python3
"""PyTorch forward+backward on engine_bench's models, for a time ratio.

Same models (jobs/train_mlp.yaml, train_cnn.yaml, train_resnet.yaml), batch and step as bench/engine_bench.c (forward, mean
cross-entropy, backward to every parameter), float32, eager mode, best of
repeats. Prints one line per model: "torch <model> batch <N>: <ms> ms/step".
usage: torch_engine_bench.py [batch] [seconds] [threads]
"""
import sys
import time

import torch
from torch import nn

N = int(sys.argv[1]) if len(sys.argv) > 1 else 256
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
torch.manual_seed(0)
models = {
    "mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 10)), (N, 784)),
    "cnn": (nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)),
            (N, 1, 28, 28)),
}


class ResCNN(nn.Module):
    """jobs/train_resnet.yaml's CNN."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.body = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(32, 32, 3, padding=1))
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(1568, 64), nn.ReLU(),
                                  nn.Linear(64, 10))

    def forward(self, x):
        h = self.stem(x)
        return self.head(h + self.body(h))


models["resnet"] = (ResCNN(), (N, 1, 28, 28))
for name, (model, shape) in models.items():
    x = torch.rand(*shape)
    y = torch.arange(N) % 10
    best, steps, t_end = 1e30, 0, time.perf_counter() + secs
    while time.perf_counter() < t_end or steps < 3:
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=False)
        nn.functional.cross_entropy(model(x), y).backward()
        best = min(best, time.perf_counter() - t0)
        steps += 1
    print(f"torch {name} batch {N}: {best * 1e3:.2f} ms/step")
