#!/usr/bin/python3
"""Load a Patchwise ResNet export (.safetensors) into torchvision's ResNet.

A ResNet encoder exported by `patchwise export` (pretrained with "arch":
"resnet18" or "resnet34") has torchvision's key names and layouts. This script
builds torchvision's model for it and loads the file with strict=False, which
misses only the classifier head fc.weight and fc.bias:

  - ImageNet stem at width 1 (stage widths 64, 128, 256, 512): exactly
    torchvision.models.resnet18() or resnet34() (num_classes=1000), ready to
    fine-tune with a new fc;
  - other widths, or the small stem (conv 3x3 stride 1, no max pool): the same
    torchvision.models.resnet.ResNet with BasicBlock, its stem and stages
    rebuilt at the export's widths (torchvision's width_per_group scales only
    bottleneck blocks).

Needs Debian's python3-torch and python3-torchvision.

Usage:
  load_torchvision.py ENCODER.safetensors                 print the load's missing and unexpected keys (JSON)
  load_torchvision.py ENCODER.safetensors --raw-in X.f32 --raw-out F.f32
      X: raw little-endian float32 [N, S, S, C], the encoder's input as is
      (channels-last, prepared as load_encoder.py prepares images); F: the
      features [N, D], torchvision's avgpool output (fc's input), in eval mode.
"""
import argparse
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, ResNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_encoder import load_safetensors  # noqa: E402

BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


def torchvision_resnet(arch, channels, widths, stem):
    """torchvision's ResNet for an export, and whether it is the library's own model: so at
    width 1 with the ImageNet stem and 3 channels, else one with its stem and stages rebuilt."""
    if list(widths) == [64, 128, 256, 512] and stem == "imagenet" and channels == 3:
        return getattr(torchvision.models, arch)(), True
    m = ResNet(BasicBlock, BLOCKS[arch])
    if stem == "imagenet":
        m.conv1 = nn.Conv2d(channels, widths[0], 7, stride=2, padding=3, bias=False)
    else:
        m.conv1 = nn.Conv2d(channels, widths[0], 3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
    m.bn1 = nn.BatchNorm2d(widths[0])
    m.inplanes = widths[0]  # _make_layer reads and advances it
    m.layer1 = m._make_layer(BasicBlock, widths[0], BLOCKS[arch][0])
    m.layer2 = m._make_layer(BasicBlock, widths[1], BLOCKS[arch][1], stride=2)
    m.layer3 = m._make_layer(BasicBlock, widths[2], BLOCKS[arch][2], stride=2)
    m.layer4 = m._make_layer(BasicBlock, widths[3], BLOCKS[arch][3], stride=2)
    m.fc = nn.Linear(widths[3], 1000)
    return m, False


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoder", help="a ResNet .safetensors file written by patchwise export")
    p.add_argument("--raw-in", help="raw little-endian float32 [N, S, S, C], the encoder's input as is")
    p.add_argument("--raw-out", help="write the features here as raw little-endian float32 [N, D]")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    state, meta = load_safetensors(a.encoder)
    if meta.get("patchwise_format_version") != "2" or not meta.get("arch"):
        raise SystemExit(f"{a.encoder}: not a ResNet export (patchwise_format_version "
                         f"{meta.get('patchwise_format_version')!r}, arch {meta.get('arch')!r}); see load_encoder.py")
    s, c, widths = int(meta["input_size"]), int(meta["channels"]), json.loads(meta["widths"])
    model, library = torchvision_resnet(meta["arch"], c, widths, meta["stem"])
    res = model.load_state_dict(state, strict=False)
    print(json.dumps({"missing": sorted(res.missing_keys), "unexpected": sorted(res.unexpected_keys),
                      "library_model": library, "arch": meta["arch"], "widths": widths}))
    if not a.raw_in:
        return
    with open(a.raw_in, "rb") as f:
        raw = bytearray(f.read())
    if len(raw) % (s * s * c * 4):
        raise SystemExit(f"{a.raw_in}: {len(raw)} bytes is not a whole number of {s}x{s}x{c} float32 images")
    x = torch.frombuffer(raw, dtype=torch.float32).reshape(-1, s, s, c).permute(0, 3, 1, 2).contiguous()
    model.fc = nn.Identity()  # the output is then avgpool's: the features
    with torch.no_grad():
        f = model.eval()(x)
    if a.raw_out:
        with open(a.raw_out, "wb") as out:
            out.write(struct.pack(f"<{f.numel()}f", *f.flatten().tolist()))


if __name__ == "__main__":
    main()
