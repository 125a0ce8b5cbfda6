#!/usr/bin/env python3
"""Golden values from the PyTorch reference (../shared/reference/unet_reference.py) for patho's tests,
and the interop check that a patho checkpoint loads into the reference module with strict=True.

  python3 scripts/golden.py                 # writes test/golden/unet_w4d2.safetensors (+ optim file)
  python3 scripts/golden.py --check CKPT X  # loads CKPT (patho) strictly, runs eval forward on the
                                            # 'input' tensor of safetensors file X, prints JSON logits
Needs torch (pip install 'torch==2.13.0+cpu') and safetensors; patho itself never needs Python.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.environ.get("PATHO_REFERENCE", os.path.join(ROOT, "..", "shared", "reference"))
sys.path.insert(0, REF)
from unet_reference import UNet, bce_jaccard_loss  # noqa: E402

CONFIG = dict(in_channels=3, out_channels=1, width=4, depth=2)


def make_net(seed=0):
    torch.manual_seed(seed)
    net = UNet(**CONFIG)
    # non-default BN affine values so their gradients and effect are checked too
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".bn" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif ".bn" in name and name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    return net


def golden():
    net = make_net(0)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 16, generator=g)
    target = (torch.rand(2, 1, 16, 16, generator=g) > 0.4).float()
    net.train()
    logits = net(x)
    loss = bce_jaccard_loss(logits, target)
    loss.backward()
    out = {f"init.{k}": v.contiguous() for k, v in init.items()}
    out["input"] = x
    out["target"] = target
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out["bce_loss"] = bce_jaccard_loss(logits.detach(), target, jaccard_weight=0).reshape(1)
    for k, v in net.state_dict().items():
        if "running" in k:
            out[f"after.{k}"] = v.clone()
    for k, p in net.named_parameters():
        out[f"grad.{k}"] = p.grad.detach().clone()
    # eval-mode forward with the updated running statistics
    net.eval()
    with torch.no_grad():
        out["eval_logits"] = net(x)
    os.makedirs(os.path.join(ROOT, "test", "golden"), exist_ok=True)
    path = os.path.join(ROOT, "test", "golden", "unet_w4d2.safetensors")
    save_file(out, path, metadata={"config": json.dumps(CONFIG), "torch": torch.__version__})
    # PyTorch's own state_dict file (what a PyTorch user would hand to patho)
    save_file({k: v.contiguous() for k, v in init.items()}, os.path.join(ROOT, "test", "golden", "unet_w4d2_state_dict.safetensors"))
    optim_golden(init)
    print("wrote", path, os.path.getsize(path), "bytes")


def optim_golden(init):
    """Three optimizer steps from the same start on the same batch, for SGD (Nesterov) and AdamW/Adam."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 16, generator=g)
    target = (torch.rand(2, 1, 16, 16, generator=g) > 0.4).float()
    out = {}
    specs = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    }
    for name, mk in specs.items():
        net = UNet(**CONFIG)
        net.load_state_dict(init)
        net.train()
        opt = mk(net.parameters())
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = bce_jaccard_loss(net(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[f"{name}.losses"] = torch.tensor(losses)
        for k, p in net.named_parameters():
            if k in ("encoder.0.conv1.weight", "decoder.1.upconv.bias", "head.weight", "bottleneck.bn2.weight"):
                out[f"{name}.{k}"] = p.detach().clone()
    save_file(out, os.path.join(ROOT, "test", "golden", "unet_w4d2_optim.safetensors"))


def check(ckpt, inputs):
    """Interop: a patho checkpoint must load into the reference module with strict=True."""
    from safetensors import safe_open
    with safe_open(ckpt, "pt") as f:
        meta = f.metadata() or {}
    cfg = json.loads(meta.get("patho.model", "{}"))
    net = UNet(in_channels=cfg["inChannels"], out_channels=cfg["outChannels"], width=cfg["width"], depth=cfg["depth"])
    result = net.load_state_dict(load_file(ckpt), strict=True)
    net.eval()
    x = load_file(inputs)["input"]
    with torch.no_grad():
        y = net(x)
    print(json.dumps({"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys),
                      "logits": y.flatten().tolist(), "num_batches_tracked": int(net.encoder[0].bn1.num_batches_tracked)}))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        golden()
