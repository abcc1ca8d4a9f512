"""PyTorch peers for the prefill shapes of `kvserve bench paged-prefill`.

scaled_dot_product_attention on the same shapes with the KV laid out
contiguously, [B, H, L, D] bf16, once per backend (flash, cuDNN): a causal
chunk of q-len queries at the end of kv-len keys (lower-right causal mask,
kvserve's convention) and whole prompts (q-len = kv-len). GQA goes through
enable_gqa where the backend takes it, else K/V are expanded to the query
heads beforehand (outside the timing). Timed like kvserve's bench: a
device-side sleep covers the Python-side launch, median of --iters runs.
TFLOP/s counts 4 * D flops per visible (query, key) pair and query head, as
kvserve's bench does. Writes {"peers": [{"shape", "peer", "time_us", "tflops"}]}.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right

from peer_timing import time_us

HQ, HKV = 32, 8
# (batch, q_len, kv_len, head_dim, causal): paged-prefill's default chunk,
# and whole prompts.
SHAPES = [(8, 1024, 8192, 128, True), (8, 4096, 4096, 128, True), (1, 8192, 8192, 128, True)]
# --issue14: the rows of issue 14's table (scripts/gpu_benchmarks.txt, stage prefill).
ISSUE14 = [(8, 4096, 4096, 128, True), (8, 4096, 4096, 128, False), (1, 8192, 8192, 128, True),
           (8, 2048, 2048, 128, True), (8, 4096, 4096, 64, True), (8, 4096, 4096, 256, True),
           (8, 1024, 8192, 128, True)]
BACKENDS = [("flash", SDPBackend.FLASH_ATTENTION), ("cuDNN", SDPBackend.CUDNN_ATTENTION)]


def visible_pairs(q_len, kv_len, causal):
    if not causal:
        return q_len * kv_len
    return q_len * (kv_len - q_len) + q_len * (q_len + 1) // 2


def sdpa_call(q, k, v, q_len, kv_len, causal):
    if not causal:
        mask = {}
    else:
        mask = dict(is_causal=True) if q_len == kv_len else dict(attn_mask=causal_lower_right(q_len, kv_len))
    expanded = (k.repeat_interleave(HQ // HKV, dim=1), v.repeat_interleave(HQ // HKV, dim=1))

    def gqa():
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **mask)

    def full_heads():
        return F.scaled_dot_product_attention(q, *expanded, **mask)

    return gqa, full_heads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--issue14", action="store_true", help="the shapes of issue 14's prefill table")
    args = parser.parse_args()
    results = []
    for batch, q_len, kv_len, D, causal in ISSUE14 if args.issue14 else SHAPES:
        q = torch.randn(batch, HQ, q_len, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, HKV, kv_len, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, HKV, kv_len, D, device="cuda", dtype=torch.bfloat16)
        flops = 4.0 * D * HQ * batch * visible_pairs(q_len, kv_len, causal)
        shape = f"B={batch} q={q_len} L={kv_len} D={D}" + ("" if causal else " non-causal")
        for name, backend in BACKENDS:
            t, how = None, None
            for variant, fn in zip(("enable_gqa", "expanded KV"), sdpa_call(q, k, v, q_len, kv_len, causal)):
                try:
                    with sdpa_kernel(backend):
                        t = time_us(lambda _: fn(), args.iters)
                    how = variant
                    break
                except RuntimeError as e:
                    how = f"unsupported ({str(e).splitlines()[0][:80]})"
            if t is None:
                print(f"SDPA {name} {shape}: {how}", flush=True)
                continue
            results.append({"shape": shape, "peer": f"torch SDPA {name} ({how})", "time_us": t,
                            "tflops": flops / t / 1e6})
            print(f"SDPA {name} {shape} ({how}): {t:.1f} us, {flops / t / 1e6:.1f} TFLOP/s", flush=True)
        del q, k, v
    with open(args.json, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "peers": results}, f, indent=1)


if __name__ == "__main__":
    main()
