"""PyTorch CPU baseline for bench/train-step.ts: the reference UNet (../shared/reference), its
BCE - log(Jaccard) loss and Adam, float32 (or --precision bf16: torch.autocast("cpu", bfloat16), PyTorch's
mixed precision), on the same synthetic batch shape as patho's benchmark.
Times both memory formats (contiguous NCHW and channels_last) and reports the faster one (by median
step time; the fastest single step is reported too), so the baseline is the best PyTorch CPU offers here. Prints one JSON line. Not part of the package.

  python3 bench/torch_train_step.py --width 16 --size 256 --batch 4 --steps 10
"""
import argparse
import json
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("PATHO_REFERENCE", os.path.join(here, "..", "..", "shared", "reference")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    import torch
    from unet_reference import UNet, bce_jaccard_loss
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    results = {}
    for fmt in ("contiguous", "channels_last"):
        mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        net = UNet(in_channels=a.in_channels, out_channels=1, width=a.width, depth=a.depth).to(memory_format=mf)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.randn(a.batch, a.in_channels, a.size, a.size).to(memory_format=mf)
        target = (torch.rand(a.batch, 1, a.size, a.size) > 0.5).float()

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                logits = net(x)
            loss = bce_jaccard_loss(logits.float(), target)
            loss.backward()
            opt.step()
            return loss.item()

        for _ in range(a.warmup):
            step()
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        times.sort()
        med = times[len(times) // 2]
        results[fmt] = {"msPerStep": med * 1e3, "imagesPerSecond": a.batch / med, "bestMsPerStep": times[0] * 1e3}
    best = max(results, key=lambda k: results[k]["imagesPerSecond"])
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "precision": a.precision, "best": best, **results[best], "formats": results}))


if __name__ == "__main__":
    main()
