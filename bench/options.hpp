// Command-line options of the kvserve tool. Each command declares the options
// it takes; a value that does not fit its kind is reported in one line naming
// the option, and the tool exits with code 2.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kvserve/attention.hpp"

namespace kvserve::cli {

enum class OptKind {
  positive_int,  // > 0
  count,         // >= 0
  integer,       // any
  real,          // any finite
  dtype,         // f16 | bf16 | f32 | fp8_e4m3 | fp8_e5m2 (a KV cache's dtype)
  act_dtype,     // f16 | bf16 | f32 (queries, rows, activations: every op's non-cache dtype)
  head_dim,      // multiple of 16 in [16, 256]
  layout,        // NHD | HND
  device,        // cpu | cuda | cuda:N
  text,          // free text (a file name)
  flag,          // present or not; takes no value
};

struct OptionSpec {
  std::string name;  // without the dashes: "page-size"
  OptKind kind;
  std::string default_value;  // "" for none
  std::string help;
  // A size whose default depends on the device: the GPU's is the shape a
  // target is quoted at, the CPU's keeps a reference-backend run to seconds.
  std::int64_t gpu_default = 0, cpu_default = 0;
};

// --name, a positive size defaulting to `gpu` on a GPU and `cpu` on the CPU;
// its help names both defaults after `what`.
OptionSpec size_option(std::string name, const std::string& what, std::int64_t gpu, std::int64_t cpu);

// Thrown for a bad command line; main() prints what() and exits 2.
struct BadOption : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Options {
 public:
  // Parses "--name value", "--name=value" and "--flag" against `specs`.
  Options(const std::vector<OptionSpec>& specs, const std::vector<std::string>& args, const std::string& command);

  std::int64_t integer(const std::string& name) const;
  // A size_option: the value given, else its default for the device.
  std::int64_t size(const std::string& name, bool on_gpu) const;
  double real(const std::string& name) const;
  DType dtype(const std::string& name) const;
  KvLayout layout(const std::string& name) const;
  Device device(const std::string& name) const;
  const std::string& text(const std::string& name) const;
  bool flag(const std::string& name) const;
  bool given(const std::string& name) const { return given_.count(name) != 0; }

 private:
  const OptionSpec& spec(const std::string& name) const;
  std::vector<OptionSpec> specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
};

// Options every benchmark takes (device, iterations, JSON output, check).
std::vector<OptionSpec> common_bench_options();
std::string usage(const std::vector<OptionSpec>& specs);

}  // namespace kvserve::cli
