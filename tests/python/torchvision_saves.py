"""Saves a torchvision ResNet's weights as `--init` reads them, with inputs and the features PyTorch computes for them.

usage: torchvision_saves.py ARCH OUT_DIR
writes OUT_DIR/ARCH.pth (torch.save of the state_dict, fc included), OUT_DIR/ARCH.safetensors (the same tensors),
OUT_DIR/checkpoint.pth ({"epoch": 3, "state_dict": ... with a "module." prefix}, as training scripts save them),
OUT_DIR/inputs.npy (4 normalised RGB images, 64 px) and OUT_DIR/features.npy (the pooled features, fc = Identity).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, state):
    """The safetensors layout (an 8-byte header length, a JSON header, the raw tensors), as Debian has no safetensors module."""
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.contiguous().numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(data)


def main():
    arch, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None)
    # Trained-looking BatchNorm: statistics and affine parameters away from their initial 0 / 1.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    state = model.state_dict()
    torch.save(state, os.path.join(out, f"{arch}.pth"))
    write_safetensors(os.path.join(out, f"{arch}.safetensors"), state)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, os.path.join(out, "checkpoint.pth"))

    inputs = torch.randn(4, 3, 64, 64)
    model.fc = torch.nn.Identity()
    model.eval()
    with torch.no_grad():
        features = model(inputs)
    np.save(os.path.join(out, "inputs.npy"), inputs.numpy())
    np.save(os.path.join(out, "features.npy"), features.numpy())


if __name__ == "__main__":
    main()
