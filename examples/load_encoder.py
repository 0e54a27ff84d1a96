#!/usr/bin/python3
"""Load a Patchwise encoder export (.safetensors) into PyTorch and compute features.

The file comes from `patchwise export CKPT -o encoder.safetensors`. This script
needs only PyTorch (Debian: apt-get install python3-torch; python3-pil for image
files, python3-numpy for .npy): the safetensors format is simple enough to read
with json + struct + torch.frombuffer, below.

Usage:
  load_encoder.py ENCODER.safetensors IMAGE...        print each image's features, one line each
  load_encoder.py ENCODER.safetensors --npy X.npy     X: [N, S, S, C] (or [S, S, C]) float32
  load_encoder.py ENCODER.safetensors --raw-in X.f32  X: raw little-endian float32 [N, S, S, C]
  load_encoder.py ENCODER.safetensors --info          print the metadata and the tensors
With --raw-out F.f32 the features are written to F as raw little-endian float32
[N, D] instead of printed.

Image files go through the export's input convention (metadata image_side and
input_*): grey (C=1) or RGB (C=3), squared to image_side as `patchwise ingest`
does by default, pixel/255, area-resized to SxS as Patchwise does, then the
per-image normalisation the pretext trained with (input_normalize). .npy and raw
inputs are taken as the encoder's input as is, channels-last like Patchwise's
tensors. Features are the global average pool of the last block (of layer4, for
a ResNet export), in eval mode. A ResNet export has torchvision's keys: to load
it into torchvision's own model, see load_torchvision.py.
"""
import argparse
import json
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}


