"""The plain PyTorch script of bench/accuracy.ts (issue 17): what a user writes without tuning.

The reference UNet (../shared/reference/unet_reference.py) at width 16, random 256x256 crops with
horizontal and vertical flips, input pixel/255, BCE - log(soft Jaccard) (the reference's loss),
constant Adam 1e-3, batches of 4 drawn epoch by epoch from every training image of the split, for
--budget seconds of training (the clock starts at the first step, after the images are loaded;
training stops after the step during which the budget runs out); the last model is saved as a
safetensors state_dict (patho evaluates it, as it evaluates its own). Prints one JSON line:
{"steps": N, "seconds": S, "images": I}. Not part of the package: patho never needs Python.

  python3 bench/torch_plain.py --data DIR --split bench/splits/monuseg.json --budget 300 --seed 0 --out model.safetensors
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from PIL import Image


def find_reference(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit] if explicit else [
        os.path.join(here, "..", "..", "shared", "reference"),        # ../shared/reference from the repo root
        os.path.join(here, "..", "..", "..", "shared", "reference"),  # from dist/bench
    ]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "unet_reference.py")):
            return os.path.abspath(c)
    sys.exit("torch_plain.py: Expected unet_reference.py in one of %s (or --reference DIR)" % candidates)


def load_pairs(root, stems):
    """uint8 images (H, W, C) and float32 masks (H, W) of mask > 0, paired by file stem."""
    images, masks = [], []
    files = {os.path.splitext(f)[0]: f for f in os.listdir(os.path.join(root, "images"))}
    mfiles = {os.path.splitext(f)[0]: f for f in os.listdir(os.path.join(root, "masks"))}
    for s in stems:
        im = np.asarray(Image.open(os.path.join(root, "images", files[s])))
        if im.ndim == 2:
            im = im[:, :, None]
        m = np.asarray(Image.open(os.path.join(root, "masks", mfiles[s])))
        if m.ndim == 3:
            m = m[:, :, 0]
        images.append(np.ascontiguousarray(im[:, :, :3]))
        masks.append((m > 0).astype(np.float32))
    return images, masks


def save_safetensors(path, state):
    """A safetensors file of a state_dict (float32 and int64 tensors), written atomically."""
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        t = t.detach().contiguous().cpu()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder with images/ and masks/")
    ap.add_argument("--split", required=True, help="bench/splits/*.json: the stems to train on")
    ap.add_argument("--budget", type=float, required=True, help="seconds of training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="the last model's state_dict (safetensors)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--reference", default=None)
    a = ap.parse_args()

    sys.path.insert(0, find_reference(a.reference))
    from unet_reference import UNet, bce_jaccard_loss  # noqa: E402

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    with open(a.split) as f:
        stems = json.load(f)["train"]
    images, masks = load_pairs(a.data, stems)
    channels = images[0].shape[2]
    net = UNet(in_channels=channels, out_channels=1, width=a.width, depth=4)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)

    def crop(k):
        im, m = images[k], masks[k]
        y = rng.integers(0, im.shape[0] - a.crop + 1)
        x = rng.integers(0, im.shape[1] - a.crop + 1)
        ci, cm = im[y:y + a.crop, x:x + a.crop], m[y:y + a.crop, x:x + a.crop]
        if rng.random() < 0.5:
            ci, cm = ci[:, ::-1], cm[:, ::-1]
        if rng.random() < 0.5:
            ci, cm = ci[::-1], cm[::-1]
        return ci, cm

    steps, seen = 0, 0
    order = []
    start = time.perf_counter()
    while time.perf_counter() - start < a.budget:
        if len(order) < a.batch:
            order += list(rng.permutation(len(images)))
        ks, order = order[:a.batch], order[a.batch:]
        pairs = [crop(k) for k in ks]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(np.stack([p[1] for p in pairs])[:, None].copy())
        opt.zero_grad(set_to_none=True)
        loss = bce_jaccard_loss(net(x), y)
        loss.backward()
        opt.step()
        steps += 1
        seen += len(ks)
    seconds = time.perf_counter() - start
    save_safetensors(a.out, net.state_dict())
    print(json.dumps({"steps": steps, "seconds": seconds, "images": seen, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
