// One factory per benchmark entry, defined in the family's bench file.
#pragma once

#include "bench.hpp"

namespace kvserve::cli {

BenchOp decode_bench(); BenchOp single_decode_bench(); BenchOp prefill_bench();  // bench_attention.cpp
BenchOp paged_prefill_bench(); BenchOp cascade_bench();                          // bench_attention.cpp
BenchOp merge_bench();  // bench_merge.cpp
BenchOp rmsnorm_bench(); BenchOp fused_add_rmsnorm_bench(); BenchOp qk_norm_bench();  // bench_norm.cpp
BenchOp gdn_bench();  // bench_gdn.cpp
BenchOp append_bench(); BenchOp mla_append_bench(); BenchOp cache_append_bench();  // bench_kv_cache.cpp
BenchOp mla_decode_bench();  // bench_mla.cpp
BenchOp top_p_bench(); BenchOp top_k_bench(); BenchOp min_p_bench(); BenchOp top_k_top_p_bench(); BenchOp renorm_bench(); BenchOp mask_bench(); BenchOp spec_verify_bench(); BenchOp penalty_bench();  // bench_sampling.cpp

}  // namespace kvserve::cli
