#!/usr/bin/python3
"""Training throughput of Patchwise's reference models, in PyTorch.

`patchwise bench --json` and this script time the same models on the same
shapes, so that the two can be run side by side on one machine
(bench/compare does that, alternately, and prints the ratios).

Models (float32, random inputs, SGD with learning rate 0.01 and momentum 0.9):

  encoder          per block: Conv2d 3x3 pad 1 -> BatchNorm2d -> ReLU -> MaxPool2d 2,
                   widths 32, 64, 128, 256 (docs/design.md, section 4)
  classifier       encoder -> global average pool -> Linear(256, 10); cross-entropy   images/s
  autoencoder      encoder map -> 4 x [Upsample x2 -> Conv2d 3x3 -> BatchNorm2d -> ReLU]
                   (256 -> 128 -> 64 -> 32 -> 32) -> Conv2d 3x3 to C; mean-squared error images/s
  relpos           both crops through the one encoder, features concatenated (512)
                   -> Linear(512, 256) -> ReLU -> Linear(256, 8); cross-entropy        pairs/s
  encoder_forward  the encoder and its pooled feature in evaluation mode, no
                   gradient: what a linear probe's feature extraction runs           images/s
  resnet18         ResNet-18 (torchvision's resnet18: conv 7x7/2 -> BN -> ReLU -> max pool
                   3x3/2 -> basic blocks [2, 2, 2, 2], stage widths 64, 128, 256, 512
                   times --width) -> global average pool -> Linear(512 x width, 10);
                   cross-entropy. bench/compare runs it on 64x64 images, batch 64  images/s

The reported figure is the median time of --steps timed steps after --warmup
untimed ones. Output: one JSON object per model and line, with the fields
model, impl, device, threads, batch, size, channels, channels_last, step_ms,
samples_per_s (the fields of `patchwise bench --json`), and width for resnet18.

PyTorch's best CPU setting is channels-last (--channels-last) with glibc's
allocator told to keep memory:
  MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \\
      /usr/bin/python3 bench/torch_ref.py --channels-last
On Debian: apt-get install python3-torch.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

WIDTHS = (32, 64, 128, 256)
DECODER_WIDTHS = (128, 64, 32, 32)


def encoder(channels):
    layers, c_in = [], channels
    for w in WIDTHS:
        layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c_in = w
    return nn.Sequential(*layers)


def pooled(x):
    return x.mean(dim=(2, 3))


class Classifier(nn.Module):
    def __init__(self, channels, classes=10):
        super().__init__()
        self.body = encoder(channels)
        self.fc = nn.Linear(WIDTHS[-1], classes)

    def forward(self, x):
        return self.fc(pooled(self.body(x)))


class AutoEncoder(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = encoder(channels)
        layers, c_in = [], WIDTHS[-1]
        for w in DECODER_WIDTHS:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, w, 3, padding=1),
                       nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c_in = w
        layers.append(nn.Conv2d(c_in, channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x):
        return self.decoder(self.body(x))


class RelativePosition(nn.Module):
    def __init__(self, channels, hidden=256, directions=8):
        super().__init__()
        self.body = encoder(channels)
        self.head = nn.Sequential(nn.Linear(2 * WIDTHS[-1], hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, directions))

    def forward(self, first, second):
        # One pass of the shared encoder over both crops, as Patchwise does.
        f = pooled(self.body(torch.cat([first, second])))
        n = first.shape[0]
        return self.head(torch.cat([f[:n], f[n:]], dim=1))


class BasicBlock(nn.Module):
    """ResNet's basic block, as torchvision's (without depending on it)."""

    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)), inplace=True)


class ResNet18(nn.Module):
    """torchvision's resnet18 with stage widths 64, 128, 256, 512 times width and 10 classes."""

    def __init__(self, channels, width=1.0, classes=10):
        super().__init__()
        ws = [max(1, round(width * w)) for w in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(channels, ws[0], 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(ws[0]), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        blocks, c = [], ws[0]
        for s, w in enumerate(ws):
            for b in range(2):
                blocks.append(BasicBlock(c, w, 2 if b == 0 and s > 0 else 1))
                c = w
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(pooled(self.body(self.stem(x))))


def make_job(name, a, device, memory_format):
    """Returns (model, step function) for a model name."""
    shape = (a.batch, a.channels, a.size, a.size)

    def images():
        return torch.randn(*shape, device=device).contiguous(memory_format=memory_format)

    def prepare(model):
        return model.to(device).to(memory_format=memory_format)

    if name == "encoder_forward":
        body = prepare(encoder(a.channels)).eval()
        x = images()

        def forward():
            with torch.no_grad():
                return pooled(body(x)).sum()
        return forward

    if name == "classifier":
        model, inputs = prepare(Classifier(a.channels)), (images(),)
        target, loss = torch.randint(0, 10, (a.batch,), device=device), F.cross_entropy
    elif name == "autoencoder":
        model, inputs = prepare(AutoEncoder(a.channels)), (images(),)
        target, loss = inputs[0], F.mse_loss
    elif name == "resnet18":
        model, inputs = prepare(ResNet18(a.channels, a.width)), (images(),)
        target, loss = torch.randint(0, 10, (a.batch,), device=device), F.cross_entropy
    elif name == "relpos":
        model, inputs = prepare(RelativePosition(a.channels)), (images(), images())
        target, loss = torch.randint(0, 8, (a.batch,), device=device), F.cross_entropy
    else:
        raise SystemExit(f"torch_ref.py: unknown model {name!r} "
                         "(known: classifier, autoencoder, relpos, encoder_forward, resnet18)")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        opt.zero_grad(set_to_none=True)
        value = loss(model(*inputs), target)
        value.backward()
        opt.step()
        return value
    return train_step


def time_steps(step, warmup, steps, device):
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step().item()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="classifier,autoencoder,relpos",
                   help="comma-separated: classifier, autoencoder, relpos, encoder_forward, resnet18")
    p.add_argument("--batch", type=int, default=128, help="images (pairs for relpos) per step")
    p.add_argument("--size", type=int, default=32, help="image side in pixels")
    p.add_argument("--channels", type=int, default=3, help="image channels")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--threads", type=int, default=2, help="CPU threads")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of resnet18's stages")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format (PyTorch's fastest on CPU)")
    a = p.parse_args()

    if a.device == "cpu":
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format
    for name in a.models.split(","):
        step = make_job(name.strip(), a, a.device, memory_format)
        median = time_steps(step, a.warmup, a.steps, a.device)
        result = {
            "model": name.strip(),
            "impl": "pytorch " + torch.__version__,
            "device": a.device,
            "threads": torch.get_num_threads() if a.device == "cpu" else None,
            "batch": a.batch,
            "size": a.size,
            "channels": a.channels,
            "channels_last": a.channels_last,
            "step_ms": round(median * 1e3, 3),
            "samples_per_s": round(a.batch / median, 1),
        }
        if name.strip() == "resnet18":
            result["width"] = a.width
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
