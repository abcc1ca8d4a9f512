// Printing benchmark results: a table for people, JSON for tools.
#pragma once

#include <string>
#include <vector>

#include "bench.hpp"

namespace kvserve::cli {

void print_table(const std::vector<BenchResult>& results, Device device, double copy_bandwidth);
// Returns false when the file cannot be written.
bool write_json(const std::string& path, const std::vector<BenchResult>& results, Device device,
                double copy_bandwidth);

}  // namespace kvserve::cli
