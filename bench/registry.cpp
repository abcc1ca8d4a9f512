// The benchmark table: one entry per op family's bench file.
#include "bench.hpp"
#include "bench_ops.hpp"

namespace kvserve::cli {

const std::vector<BenchOp>& bench_ops() {
  static const std::vector<BenchOp> ops = {
      decode_bench(),
      single_decode_bench(), prefill_bench(), paged_prefill_bench(), cascade_bench(), merge_bench(),
      rmsnorm_bench(), fused_add_rmsnorm_bench(), qk_norm_bench(),
      gdn_bench(),
      append_bench(), mla_append_bench(), cache_append_bench(), mla_decode_bench(),
      top_p_bench(), top_k_bench(), min_p_bench(), top_k_top_p_bench(), renorm_bench(), mask_bench(), spec_verify_bench(), penalty_bench(),
  };
  return ops;
}

}  // namespace kvserve::cli
