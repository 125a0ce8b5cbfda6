"""PyTorch peer of patho's slide inference, for bench/slide.ts: the reference UNet (unet_reference.py)
with a patho checkpoint's weights and input normalisation, eval mode, channels_last, torch.no_grad
(and autocast bf16 with --precision bf16), over the same tiles as patho: the same tile size, the
same evenly spread overlapping tile starts, batches of --batch tiles, sigmoid, and the same Gaussian
blend (sigma = tile/8, weights floored at 1e-3). The input is a raw RGB region that bench/slide.ts
read from the synthetic slide, so both sides predict the same pixels. Prints one JSON line.
Not part of the package: patho never needs Python.

  python3 bench/torch_slide.py --input region.rgb --width 4096 --height 4096 --checkpoint model.safetensors
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np


def find_reference(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    for c in ([explicit] if explicit else [here, os.path.join(here, "..", "..", "shared", "reference")]):
        if c and os.path.isfile(os.path.join(c, "unet_reference.py")):
            return os.path.abspath(c)
    sys.exit("torch_slide.py: Expected unet_reference.py beside this file or in ../shared/reference (or --reference DIR)")


def read_safetensors(path):
    """Tensors (float32 numpy) and string metadata of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    sizes = {"F32": ("<f4", 4), "I64": ("<i8", 8), "F64": ("<f8", 8)}
    out = {}
    for name, e in header.items():
        dt, _ = sizes[e["dtype"]]
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(e["shape"])
    return out, meta


def tile_starts(length, tile, overlap):
    """patho's lib/predict/tiled.ts tileStarts."""
    if length <= tile:
        return [0]
    stride = max(1, math.floor(tile * (1 - overlap)))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def blend_weights(tile):
    c = (tile - 1) / 2
    sigma = tile / 8
    y, x = np.mgrid[0:tile, 0:tile].astype(np.float32)
    w = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma * sigma))
    return np.maximum(w, 1e-3).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="raw RGB uint8, height x width x 3")
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--checkpoint", required=True, help="a patho checkpoint (safetensors)")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--warmup", type=int, default=1, help="batches run before timing")
    ap.add_argument("--reference")
    args = ap.parse_args()

    sys.path.insert(0, find_reference(args.reference))
    import torch
    from unet_reference import UNet

    if args.threads:
        torch.set_num_threads(args.threads)
    tensors, meta = read_safetensors(args.checkpoint)
    cfg = json.loads(meta["patho.model"])
    norm = json.loads(meta.get("patho.normalization", "null")) or {"mean": [0, 0, 0], "std": [1, 1, 1]}
    net = UNet(cfg["inChannels"], cfg["outChannels"], cfg["width"], cfg["depth"])
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
    dev = torch.device(args.device)
    net = net.to(dev).eval().to(memory_format=torch.channels_last)

    img = np.fromfile(args.input, dtype=np.uint8).reshape(args.height, args.width, 3)
    T = min(args.tile, math.ceil(max(args.width, args.height) / 2 ** cfg["depth"]) * 2 ** cfg["depth"])
    xs, ys = tile_starts(args.width, T, args.overlap), tile_starts(args.height, T, args.overlap)
    tiles = [(x, y) for y in ys for x in xs]
    mean = torch.tensor(norm["mean"], device=dev).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"], device=dev).view(1, 3, 1, 1)
    w = blend_weights(T)
    acc = np.zeros((args.height, args.width), np.float32)
    wsum = np.zeros((args.height, args.width), np.float32)

    def run(batch):
        x = np.stack([img[y:y + T, x0:x0 + T] for (x0, y) in batch])
        t = torch.from_numpy(x).to(dev).permute(0, 3, 1, 2).float().div_(255)
        t = ((t - mean) / std).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            p = torch.sigmoid(net(t).float())[:, 0].cpu().numpy()
        for (x0, y), pi in zip(batch, p):
            acc[y:y + T, x0:x0 + T] += w * pi
            wsum[y:y + T, x0:x0 + T] += w

    batches = [tiles[i:i + args.batch] for i in range(0, len(tiles), args.batch)]
    for b in batches[:args.warmup]:
        run(b)
    acc[:] = 0
    wsum[:] = 0
    t0 = time.perf_counter()
    for b in batches:
        run(b)
    prob = acc / np.maximum(wsum, 1e-12)
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(), "precision": args.precision,
                      "tiles": len(tiles), "tile": T, "seconds": secs, "tilesPerSecond": len(tiles) / secs,
                      "megapixelsPerSecond": args.width * args.height / secs / 1e6, "meanProbability": float(prob.mean())}))


if __name__ == "__main__":
    main()
