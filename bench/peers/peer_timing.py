"""How every PyTorch peer is timed, the same way kvserve's bench times itself:
the median of `iters` runs, each bracketed by CUDA events while a device-side
sleep (~100 us of GPU time) covers the Python-side launch, so launch latency
stays outside the events. `fn(i)` gets the run's index modulo `copies`, so a
peer can rotate over copies of its inputs (more than the L2 between two uses
of a byte)."""
import statistics

import torch


def time_us(fn, iters, copies=1, warmup=3):
    for i in range(warmup):
        fn(i % copies)
    times = []
    for i in range(iters):
        torch.cuda._sleep(200_000)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i % copies)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)
