"""Saves a torchvision network's weights as `--init` reads them, with inputs and the features PyTorch computes for them.

usage: torchvision_saves.py ARCH OUT_DIR
ARCH: resnet18, resnet50, convnext_tiny (64 px inputs), or vit_tiny / vit_small (torchvision's VisionTransformer with
timm's sizes: 12 blocks of 192 / 384 dimensions, 4-pixel patches, 32 px inputs).
writes OUT_DIR/ARCH.pth (torch.save of the state_dict, classifier included), OUT_DIR/ARCH.safetensors (the same
tensors; for a ViT or ConvNeXt renamed to timm's names), OUT_DIR/checkpoint.pth ({"epoch": 3, "state_dict": ... with a
"module." prefix}, as training scripts save them), OUT_DIR/inputs.npy (4 normalised RGB images) and
OUT_DIR/features.npy (the pooled features: the classifier's last Linear replaced by Identity, or the ViT's class token).
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


VIT_SIZES = {"vit_tiny": (192, 3), "vit_small": (384, 6)}


def timm_name(name):
    """torchvision's VisionTransformer name as timm's (what Conic reads either way)."""
    for old, new in [("class_token", "cls_token"), ("conv_proj.", "patch_embed.proj."), ("encoder.pos_embedding", "pos_embed"), ("encoder.ln.", "norm."),
                     ("encoder.layers.encoder_layer_", "blocks."), ("self_attention.in_proj_weight", "attn.qkv.weight"),
                     ("self_attention.in_proj_bias", "attn.qkv.bias"), ("self_attention.out_proj.", "attn.proj."), ("ln_1.", "norm1."),
                     ("ln_2.", "norm2."), ("mlp.0.", "mlp.fc1."), ("mlp.3.", "mlp.fc2."), ("heads.head.", "head.")]:
        name = name.replace(old, new)
    return name


def timm_convnext_name(name):
    """torchvision's ConvNeXt name as timm's: features.0 the stem, odd features the stages' blocks, even ones downsamplings."""
    parts = name.split(".")
    if parts[0] == "classifier":
        return {"0": "head.norm.", "2": "head.fc."}[parts[1]] + parts[2]
    feature = int(parts[1])
    if feature == 0:
        return "stem." + ".".join(parts[2:])
    if feature % 2 == 0:
        return f"stages.{feature // 2}.downsample." + ".".join(parts[2:])
    inner = "gamma" if parts[3] == "layer_scale" else {"0": "conv_dw", "2": "norm", "3": "mlp.fc1", "5": "mlp.fc2"}[parts[4]] + "." + parts[5]
    return f"stages.{feature // 2}.blocks.{parts[2]}.{inner}"


def timm_state(arch, state):
    """The state dict under timm's names (and timm's [C] layer scale), for the formats timm writes."""
    if arch in VIT_SIZES:
        return {timm_name(k): v for k, v in state.items()}
    if arch.startswith("convnext"):
        return {timm_convnext_name(k): (v.flatten() if k.endswith("layer_scale") else v) for k, v in state.items()}
    return state


def main():
    arch, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    vit = arch in VIT_SIZES
    if vit:
        dim, heads = VIT_SIZES[arch]
        model = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=12, num_heads=heads, hidden_dim=dim, mlp_dim=4 * dim)
        with torch.no_grad():  # torchvision starts the class token and the head at zero
            model.class_token.normal_(std=0.02)
    else:
        model = getattr(torchvision.models, arch)(weights=None)
    if arch.startswith("convnext"):
        with torch.no_grad():  # torchvision starts the layer scales at 1e-6: blocks that change nothing would test nothing
            for name, parameter in model.named_parameters():
                if name.endswith("layer_scale"):
                    parameter.uniform_(0.5, 1.5)
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
    write_safetensors(os.path.join(out, f"{arch}.safetensors"), timm_state(arch, state))
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, os.path.join(out, "checkpoint.pth"))

    inputs = torch.randn(4, 3, 32 if vit else 64, 32 if vit else 64)
    if vit:
        model.heads = torch.nn.Identity()
    elif arch.startswith("convnext"):
        model.classifier[2] = torch.nn.Identity()
    else:
        model.fc = torch.nn.Identity()
    model.eval()
    with torch.no_grad():
        features = model(inputs)
    np.save(os.path.join(out, "inputs.npy"), inputs.numpy())
    np.save(os.path.join(out, "features.npy"), features.numpy())


if __name__ == "__main__":
    main()