def load_safetensors(path):
    """Return ({name: tensor}, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        dtype = DTYPES[t["dtype"]]
        if end > begin:
            x = torch.frombuffer(buf, dtype=dtype, offset=8 + n + begin,
                                 count=(end - begin) // torch.tensor([], dtype=dtype).element_size())
        else:
            x = torch.empty(0, dtype=dtype)
        tensors[name] = x.reshape(t["shape"]).clone()
    return tensors, meta


class Encoder(nn.Module):
    """The reference encoder of bench/torch_ref.py: per block Conv2d 3x3 -> BatchNorm2d -> ReLU -> MaxPool2d(2)."""

    def __init__(self, cin, widths=(32, 64, 128, 256), eps=1e-5, momentum=0.1):
        super().__init__()
        layers = []
        for c in widths:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c, eps=eps, momentum=momentum),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = c
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)

    def features(self, x):
        """Global-average-pooled features [N, D] of x [N, C, H, W]."""
        return self.forward(x).mean(dim=(2, 3))


class BasicBlock(nn.Module):
    """ResNet's basic block, with torchvision's module names."""

    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(nn.Conv2d(cin, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's resnet18/resnet34 without fc (the same keys), at any stage widths, with
    the ImageNet stem (conv 7x7/2, max pool 3x3/2) or the small one (conv 3x3/1, no pool)."""

    BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}

    def __init__(self, arch, cin, widths, stem):
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(cin, widths[0], 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(cin, widths[0], 3, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        c = widths[0]
        for s, (n, w) in enumerate(zip(self.BLOCKS[arch], widths)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(c, w, 2 if b == 0 and s > 0 else 1))
                c = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def features(self, x):
        """Global-average-pooled features [N, D] of x [N, C, H, W]."""
        return self.forward(x).mean(dim=(2, 3))


def load_encoder(path):
    """Return the encoder of a Patchwise export, in eval mode, and the file's metadata."""
    state, meta = load_safetensors(path)
    version = meta.get("patchwise_format_version")
    if version not in ("1", "2"):
        raise SystemExit(f"{path}: patchwise_format_version {version!r}: this script reads versions 1 and 2")
    widths = json.loads(meta["widths"])
    if meta.get("arch"):
        model = ResNet(meta["arch"], int(meta["channels"]), widths, meta["stem"])
    else:
        model = Encoder(int(meta["channels"]), widths)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = float(meta["bn_eps"]), float(meta["bn_momentum"])
    model.load_state_dict(state, strict=True)
    return model.eval(), meta


def normalize(x, how):
    """Per-image, per-channel normalisation of x [N, C, H, W], as Patchwise's augment does."""
    if how in ("", "none"):
        return x
    xd = x.double()
    mean = xd.mean(dim=(2, 3), keepdim=True)
    if how == "mean":
        return (xd - mean).float()
    if how == "std":  # a constant channel becomes 0
        std = xd.var(dim=(2, 3), unbiased=False, keepdim=True).sqrt()
        return torch.where(std > 1e-6, (xd - mean) / std.clamp(min=1e-6), torch.zeros_like(xd)).float()
    raise SystemExit(f"unknown input_normalize {how!r}")


def area_weights(n, m):
    """[m, n] weights of Patchwise's area resize: output j averages input span [j*n/m, (j+1)*n/m)."""
    w = torch.zeros(m, n, dtype=torch.float64)
    scale = n / m
    for j in range(m):
        lo, hi = j * scale, (j + 1) * scale
        for i in range(int(lo), min(n, int(hi) + 1)):
            w[j, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / scale
    return w


def area_resize(x, s):
    """Resize x [N, C, H, W] to [N, C, s, s] as Patchwise's augment.Resize does."""
    wy, wx = area_weights(x.shape[2], s), area_weights(x.shape[3], s)
    return torch.einsum("yh,nchw,xw->ncyx", wy, x.double(), wx).float()


def load_images(paths, meta):
    """Read image files into [N, C, S, S] following the export's input convention.

    Like `patchwise ingest` with its default --resize crop (approximately: Pillow's
    bilinear filter and grey conversion stand in for Patchwise's), each image becomes
    an image_side square: transparent pixels onto white, shorter side to image_side,
    centre crop. Then, exactly as in pretraining: pixel/255, area resize to S×S,
    and the pretext's per-image normalisation.
    """
    from PIL import Image, ImageOps

    s, c = int(meta["input_size"]), int(meta["channels"])
    xs = []
    for p in paths:
        img = ImageOps.exif_transpose(Image.open(p))
        if img.mode in ("RGBA", "LA", "PA", "P"):
            img = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img)
        img = img.convert("L" if c == 1 else "RGB")
        side = int(meta.get("image_side", 0))
        if side and img.size != (side, side):
            w, h = img.size
            k = side / min(w, h)
            img = img.resize((max(side, round(w * k)), max(side, round(h * k))), Image.BILINEAR, reducing_gap=2.0)
            left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
            img = img.crop((left, top, left + side, top + side))
        w, h = img.size
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().div(255)
        xs.append(area_resize(x.reshape(1, h, w, c).permute(0, 3, 1, 2), s)[0])
    return normalize(torch.stack(xs), meta["input_normalize"])


def nhwc(x, meta, what):
    """Check x [N, S, S, C] (or one image [S, S, C]) and return it as [N, C, S, S]."""
    s, c = int(meta["input_size"]), int(meta["channels"])
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[3] != c:
        raise SystemExit(f"{what}: shape {list(x.shape)}, want [N, H, W, {c}] (trained on {s}x{s})")
    return x.float().permute(0, 3, 1, 2).contiguous()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoder", help="the .safetensors file written by patchwise export")
    p.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...)")
    p.add_argument("--npy", help="a .npy array [N, S, S, C] float32, the encoder's input as is")
    p.add_argument("--raw-in", help="raw little-endian float32 [N, S, S, C], the encoder's input as is")
    p.add_argument("--raw-out", help="write the features here as raw little-endian float32 [N, D] instead of printing them")
    p.add_argument("--info", action="store_true", help="print the metadata and the tensors' shapes")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_intermixed_args()
    if sys.byteorder != "little":
        raise SystemExit("this script reads little-endian data with torch.frombuffer: run it on a little-endian machine")
    if a.threads > 0:
        torch.set_num_threads(a.threads)

    model, meta = load_encoder(a.encoder)
    if a.info:
        for k in sorted(meta):
            print(f"{k:26} {meta[k]}")
        for k, v in model.state_dict().items():
            print(f"{k:34} {str(v.dtype):14} {list(v.shape)}")
        return
    if sum(map(bool, (a.images, a.npy, a.raw_in))) != 1:
        raise SystemExit("give image files, --npy or --raw-in (one of them), or --info; see --help")
    s, c = int(meta["input_size"]), int(meta["channels"])
    if a.raw_in:
        with open(a.raw_in, "rb") as f:
            raw = bytearray(f.read())
        per = s * s * c * 4
        if len(raw) % per:
            raise SystemExit(f"{a.raw_in}: {len(raw)} bytes is not a whole number of {s}x{s}x{c} float32 images")
        x = torch.frombuffer(raw, dtype=torch.float32).reshape(-1, s, s, c) if raw else torch.empty(0, s, s, c)
        x = nhwc(x, meta, a.raw_in)
    elif a.npy:
        import numpy as np

        x = nhwc(torch.from_numpy(np.load(a.npy)), meta, a.npy)
    else:
        x = load_images(a.images, meta)

    with torch.no_grad():
        f = model.features(x)
    if a.raw_out:
        with open(a.raw_out, "wb") as out:
            out.write(struct.pack(f"<{f.numel()}f", *f.flatten().tolist()))
        return
    names = a.images or [f"{a.npy or a.raw_in}[{i}]" for i in range(len(f))]
    for name, v in zip(names, f.tolist()):
        print(name, " ".join(f"{x:.5g}" for x in v))


if __name__ == "__main__":
    main()
