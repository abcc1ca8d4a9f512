// `kvserve demo`: the continuous-batching serving loop (demo.cpp).
#pragma once

#include <vector>

#include "options.hpp"

namespace kvserve::cli {

std::vector<OptionSpec> demo_options();
// Runs the demo; returns the process exit code (throws BadOption for bad options).
int run_demo(const Options& o);

}  // namespace kvserve::cli
