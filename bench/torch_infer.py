"""PyTorch peer of bench/infer.ts: the reference UNet's forward pass as a tuned PyTorch user runs
inference: eval mode, channels_last, torch.no_grad(), torch.compile off, bf16 through
torch.autocast (only asked for where the CPU has bf16; bench/infer.ts decides). It serves rounds so
that the two implementations alternate in one run: after warm-up it prints {"ready": ...}, then for
each line "run N" on stdin it times N forward passes (each ending with the logits in float32, as
patho's) and prints {"ms": [...]}; "quit" ends it. Not part of the package: patho never needs Python.

  python3 bench/torch_infer.py --width 16 --size 512 --batch 4 --precision fp32 [--device cpu]
"""
import argparse
import json
import os
import sys
import time


def find_reference(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit] if explicit else [
        here,                                                   # a kit may copy it beside this file
        os.path.join(here, "..", "..", "shared", "reference"),  # ../shared/reference from the repo root
        os.path.join(here, "..", "..", "..", "shared", "reference"),  # from dist/bench
    ]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "unet_reference.py")):
            return os.path.abspath(c)
    sys.exit("torch_infer.py: Expected unet_reference.py in one of %s (or --reference DIR)" % candidates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reference", default=None, help="folder holding unet_reference.py")
    args = ap.parse_args()
    if args.size % 2 ** args.depth:
        sys.exit("torch_infer.py: Expected --size to be a multiple of %d but received %d" % (2 ** args.depth, args.size))

    sys.path.insert(0, find_reference(args.reference))
    import torch
    from unet_reference import UNet

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = UNet(in_channels=3, out_channels=1, width=args.width, depth=args.depth).to(dev)
    net = net.to(memory_format=torch.channels_last).eval()
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).to(memory_format=torch.channels_last)
    amp = args.precision == "bf16"

    def forward():
        with torch.no_grad(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            y = net(x)
        y = y.float()
        if cuda:
            torch.cuda.synchronize(dev)
        return y

    for _ in range(args.warmup):
        forward()
    print(json.dumps({"ready": True, "framework": "pytorch %s" % torch.__version__,
                      "threads": torch.get_num_threads(), "precision": args.precision}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] != "run" or len(cmd) != 2 or not cmd[1].isdigit():
            sys.exit("torch_infer.py: Expected 'run N' or 'quit' but received %r" % line)
        ms = []
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            forward()
            ms.append(1000 * (time.perf_counter() - t0))
        print(json.dumps({"ms": ms}), flush=True)


if __name__ == "__main__":
    main()
