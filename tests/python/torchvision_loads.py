"""Loads a Conic safetensors export into torchvision's ResNet (small stem: 3x3 conv1, no max-pool; fc = Identity)
with strict=True and prints the largest difference between its features and Conic's on the same inputs.

usage: torchvision_loads.py ENCODER.safetensors [ENCODER.pt] INPUTS.npy CONIC_FEATURES.npy
(the .safetensors file's metadata gives the architecture; a .pt state_dict, when given, is loaded instead)
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


def main():
    state, metadata = read_safetensors(sys.argv[1])
    if sys.argv[2].endswith(".pt"):
        state = torch.load(sys.argv[2])
    inputs = torch.from_numpy(np.load(sys.argv[-2]))
    expected = np.load(sys.argv[-1])
    arch = getattr(torchvision.models, metadata["arch"])
    model = arch(weights=None)
    channels = int(metadata["input_channels"])
    if metadata["stem"].startswith("small"):
        model.conv1 = torch.nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    else:
        model.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    model.fc = torch.nn.Identity()
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        features = model(inputs).numpy()
    print(f"max abs difference {np.abs(features - expected).max():.3g}")


if __name__ == "__main__":
    main()
