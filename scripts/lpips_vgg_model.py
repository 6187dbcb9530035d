"""Writes a TorchScript pair model the size of LPIPS-VGG, with random weights, for the
model memory benchmark (examples/model_bench.rs): VGG-16's thirteen convolutions and four
max-pools, LPIPS's input scaling, unit-normalised features at relu1_2, relu2_2, relu3_3,
relu4_3 and relu5_3, non-negative 1x1 weights on their squared differences, and the sum of
their spatial means, [batch, 1, 1, 1]. Its memory and speed are LPIPS-VGG's; its values
mean nothing.

Usage: python lpips_vgg_model.py OUT.pt
"""
import sys

import torch
import torch.nn.functional as F
from torch import nn

# VGG-16's convolutions, stage by stage (LPIPS taps the last ReLU of each stage).
STAGES = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


class LpipsVgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        stages, channels = [], 3
        for widths in STAGES:
            layers = []
            for width in widths:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                channels = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.lins = nn.ModuleList(nn.Conv2d(s[-1], 1, 1, bias=False) for s in STAGES)
        for lin in self.lins:
            lin.weight.data.abs_()

    def features(self, x):
        x = ((x * 2 - 1) - self.shift) / self.scale
        taps = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            taps.append(x)
        return taps

    @staticmethod
    def unit(f):
        return f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)

    def forward(self, reference, distorted):
        out = torch.zeros(reference.shape[0], 1, 1, 1, device=reference.device)
        a, b = self.features(reference), self.features(distorted)
        for i, lin in enumerate(self.lins):
            out = out + lin((self.unit(a[i]) - self.unit(b[i])).pow(2)).mean((2, 3), keepdim=True)
        return out


if __name__ == "__main__":
    torch.manual_seed(0)
    model = torch.jit.script(LpipsVgg().eval())
    torch.jit.save(model, sys.argv[1])
