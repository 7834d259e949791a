#!/usr/bin/python3
"""Makes the TorchScript fixture of tests/test_network.cpp (run with Debian's /usr/bin/python3,
python3-torch 1.13; deterministic for the seeds below).

Writes, next to this script:
  epoch_0.pt, epoch_3.pt   a tiny seeded CNN for 1x8x8 inputs (torch.jit.save), at initialisation
                           and after three "epochs" of SGD steps on random images
  expected.json            for a fixed 8x8 image and label, two player layouts, the masked inputs
                           x_S of all 2^n subsets and v(x_S) of each checkpoint with gt-log-odds
                           and gt-log-odds-v0, computed here in PyTorch/numpy.

Conventions (DESIGN.md section 1): subset index S, bit i = player i; x_S keeps the players in S
and sets the others (and a "baseline" background) to the baseline; v is computed in float64 from
the float32 logits: p = softmax(logits)[y] (max-subtracted), v = log(p / (1 - p + 1e-7) + 1e-7).
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
H = W = 8
CLASSES = 3
LABEL = 1


class TinyCnn(torch.nn.Module):
    """conv 3x3 (1 -> 4, pad 1), ReLU, max-pool 2, fc 64 -> 6, ReLU, fc 6 -> 3 (451 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = torch.nn.Linear(64, 6)
        self.fc2 = torch.nn.Linear(6, CLASSES)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


def cell_slices(r, c, rows=2, cols=2):
    """Rows and columns of grid cell (r, c): [floor(r*H/R), floor((r+1)*H/R)) (DESIGN 6.1)."""
    return (slice(r * H // rows, (r + 1) * H // rows), slice(c * W // cols, (c + 1) * W // cols))


def layouts():
    """Two layouts over the 2x2 grid of 4x4 cells.

    grid2x2: players 0..3 = cells 0..3 (row-major), zero baseline (background: none left).
    cells013_bg: players 0, 1, 2 = cells 0, 1, 3; cell 2 is background set to the baseline;
                 constant baseline 0.25.
    """
    out = []
    for name, cells, baseline in (("grid2x2", [0, 1, 2, 3], 0.0), ("cells013_bg", [0, 1, 3], 0.25)):
        owner = np.full((H, W), -2, dtype=np.int32)  # kAlwaysBaseline outside the chosen cells
        for player, cell in enumerate(cells):
            owner[cell_slices(cell // 2, cell % 2)] = player
        out.append(dict(name=name, cells=cells, n=len(cells),
                        baseline_value=baseline,
                        owner=owner.reshape(-1),
                        baseline=np.full(H * W, baseline, dtype=np.float32)))
    return out


def masked_inputs(image, layout):
    """[2^n, 1, 8, 8] float32: x_S built cell by cell (independent of the C++ tensor code)."""
    n = layout["n"]
    base = torch.full((1, H, W), layout["baseline_value"], dtype=torch.float32)
    xs = []
    for s in range(1 << n):
        x = base.clone()  # background and absent players: baseline
        for player, cell in enumerate(layout["cells"]):
            if (s >> player) & 1:
                rs, cs = cell_slices(cell // 2, cell % 2)
                x[0, rs, cs] = image[0, rs, cs]
        xs.append(x)
    return torch.stack(xs)


def log_odds(logits, y):
    """gt-log-odds in float64 from float32 logits [B, classes]."""
    l = logits.detach().numpy().astype(np.float64)
    m = l.max(axis=1, keepdims=True)
    e = np.exp(l - m)
    p = e[:, y] / e.sum(axis=1)
    return np.log(p / (1.0 - p + 1e-7) + 1e-7)


def main():
    torch.manual_seed(20260101)
    model = TinyCnn()
    model.eval()
    checkpoints = {}
    torch.jit.save(torch.jit.script(model), os.path.join(HERE, "epoch_0.pt"))
    checkpoints["epoch_0.pt"] = torch.jit.load(os.path.join(HERE, "epoch_0.pt"))

    # Three "epochs" of 16 SGD steps (batch 16) on random images whose label is the brightest of
    # the quadrants 0, 1, 3 (so that the trained model reacts to the cells).
    gen = torch.Generator().manual_seed(7)
    data = torch.rand(256, 1, H, W, generator=gen)
    quadrant_means = torch.stack(
        [data[:, 0, cell_slices(q // 2, q % 2)[0], cell_slices(q // 2, q % 2)[1]].mean((1, 2))
         for q in (0, 1, 3)], 1)
    labels = quadrant_means.argmax(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    model.train()
    for epoch in range(3):
        for step in range(16):
            xb, yb = data[step * 16:(step + 1) * 16], labels[step * 16:(step + 1) * 16]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    model.eval()
    torch.jit.save(torch.jit.script(model), os.path.join(HERE, "epoch_3.pt"))
    checkpoints["epoch_3.pt"] = torch.jit.load(os.path.join(HERE, "epoch_3.pt"))

    # A fixed image: bytes / 255 (exact in float32 and in the JSON's decimal repr).
    rng = np.random.default_rng(11)
    image_bytes = rng.integers(0, 256, size=(1, H, W))
    image = torch.tensor(image_bytes / 255.0, dtype=torch.float32)

    expected = dict(
        description="expected masked inputs and gt-log-odds of epoch_0.pt, epoch_3.pt "
                    "(made by make_fixture.py)",
        torch_version=torch.__version__,
        shape=[1, H, W],
        classes=CLASSES,
        label=LABEL,
        subset_index="bit i = player i",
        image=[float(v) for v in image.reshape(-1)],
        layouts=[])
    for layout in layouts():
        xs = masked_inputs(image, layout)
        entry = dict(name=layout["name"], n=layout["n"], cells=layout["cells"],
                     baseline_value=layout["baseline_value"],
                     owner=[int(o) for o in layout["owner"]],
                     masked_inputs=[[float(v) for v in x.reshape(-1)] for x in xs],
                     values={})
        for name, module in checkpoints.items():
            with torch.no_grad():
                logits = module(xs)
            assert logits.dtype == torch.float32
            v = log_odds(logits, LABEL)
            entry["values"][name] = {
                "logits": [[float(a) for a in row] for row in logits],
                "gt-log-odds": [float(a) for a in v],
                "gt-log-odds-v0": [float(a) for a in (v - v[0])],
            }
        expected["layouts"].append(entry)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
