"""Checks the README's two export recipes (LPIPS AlexNet, a CLIP image encoder): runs the
README's own code blocks, then scores three 96x64 RGB pairs with gpucompare and with the
exported modules in PyTorch, and fails unless they agree to 1e-4.

Pretrained weights need a model hub this check does not assume, so two calls are swapped
before the blocks run: lpips gets a random AlexNet (pnet_rand=True; its 1x1 weights ship in
the package), and CLIP is built from its architecture's config with random weights instead
of from_pretrained. The wrappers, the tracing and the files are the README's.

Needs lpips, torchvision and transformers besides torch (scripts/check-model-exports.sh
installs them). Usage: python check_model_exports.py README.md GPUCOMPARE WORKDIR
"""
import json
import os
import re
import subprocess
import sys

import torch
import torch.nn.functional as F

readme, gpucompare, work = sys.argv[1:4]
blocks = re.findall(r"```python\n(.*?)```", open(readme).read(), re.S)
swaps = {
    "class Lpips": [('lpips.LPIPS(net="alex")', 'lpips.LPIPS(net="alex", pnet_rand=True)')],
    "class ClipImage": [
        ("from transformers import CLIPVisionModelWithProjection",
         "from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection"),
        ('CLIPVisionModelWithProjection.from_pretrained(\n            '
         '"openai/clip-vit-base-patch32", torchscript=True)',
         "CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512, torchscript=True))"),
    ],
}
os.makedirs(work, exist_ok=True)
os.chdir(work)

# Three pairs of 96x64 RGB frames: random, and a noisy copy.
g = torch.Generator().manual_seed(2)
ref = (torch.rand(3, 64, 96, 3, generator=g) * 255).round().to(torch.uint8)
dist = (ref.float() + torch.randn(3, 64, 96, 3, generator=g) * 20).clamp(0, 255).round()
dist = dist.to(torch.uint8)
ref.numpy().tofile("ref.rgb")
dist.numpy().tofile("dist.rgb")
as_input = lambda t: t.permute(0, 3, 1, 2).float() / 255

failed = False
for marker, model_file, model_type in [
    ("class Lpips", "lpips_alex.pt", "pair"),
    ("class ClipImage", "clip_b32.pt", "embedding"),
]:
    (code,) = [b for b in blocks if marker in b]
    for old, new in swaps[marker]:
        assert old in code, f"the README's {marker} block no longer has: {old}"
        code = code.replace(old, new)
    torch.manual_seed(1)
    scope = {}
    exec(code, scope)
    module = torch.jit.load(model_file)
    with torch.no_grad():
        if model_type == "pair":
            want = module(as_input(ref), as_input(dist)).flatten().tolist()
        else:
            want = F.cosine_similarity(module(as_input(ref)), module(as_input(dist))).tolist()
    out = subprocess.run(
        [gpucompare, "ref.rgb", "dist.rgb", "--size", "96x64", "--format", "rgb",
         "--metrics", "psnr", "--model", model_file, "--model-type", model_type, "--json"],
        capture_output=True, text=True)
    if out.returncode != 0:
        print(f"{model_file}: gpucompare failed: {out.stderr.strip()}")
        failed = True
        continue
    got = [f["model"] for f in json.loads(out.stdout)["frames"]]
    worst = max(abs(a - b) for a, b in zip(got, want)) if len(got) == len(want) else None
    ok = worst is not None and worst < 1e-4
    failed |= not ok
    print(f"{model_file} ({model_type}): gpucompare {got}, PyTorch {want}, "
          f"largest difference {worst}: {'ok' if ok else 'FAIL'}")
sys.exit(1 if failed else 0)
