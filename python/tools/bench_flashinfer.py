"""kvserve.flashinfer against plain PyTorch at one shape each for decode,
prefill and top-p sampling: host microseconds per call (the Python overhead a
serving loop pays, measured without synchronising) and device time per call
(CUDA events over many back-to-back calls). Prints a markdown table.

    python python/tools/bench_flashinfer.py            # on the GPU (bf16)
    python python/tools/bench_flashinfer.py --small    # a CPU sanity run
"""

import argparse
import time

import torch
import torch.nn.functional as F

import kvserve.flashinfer as flashinfer


def measure(fn, iters, device):
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start_host = time.perf_counter()
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
    for _ in range(iters):
        fn()
    host_us = (time.perf_counter() - start_host) / iters * 1e6
    if device.type == "cuda":
        end.record()
        sync()
        device_us = begin.elapsed_time(end) / iters * 1e3
    else:
        device_us = (time.perf_counter() - start_host) / iters * 1e6
    return host_us, device_us


def decode_case(device, dtype, small):
    batch, hq, hk, d, length, page = (4, 8, 2, 64, 256, 16) if small else (64, 32, 8, 128, 2048, 16)
    pages_per = length // page
    cache = torch.randn(batch * pages_per, 2, page, hk, d, device=device, dtype=dtype)
    indptr = torch.arange(0, batch * pages_per + 1, pages_per, dtype=torch.int32, device=device)
    indices = torch.randperm(batch * pages_per, device=device).to(torch.int32)
    last = torch.full((batch,), page, dtype=torch.int32, device=device)
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(64 << 20, dtype=torch.uint8, device=device))
    wrapper.plan(indptr, indices, last, hq, hk, d, page, q_data_type=dtype)
    q = torch.randn(batch, hq, d, device=device, dtype=dtype)
    # PyTorch: SDPA over the same KV already gathered into a dense [B, H, L, D] cache.
    k = cache[indices.long(), 0].reshape(batch, length, hk, d).transpose(1, 2)
    v = cache[indices.long(), 1].reshape(batch, length, hk, d).transpose(1, 2)
    k, v = k.repeat_interleave(hq // hk, 1).contiguous(), v.repeat_interleave(hq // hk, 1).contiguous()
    qt = q[:, :, None]
    shape = f"B={batch} H={hq}/{hk} d={d} kv_len={length} page={page}"
    return shape, (lambda: wrapper.run(q, cache)), (lambda: F.scaled_dot_product_attention(qt, k, v))


def prefill_case(device, dtype, small):
    length, hq, hk, d = (128, 8, 2, 64) if small else (2048, 32, 8, 128)
    q = torch.randn(length, hq, d, device=device, dtype=dtype)
    k = torch.randn(length, hk, d, device=device, dtype=dtype)
    v = torch.randn(length, hk, d, device=device, dtype=dtype)
    qt = q.transpose(0, 1)[None]
    kt = k.transpose(0, 1).repeat_interleave(hq // hk, 0)[None].contiguous()
    vt = v.transpose(0, 1).repeat_interleave(hq // hk, 0)[None].contiguous()
    shape = f"L={length} H={hq}/{hk} d={d} causal"
    return (shape, (lambda: flashinfer.single_prefill_with_kv_cache(q, k, v, causal=True)),
            (lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)))


def top_p_case(device, dtype, small):
    batch, vocab, top_p = (4, 4096, 0.9) if small else (64, 128256, 0.9)
    probs = torch.softmax(torch.randn(batch, vocab, device=device), -1)

    def torch_top_p():
        sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p
        sorted_p = sorted_p * keep
        pick = torch.multinomial(sorted_p, 1)
        return order.gather(-1, pick)

    shape = f"B={batch} vocab={vocab} top_p={top_p}"
    return shape, (lambda: flashinfer.top_p_sampling_from_probs(probs, top_p, seed=1, offset=0)), torch_top_p


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="small shapes (a CPU sanity run)")
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    iters = args.iters if device.type == "cuda" else max(3, args.iters // 50)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}, dtype {dtype}, {iters} calls each; host us: the Python call returning (no sync), "
          "device us: CUDA events over the back-to-back calls\n")
    print("| op | shape | kvserve.flashinfer host us | device us | PyTorch host us | device us |")
    print("| --- | --- | --- | --- | --- | --- |")
    for op, case in (("decode", decode_case), ("prefill", prefill_case), ("top-p", top_p_case)):
        shape, ours, theirs = case(device, dtype, args.small)
        a, b = measure(ours, iters, device), measure(theirs, iters, device)
        print(f"| {op} | {shape} | {a[0]:.1f} | {a[1]:.1f} | {b[0]:.1f} | {b[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
