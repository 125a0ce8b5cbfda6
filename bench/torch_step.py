"""PyTorch baseline for patho's training step: the reference UNet (unet_reference.py, the spec patho
follows), its BCE - log(Jaccard) loss and Adam, the way a tuned PyTorch user runs it. One script
for bench/train-step.ts (CPU), the GPU kit (scripts/gpu-check.sh) and the kit's step parity check.
Not part of the package: patho never needs Python.

Timing (prints a table, or with --json only one JSON line):
  python3 bench/torch_step.py --device cpu --width 16 --size 256 --batch 4 --precision fp32
  python3 bench/torch_step.py --device cuda --width 64 --size 512 --batch 16 --precision bf16
    precision fp32 (exact float32; TF32 off), tf32 (float32 with TF32 convolutions, CUDA only) or
    bf16 (torch.autocast bfloat16, PyTorch's AMP); cudnn.benchmark on CUDA. Memory format:
    --memory-format auto = on CPU the faster of contiguous and channels_last (both are timed), on
    CUDA patho's own for that precision (channels_last for bf16, contiguous otherwise).
    Each step is timed to its loss read (a device sync), the median is reported.

Parity (test/cuda/step-parity.ts writes DIR/weights.safetensors, DIR/batch.json, DIR/batch.bin):
  python3 bench/torch_step.py --parity DIR --device cuda --width 64 --precision bf16
    one forward/backward on those weights and that batch; writes DIR/torch-<precision>.json with
    the loss, statistics of the logits and the gradient norm of every parameter.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time


def find_reference(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit] if explicit else [
        os.environ.get("PATHO_REFERENCE_DIR"),
        here,                                                    # the GPU kit copies it beside this file
        os.path.join(here, "..", "..", "shared", "reference"),   # ../shared/reference from the repo root
    ]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "unet_reference.py")):
            return os.path.abspath(c)
    sys.exit("torch_step.py: Expected unet_reference.py in one of %s (or --reference DIR)" % [c for c in candidates if c])


def read_safetensors(path, torch):
    """The tensors of a safetensors file (an 8-byte header length, a JSON header, the data): F32 and I64."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": torch.float32, "I64": torch.int64}.get(meta["dtype"])
        if dtype is None:
            sys.exit("torch_step.py: Expected F32 or I64 tensors in %s but %s is %s" % (path, name, meta["dtype"]))
        b, e = meta["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=dtype).reshape(meta["shape"]).clone()
    return out


def configure(torch, dev, precision):
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"


def memory_format(torch, name):
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def parity(args, torch, UNet, loss_fn):
    dev = torch.device(args.device)
    configure(torch, dev, args.precision)
    with open(os.path.join(args.parity, "batch.json")) as f:
        meta = json.load(f)
    n, size, ch = meta["n"], meta["size"], meta["channels"]
    with open(os.path.join(args.parity, "batch.bin"), "rb") as f:
        blob = f.read()
    images = torch.frombuffer(bytearray(blob[:n * size * size * ch]), dtype=torch.uint8).reshape(n, size, size, ch)
    masks = torch.frombuffer(bytearray(blob[n * size * size * ch:]), dtype=torch.uint8).reshape(n, 1, size, size)
    mean = torch.tensor(meta["mean"]).view(1, ch, 1, 1)
    std = torch.tensor(meta["std"]).view(1, ch, 1, 1)
    # patho's upload: (px / 255 - mean) / std in float32, NCHW
    x = ((images.permute(0, 3, 1, 2).float() / 255.0 - mean) / std).to(dev)
    target = (masks > 0).float().to(dev)
    fmt = "channels_last" if args.precision == "bf16" else "contiguous"
    net = UNet(in_channels=ch, out_channels=1, width=args.width, depth=args.depth)
    net.load_state_dict(read_safetensors(os.path.join(args.parity, "weights.safetensors"), torch))
    net = net.to(dev).to(memory_format=memory_format(torch, fmt)).train()
    x = x.contiguous(memory_format=memory_format(torch, fmt))
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        logits = net(x)
    logits = logits.float()
    loss = loss_fn(logits, target)
    loss.backward()
    lg = logits.detach().double()
    grads = {name: float(p.grad.detach().double().norm()) for name, p in net.named_parameters()}
    out = {
        "framework": "pytorch %s" % torch.__version__, "device": args.device, "precision": args.precision, "memoryFormat": fmt,
        "loss": float(loss.detach()),
        "logits": {"mean": float(lg.mean()), "std": float(lg.std()), "min": float(lg.min()), "max": float(lg.max())},
        "gradNorms": grads,
        "gradNorm": float(sum(v * v for v in grads.values()) ** 0.5),
    }
    path = os.path.join(args.parity, "torch-%s.json" % args.precision)
    with open(path + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)
    print(json.dumps({"parity": path, "loss": out["loss"], "gradNorm": out["gradNorm"]}))


def time_steps(args, torch, UNet, loss_fn, dev, fmt):
    mf = memory_format(torch, fmt)
    torch.manual_seed(0)
    net = UNet(in_channels=args.in_channels, out_channels=1, width=args.width, depth=args.depth).to(dev).to(memory_format=mf)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    x = torch.randn(args.batch, args.in_channels, args.size, args.size, device=dev).contiguous(memory_format=mf)
    yy, xx = torch.meshgrid(torch.arange(args.size), torch.arange(args.size), indexing="ij")
    disc = (((yy - args.size / 2) ** 2 + (xx - args.size / 2) ** 2) < (args.size / 4) ** 2).float()
    target = disc.expand(args.batch, 1, args.size, args.size).contiguous().to(dev)
    amp = args.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        loss = loss_fn(logits.float(), target)  # the loss in float32, as AMP recommends
        loss.backward()
        opt.step()
        return loss.item()  # waits for the step, like patho's loss read

    t0 = time.perf_counter()
    first = None
    for _ in range(args.warmup):
        loss = step()
        first = loss if first is None else first
    warm = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(args.steps):
        s = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - s)
    med = statistics.median(times)
    return {
        "msPerStep": round(med * 1e3, 3), "bestMsPerStep": round(min(times) * 1e3, 3),
        "imagesPerSecond": round(args.batch / med, 3), "warmupSeconds": round(warm, 3),
        "peakMemoryBytes": int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None,
        "firstLoss": first, "lastLoss": loss,
    }


