"""The ConIC training step of Conic's benchmark, written in plain PyTorch: the same width-w ResNet-18 with the small
stem, projection MLP, normalised N-way instance classifier (full logits matrix), consistency loss and SGD step
(momentum 0.9, weight decay 5e-4 on the network, 10x learning rate and no decay on the classifier).

Run by `conic-bench step` when python3 can import torch; prints one line "images/s: X".
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, inputs, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inputs != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def resnet18(width, channels):
    layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    inputs = width
    for stage, planes in enumerate([width, 2 * width, 4 * width, 8 * width]):
        for block in range(2):
            layers.append(BasicBlock(inputs, planes, 2 if stage > 0 and block == 0 else 1))
            inputs = planes
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), inputs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--instances", type=int, default=2048)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(0)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    backbone, features = resnet18(args.width, args.channels)
    projector = nn.Sequential(nn.Linear(features, 4 * features, bias=False), nn.BatchNorm1d(4 * features), nn.ReLU(),
                              nn.Linear(4 * features, args.dim))
    classifier = nn.Parameter(torch.randn(args.instances, args.dim) * 0.01)
    network = list(backbone.parameters()) + list(projector.parameters())
    lr = 0.12 * args.batch / 256
    optimizer = torch.optim.SGD([{"params": network, "lr": lr, "weight_decay": 5e-4},
                                 {"params": [classifier], "lr": 10 * lr, "weight_decay": 0.0}], momentum=0.9)

    views = torch.randn(2 * args.batch, args.channels, args.size, args.size)
    images = torch.randperm(args.instances)[: args.batch]
    targets = torch.cat([images, images])

    def step():
        optimizer.zero_grad()
        embeddings = projector(backbone(views))
        logits = F.normalize(embeddings, dim=1) @ F.normalize(classifier, dim=1).t() / 0.1
        unit = F.normalize(embeddings, dim=1)
        consistency = (unit[: args.batch] - unit[args.batch:]).pow(2).sum(1).mean()
        loss = F.cross_entropy(logits, targets) + consistency
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    elapsed = time.perf_counter() - start
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"images/s: {args.batch * args.steps / elapsed:.1f}")


if __name__ == "__main__":
    main()
