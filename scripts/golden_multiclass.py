#!/usr/bin/env python3
"""PyTorch golden values for patho's multi-class ops (test/native/ops/multiclass.test.ts):
softmax over channels, F.cross_entropy with class weights and ignore_index, the generalised Jaccard
loss CE - w*log(mean soft Jaccard over the foreground classes), the multi-class soft Dice loss, their
gradients by autograd, and the confusion matrix of argmax predictions.

  python3 scripts/golden_multiclass.py    # writes test/golden/multiclass.json
Needs torch (pip install 'torch==2.13.0+cpu'); patho itself never needs Python.
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "golden", "multiclass.json")


def soft_sums(logits, labels, ignore_index):
    """Per-class I_k, P_k, Y_k over the pixels whose label is not ignore_index."""
    K = logits.shape[1]
    p = torch.softmax(logits.double(), dim=1)
    valid = (labels != ignore_index).unsqueeze(1).double()
    onehot = F.one_hot(torch.where(labels == ignore_index, 0, labels), K).permute(0, 3, 1, 2).double() * valid
    pv = p * valid
    return (pv * onehot).sum((0, 2, 3)), pv.sum((0, 2, 3)), onehot.sum((0, 2, 3))


def jaccard_loss(logits, labels, weight, ignore_index, w, eps):
    ce = F.cross_entropy(logits.double(), labels, weight=weight, ignore_index=ignore_index)
    inter, ps, ys = soft_sums(logits, labels, ignore_index)
    jac = (inter + eps) / (ps + ys - inter + eps)
    return ce - w * torch.log(jac[1:].mean())


def dice_loss(logits, labels, ignore_index, first, eps):
    inter, ps, ys = soft_sums(logits, labels, ignore_index)
    return 1 - ((2 * inter + eps) / (ps + ys + eps))[first:].mean()


def case(name, N, K, H, W, seed, weighted, ignore_index, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = ((torch.rand(N, K, H, W, generator=g) * 2 - 1) * scale).float()
    labels = torch.randint(0, K, (N, H, W), generator=g)
    if ignore_index is not None:
        labels[torch.rand(N, H, W, generator=g) < 0.2] = ignore_index
    weight = (torch.rand(K, generator=g) * 1.5 + 0.25).double() if weighted else None
    ig = ignore_index if ignore_index is not None else -100
    out = {
        "name": name, "shape": [N, K, H, W], "ignoreIndex": ig,
        "logits": logits.flatten().tolist(), "labels": labels.flatten().tolist(),
        "weight": weight.tolist() if weighted else None,
        "softmax": torch.softmax(logits.double(), 1).flatten().tolist(),
    }
    x = logits.double().requires_grad_()
    ce = F.cross_entropy(x, labels, weight=weight, ignore_index=ig)
    ce.backward()
    out["crossEntropy"] = {"loss": ce.item(), "grad": x.grad.flatten().tolist()}
    for w in (1.0, 0.5):
        x = logits.double().requires_grad_()
        loss = jaccard_loss(x, labels, weight, ig, w, 1e-7)
        loss.backward()
        out[f"jaccard{w}"] = {"loss": loss.item(), "grad": x.grad.flatten().tolist()}
    for first in (1, 0):
        x = logits.double().requires_grad_()
        loss = dice_loss(x, labels, ig, first, 1e-7)
        loss.backward()
        out[f"dice{first}"] = {"loss": loss.item(), "grad": x.grad.flatten().tolist()}
    pred = logits.argmax(1)
    conf = torch.zeros(N, K, K, dtype=torch.long)
    for n in range(N):
        keep = labels[n] != ig
        idx = labels[n][keep] * K + pred[n][keep]
        conf[n] = torch.bincount(idx, minlength=K * K).view(K, K)
    out["confusion"] = conf.flatten().tolist()
    return out


def main():
    cases = [
        case("K=3, no weight, no ignored pixel", 2, 3, 4, 5, 1, False, None),
        case("K=4, class weights, ignore_index 255", 2, 4, 5, 3, 2, True, 255),
        case("K=2, weights, ignore_index 1 (a class index)", 1, 2, 6, 4, 3, True, 1),
        case("K=5, large logits, ignore_index -100", 3, 5, 3, 3, 4, False, -100, scale=40.0),
    ]
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
