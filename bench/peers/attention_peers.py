"""PyTorch peers for issue 4's decode shapes, timed like kvserve's bench.

scaled_dot_product_attention (enable_gqa=True) on the same shapes with the KV
laid out contiguously, [B, H_kv, L, D] bf16, measured as kvserve's bench is:
runs rotate over copies of the inputs so that more than twice the L2 is read
between two uses of a byte, the GPU is kept busy (a device-side sleep) while
Python enqueues the timed call so that launch latency stays outside the
events, and the median of --iters runs is reported.
Writes one JSON document: {"peers": [{"shape", "peer", "time_us", "bytes"}]}.
"""
import argparse
import json

import torch
import torch.nn.functional as F

from peer_timing import time_us

DECODE_SHAPES = [(1, 4096), (16, 4096), (64, 4096), (128, 2048), (8, 32768), (1, 32768)]
HQ, HKV, D = 32, 8, 128


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()
    props = torch.cuda.get_device_properties(0)
    results = []
    for batch, kv_len in DECODE_SHAPES:
        kv_bytes = 2 * batch * kv_len * HKV * D * 2
        copies = max(1, -(-2 * props.L2_cache_size // kv_bytes))
        q = torch.randn(batch, HQ, 1, D, device="cuda", dtype=torch.bfloat16)
        ks = [torch.randn(batch, HKV, kv_len, D, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        vs = [torch.randn(batch, HKV, kv_len, D, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        t = time_us(lambda c: F.scaled_dot_product_attention(q, ks[c], vs[c], enable_gqa=True), args.iters, copies)
        bytes_moved = kv_bytes + 2 * batch * HQ * D * 2
        results.append({"shape": f"B={batch} L={kv_len}", "peer": "torch SDPA (contiguous KV)",
                        "time_us": t, "bytes": bytes_moved})
        print(f"SDPA B={batch} L={kv_len}: {t:.1f} us, {bytes_moved / t / 1e6:.3f} TB/s", flush=True)
        del q, ks, vs
    with open(args.json, "w") as f:
        json.dump({"device": props.name, "torch": torch.__version__, "peers": results}, f, indent=1)


if __name__ == "__main__":
    main()