def bench(args, torch, UNet, loss_fn):
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("torch_step.py: --device cuda but torch.cuda.is_available() is False")
    if args.precision == "tf32" and not cuda:
        sys.exit("torch_step.py: Expected --precision fp32 or bf16 on the CPU (tf32 is a CUDA setting) but received tf32")
    if args.threads and not cuda:
        torch.set_num_threads(args.threads)
    configure(torch, dev, args.precision)
    if args.memory_format == "auto":
        formats = ["contiguous", "channels_last"] if not cuda else ["channels_last" if args.precision == "bf16" else "contiguous"]
    else:
        formats = [args.memory_format]
    results = {fmt: time_steps(args, torch, UNet, loss_fn, dev, fmt) for fmt in formats}
    best = max(results, key=lambda k: results[k]["imagesPerSecond"])
    result = {
        "bench": "torch-step", "torch": torch.__version__, "framework": "pytorch %s" % torch.__version__,
        "device": args.device, "deviceName": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "threads": None if cuda else torch.get_num_threads(),
        "width": args.width, "depth": args.depth, "size": args.size, "batch": args.batch, "inChannels": args.in_channels,
        "precision": args.precision, "amp": args.precision == "bf16", "cudnnBenchmark": cuda,
        "best": best, "memoryFormat": best, **results[best], "formats": results,
    }
    if not args.json:
        print("%-26s %-10s %-14s %10s %12s" % ("implementation", "precision", "memory format", "ms/step", "images/s"))
        for fmt, r in results.items():
            print("%-26s %-10s %-14s %10.1f %12.2f" % (result["framework"], args.precision, fmt, r["msPerStep"], r["imagesPerSecond"]))
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    ap.add_argument("--memory-format", choices=["auto", "contiguous", "channels_last"], default="auto")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's choice)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--reference", default=None, help="folder holding unet_reference.py")
    ap.add_argument("--parity", default=None, help="folder written by test/cuda/step-parity.ts: one step on its weights and batch")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    if args.size % (2 ** args.depth):
        sys.exit("torch_step.py: Expected --size to be a multiple of %d but received %d" % (2 ** args.depth, args.size))
    sys.path.insert(0, find_reference(args.reference))
    import torch
    from unet_reference import UNet, bce_jaccard_loss
    if args.parity:
        parity(args, torch, UNet, bce_jaccard_loss)
    else:
        bench(args, torch, UNet, bce_jaccard_loss)


if __name__ == "__main__":
    main()
