"""PyTorch peers for the norm benchmarks, timed like kvserve's bench.

torch.nn.functional.rms_norm on the shapes `kvserve bench rmsnorm`,
`fused-add-rmsnorm` and `qk-norm` use on a GPU (bf16): [4096, 8192] rows,
the fused add as `residual += x` then rms_norm (two kernels: PyTorch has no
fused one), and the q heads of a fused qkv projection [4096, (32 + 2 * 8) *
128] normalised per head, in place. The GPU is kept busy (a device-side sleep)
while Python enqueues the timed call; the median of --iters runs is printed
with the bytes the op must move over the time.
"""
import argparse

import torch
import torch.nn.functional as F

from peer_timing import time_us


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    dt, tokens, hidden, eps = torch.bfloat16, 4096, 8192, 1e-6
    x = torch.randn(tokens, hidden, device="cuda", dtype=dt)
    residual = torch.randn_like(x)
    w = torch.randn(hidden, device="cuda", dtype=dt)
    heads, kv_heads, d = 32, 8, 128
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * d, device="cuda", dtype=dt)
    q = qkv[:, : heads * d].view(tokens, heads, d)
    wq = torch.randn(d, device="cuda", dtype=dt)

    def fused():
        residual.add_(x)
        return F.rms_norm(residual, (hidden,), w, eps)

    def qk():
        q.copy_(F.rms_norm(q, (d,), wq, eps))

    row = tokens * hidden * 2
    rows = [
        ("rmsnorm", f"tokens={tokens} H={hidden} bf16", lambda: F.rms_norm(x, (hidden,), w, eps), 2 * row),
        ("fused-add-rmsnorm", f"tokens={tokens} H={hidden} bf16", fused, 4 * row),
        ("qk-norm", f"tokens={tokens} heads={heads} D={d} bf16 in place", qk, 2 * tokens * heads * d * 2),
    ]
    print(f"PyTorch {torch.__version__} peers on {torch.cuda.get_device_name()}")
    print(f"{'op':<20} {'shape':<36} {'peer':<28} {'time (us)':>10} {'TB/s':>7}")
    for op, shape, fn, nbytes in rows:
        us = time_us(lambda _: fn(), args.iters)
        peer = "F.rms_norm" if op != "fused-add-rmsnorm" else "add_ + F.rms_norm"
        print(f"{op:<20} {shape:<36} {peer:<28} {us:10.1f} {nbytes / us / 1e6:7.3f}")


if __name__ == "__main__":
    main()
