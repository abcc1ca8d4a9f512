"""PyTorch peers for issue 5's sampling shapes, timed like kvserve's bench.

The textbook ways to sample on the GPU without a dedicated kernel, on the same
inputs kvserve's bench uses (f32 probabilities, the row softmax of logits
~ N(0, 3^2)): top-p by a full sort + cumsum + mask + multinomial, top-k by
torch.topk + multinomial, min-p by a max + mask + multinomial, top-k + top-p
by topk then sort-free cumsum over the k survivors, top-k renorm by topk +
scatter, speculative verification by gathers + residual + multinomial, and
penalties by gather + scatter of the seen tokens. Runs rotate over copies of
the inputs so that more than twice the L2 is read between two uses of a byte;
the GPU is kept busy (a device-side sleep) while Python enqueues the timed
call; the median of --iters runs is reported. Writes one JSON document:
{"peers": [{"op", "shape", "peer", "time_us"}]}.
"""
import argparse
import json

import torch

from peer_timing import time_us

VOCAB = 128256


def probs_copies(batch, l2_bytes):
    copies = max(1, -(-2 * l2_bytes // (batch * VOCAB * 4)))
    return [torch.softmax(3 * torch.randn(batch, VOCAB, device="cuda"), dim=-1) for _ in range(copies)]


def top_p_sorted(p, top_p):
    sorted_p, order = torch.sort(p, dim=-1, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before >= top_p, 0)
    return order.gather(-1, torch.multinomial(sorted_p, 1))


def top_k(p, k):
    values, order = torch.topk(p, k, dim=-1)
    return order.gather(-1, torch.multinomial(values, 1))


def min_p(p, m):
    floor = p.amax(dim=-1, keepdim=True) * m
    return torch.multinomial(p.masked_fill(p < floor, 0), 1)


def top_k_top_p(p, k, top_p):
    values, order = torch.topk(p, k, dim=-1)
    values = values / values.sum(dim=-1, keepdim=True)
    before = torch.cumsum(values, dim=-1) - values
    return order.gather(-1, torch.multinomial(values.masked_fill(before >= top_p, 0), 1))


def top_k_renorm(p, k):
    values, order = torch.topk(p, k, dim=-1)
    return torch.zeros_like(p).scatter_(-1, order, values / values.sum(dim=-1, keepdim=True))


def top_k_mask(x, k):
    kth = torch.topk(x, k, dim=-1).values[:, -1:]
    return x.masked_fill(x < kth, float("-inf"))


def spec_verify(draft_ids, draft, target):
    batch, n = draft_ids.shape
    q = draft.gather(-1, draft_ids.unsqueeze(-1)).squeeze(-1)
    p = target[:, :n].gather(-1, draft_ids.unsqueeze(-1)).squeeze(-1)
    passed = torch.rand(batch, n, device="cuda") * q < p
    emitted = torch.where(passed.all(-1), n, (~passed).int().argmax(-1))
    rows = torch.arange(batch, device="cuda")
    residual = (target[rows, emitted] - torch.cat([draft, draft[:, :1]], 1)[rows, emitted]).clamp_min(0)
    residual = torch.where((emitted == n).unsqueeze(-1), target[rows, emitted], residual)
    return torch.multinomial(residual, 1), emitted


def penalties(logits, ids, rep=1.2, freq=0.1, pres=0.2):
    counts = torch.zeros_like(logits, dtype=torch.int32).scatter_add_(-1, ids, torch.ones_like(ids, dtype=torch.int32))
    seen = counts > 0
    x = torch.where(logits > 0, logits / rep, logits * rep)
    x = x - freq * counts - pres
    return torch.where(seen, x, logits)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    props = torch.cuda.get_device_properties(0)
    l2 = props.L2_cache_size
    results = []

    def record(op, shape, peer, t):
        results.append({"op": op, "shape": shape, "peer": peer, "time_us": t})
        print(f"{op:12s} {shape:28s} {peer:36s} {t:9.1f} us", flush=True)

    for batch in (1, 64, 512):
        ps = probs_copies(batch, l2)
        record("top-p", f"B={batch} p=0.9", "sort+cumsum+multinomial",
               time_us(lambda c: top_p_sorted(ps[c], 0.9), args.iters, len(ps)))
        del ps
    ps = probs_copies(512, l2)
    record("top-k", "B=512 k=50", "topk+multinomial", time_us(lambda c: top_k(ps[c], 50), args.iters, len(ps)))
    record("min-p", "B=512 min_p=0.1", "amax+mask+multinomial", time_us(lambda c: min_p(ps[c], 0.1), args.iters, len(ps)))
    record("top-k-top-p", "B=512 k=50 p=0.9", "topk+cumsum+multinomial",
           time_us(lambda c: top_k_top_p(ps[c], 50, 0.9), args.iters, len(ps)))
    record("renorm", "B=512 top-k 50", "topk+scatter", time_us(lambda c: top_k_renorm(ps[c], 50), args.iters, len(ps)))
    del ps
    xs = [3 * torch.randn(512, VOCAB, device="cuda") for _ in range(max(1, -(-2 * l2 // (512 * VOCAB * 4))))]
    record("mask", "B=512 top-k 50", "topk+masked_fill", time_us(lambda c: top_k_mask(xs[c], 50), args.iters, len(xs)))
    del xs

    n, batch = 4, 512
    target = torch.softmax(3 * torch.randn(batch, n + 1, VOCAB, device="cuda"), dim=-1)
    draft = torch.softmax(3 * torch.randn(batch, n, VOCAB, device="cuda"), dim=-1)
    draft_ids = draft.argmax(-1)
    record("spec-verify", f"B={batch} n={n}", "gather+residual+multinomial",
           time_us(lambda c: spec_verify(draft_ids, draft, target), args.iters, 1))
    del target, draft

    logits = [3 * torch.randn(256, VOCAB, device="cuda") for _ in range(2)]
    ids = torch.randint(0, VOCAB, (256, 2048), device="cuda")
    record("penalty", "B=256 L=2048 ids", "scatter_add+where", time_us(lambda c: penalties(logits[c], ids), args.iters, 2))

    with open(args.json, "w") as f:
        json.dump({"device": props.name, "torch": torch.__version__, "peers": results}, f, indent=1)


if __name__ == "__main__":
    main()
