// The benchmark table: one entry per op family's bench file.
#include "bench.hpp"
#include "bench_ops.hpp"

namespace kvserve::cli {

const std::vector<BenchOp>& bench_ops() {
  static const std::vector<BenchOp> ops = {
      decode_bench(),
  };
  return ops;
}

}  // namespace kvserve::cli
