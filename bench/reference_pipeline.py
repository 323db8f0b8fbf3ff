"""The input pipeline of Conic's `pipeline` benchmark in torchvision: ImageFolder + DataLoader with two augmented
views per image (random resized crop of the whole image to SIZE, area 0.3-1, ratio 3/4-4/3; flip; colour jitter
0.4/0.4/0.4/0.1 with p 0.8; grayscale p 0.2; to tensor; normalise), random order, WORKERS worker processes.

    python3 bench/reference_pipeline.py --data DIR [--size 64] [--batch 256] [--batches 20] [--workers 2]

Prints one Markdown row: images, scan seconds, first batch seconds, images/s over the timed batches.
"""
import argparse
import time

import torch
from torchvision import datasets, transforms


class TwoViews:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    view = transforms.Compose([
        transforms.RandomResizedCrop(args.size, scale=(0.3, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    ])
    start = time.perf_counter()
    dataset = datasets.ImageFolder(args.data, transform=TwoViews(view))
    scan = time.perf_counter() - start
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         generator=torch.Generator().manual_seed(0), persistent_workers=True)
    batches = iter(loader)
    start = time.perf_counter()
    next(batches)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.batches):
        next(batches)
    per_second = args.batches * args.batch / (time.perf_counter() - start)
    print(f"| torchvision | {len(dataset):,} | {args.size} | {args.workers} | {scan:.1f} s | {first:.2f} s | {per_second:.0f} |")


if __name__ == "__main__":
    main()
