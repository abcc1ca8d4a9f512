// The libFuzzer entry point every target links: decodes the input and runs
// the case its first byte picks from the target's fuzz_cases().
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kvserve::fuzz;
  FuzzInput in(data, size);
  Arena arena(in);
  const std::vector<FuzzCase>& cases = fuzz_cases();
  const int pick = cases.size() == 1 ? 0 : in.pick(static_cast<int>(cases.size()));
  cases[static_cast<std::size_t>(pick)](in, arena);
  return 0;
}
