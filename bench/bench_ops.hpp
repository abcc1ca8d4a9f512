// What each family's bench file gives the table in bench/registry.cpp: one run
// function per op (it fills the result; the tool names it and prints it) and
// the option groups that several of a family's entries share.
#pragma once

#include <cstdint>
#include <vector>

#include "bench.hpp"
#include "kvserve/sampling.hpp"

namespace kvserve::cli {

using RunFn = Status(const Options&, const BenchContext&, BenchResult*);

// bench_attention.cpp. Options: heads, dtype, soft-cap and window; paged ones
// add the page size, KV dtype and layout.
std::vector<OptionSpec> with_head_options(std::vector<OptionSpec> specs);
std::vector<OptionSpec> with_paged_options(std::vector<OptionSpec> specs);
RunFn run_decode, run_single_decode, run_prefill, run_paged_prefill, run_cascade;

RunFn run_merge;                                          // bench_merge.cpp
RunFn run_gdn, run_gdn_decode;                            // bench_gdn.cpp
RunFn run_append, run_mla_append, run_cache_append;       // bench_kv_cache.cpp
RunFn run_mla_decode;                                     // bench_mla.cpp

// bench_norm.cpp
enum class NormVariant { plain, fused_add, qk };
std::vector<OptionSpec> norm_options(NormVariant variant);
Status run_norm(NormVariant variant, const Options& o, const BenchContext& ctx, BenchResult* r);

// bench_sampling.cpp. Options: --batch (its defaults given) and --vocab, then `more`.
std::vector<OptionSpec> rows_options(std::int64_t gpu_batch, std::int64_t cpu_batch, std::vector<OptionSpec> more);
Status run_sampling(SamplingFilter filter, const Options& o, const BenchContext& ctx, BenchResult* r);
Status run_renorm(bool mask, const Options& o, const BenchContext& ctx, BenchResult* r);
RunFn run_spec_verify, run_penalty;

}  // namespace kvserve::cli
