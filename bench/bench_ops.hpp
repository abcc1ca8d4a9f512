// One factory per benchmark entry, defined in the family's bench file.
#pragma once

#include "bench.hpp"

namespace kvserve::cli {

BenchOp decode_bench();  // bench_attention.cpp

}  // namespace kvserve::cli
