"""PyTorch reference training step, for comparing patho's step time on the same machine.

Runs the reference UNet (unet_reference.py: the spec patho follows) with its BCE - log(Jaccard)
loss and Adam, on synthetic data, the way a tuned PyTorch user would on a GPU: AMP bf16,
channels_last, torch.backends.cudnn.benchmark. Prints a table and one JSON line (like bench/*.ts).
Not part of the package: patho never needs Python.

  python3 bench/torch_step.py --device cuda --width 64 --size 512 --batch 16           # GPU target
  python3 bench/torch_step.py --device cpu --width 16 --size 256 --batch 4 --precision fp32
"""
import argparse
import json
import os
import sys
import time


def find_reference(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit] if explicit else [
        here,                                                         # the GPU kit copies it beside this file
        os.path.join(here, "..", "..", "shared", "reference"),        # ../shared/reference from the repo root
    ]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "unet_reference.py")):
            return os.path.abspath(c)
    sys.exit("torch_step.py: Expected unet_reference.py in one of %s (or --reference DIR)" % candidates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", choices=["bf16", "fp32", "tf32"], default="bf16",
                    help="bf16: autocast bfloat16 (AMP); fp32: exact float32; tf32: float32 with TF32 matmuls/convs")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--reference", default=None, help="folder holding unet_reference.py")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    if args.size % 16:
        sys.exit("torch_step.py: Expected --size to be a multiple of 16 but received %d" % args.size)

    sys.path.insert(0, find_reference(args.reference))
    import torch
    from unet_reference import UNet, bce_jaccard_loss

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("torch_step.py: --device cuda but torch.cuda.is_available() is False")
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"

    torch.manual_seed(0)
    net = UNet(in_channels=3, out_channels=1, width=args.width).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).to(memory_format=torch.channels_last)
    yy, xx = torch.meshgrid(torch.arange(args.size), torch.arange(args.size), indexing="ij")
    disc = (((yy - args.size / 2) ** 2 + (xx - args.size / 2) ** 2) < (args.size / 4) ** 2).float()
    target = disc.expand(args.batch, 1, args.size, args.size).contiguous().to(dev)

    amp = args.precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        loss = bce_jaccard_loss(logits.float(), target)  # the loss in float32, as AMP recommends
        loss.backward()
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        loss = step()
    sync()
    warm = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    elapsed = time.perf_counter() - t0
    ms = 1000 * elapsed / args.steps
    result = {
        "bench": "torch_step",
        "framework": "pytorch %s" % torch.__version__,
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu (%d threads)" % torch.get_num_threads(),
        "width": args.width, "size": args.size, "batch": args.batch,
        "precision": args.precision + ("-amp" if amp else ""), "channelsLast": True,
        "cudnnBenchmark": bool(cuda),
        "warmupSeconds": round(warm, 3),
        "msPerStep": round(ms, 3),
        "imagesPerSecond": round(1000 * args.batch / ms, 2),
        "peakMemoryBytes": int(torch.cuda.max_memory_allocated(dev)) if cuda else None,
        "finalLoss": round(float(loss.detach()), 5),
    }
    if not args.json:
        print("%-34s %-8s %-9s %10s %12s" % ("implementation", "device", "precision", "ms/step", "images/s"))
        print("%-34s %-8s %-9s %10.1f %12.2f" % (result["framework"], dev.type, result["precision"], ms,
                                                  result["imagesPerSecond"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
