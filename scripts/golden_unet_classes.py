#!/usr/bin/env python3
"""Golden values of a K-class UNet from the PyTorch reference (../shared/reference/unet_reference.py with
out_channels=3; width 4, depth 2, 16x16, batch 2, BN in training mode): logits, the class loss
F.cross_entropy(weight=, ignore_index=255) - log(mean soft Jaccard over the foreground classes), every
gradient, the running statistics after the step, eval-mode logits and softmax probabilities.

  python3 scripts/golden_unet_classes.py   # writes test/golden/unet_w4d2_k3.safetensors
Needs torch (pip install 'torch==2.13.0+cpu') and safetensors; patho itself never needs Python.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.environ.get("PATHO_REFERENCE", os.path.join(ROOT, "..", "shared", "reference"))
sys.path.insert(0, REF)
from unet_reference import UNet  # noqa: E402

CONFIG = dict(in_channels=3, out_channels=3, width=4, depth=2)
WEIGHT = [0.5, 2.0, 1.5]
IGNORE = 255


def class_jaccard_loss(logits, labels, weight, ignore_index, eps=1e-7):
    """CE - log(mean over classes 1..K-1 of the soft Jaccard), pixels labelled ignore_index left out."""
    ce = F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)
    K = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    valid = (labels != ignore_index).unsqueeze(1).float()
    onehot = F.one_hot(torch.where(labels == ignore_index, 0, labels), K).permute(0, 3, 1, 2).float() * valid
    pv = p * valid
    inter = (pv * onehot).sum((0, 2, 3))
    union = pv.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) - inter
    return ce - torch.log(((inter + eps) / (union + eps))[1:].mean())


def main():
    torch.manual_seed(3)
    net = UNet(**CONFIG)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".bn" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif ".bn" in name and name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 16, 16, generator=g)
    labels = torch.randint(0, 3, (2, 16, 16), generator=g)
    labels[torch.rand(2, 16, 16, generator=g) < 0.1] = IGNORE
    weight = torch.tensor(WEIGHT)
    net.train()
    logits = net(x)
    loss = class_jaccard_loss(logits, labels, weight, IGNORE)
    loss.backward()
    out = {f"init.{k}": v.contiguous() for k, v in init.items()}
    out["input"] = x
    out["labels"] = labels.float()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out["ce_loss"] = F.cross_entropy(logits.detach(), labels, weight=weight, ignore_index=IGNORE).reshape(1)
    for k, v in net.state_dict().items():
        if "running" in k:
            out[f"after.{k}"] = v.clone()
    for k, p in net.named_parameters():
        out[f"grad.{k}"] = p.grad.detach().clone()
    net.eval()
    with torch.no_grad():
        ev = net(x)
    out["eval_logits"] = ev
    out["eval_softmax"] = torch.softmax(ev, dim=1)
    path = os.path.join(ROOT, "test", "golden", "unet_w4d2_k3.safetensors")
    save_file(out, path, metadata={"config": json.dumps(CONFIG), "weight": json.dumps(WEIGHT), "ignore_index": str(IGNORE), "torch": torch.__version__})
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
