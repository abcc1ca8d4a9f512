#include "report.hpp"

#include <cstdio>
#include <fstream>

namespace kvserve::cli {

void print_table(const std::vector<BenchResult>& results, Device device, double copy_bw) {
  std::printf("\ndevice %s, measured copy bandwidth %.2f TB/s (read + write)\n", device.to_string().c_str(),
              copy_bw / 1e12);
  std::printf("%-10s %-52s %11s %9s %7s %9s  %s\n", "op", "shape", "time (us)", "TB/s", "% copy", "TFLOP/s",
              "check vs fp64 oracle");
  for (const auto& r : results) {
    const double s = r.time_us * 1e-6;
    const double tbs = s > 0 ? r.bytes / s / 1e12 : 0;
    const double tflops = s > 0 ? r.flops / s / 1e12 : 0;
    std::printf("%-10s %-52s %11.1f %9.3f %6.1f%% %9.3f  %s\n", r.op.c_str(), r.shape.c_str(), r.time_us, tbs,
                copy_bw > 0 ? 100.0 * tbs * 1e12 / copy_bw : 0.0, tflops, r.check.c_str());
  }
  for (const auto& r : results) std::printf("  %s: kernel %s\n", r.op.c_str(), r.kernel.c_str());
}

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}
}  // namespace

bool write_json(const std::string& path, const std::vector<BenchResult>& results, Device device, double copy_bw) {
  std::ofstream f(path);
  if (!f) return false;
  f << "{\"device\": \"" << device.to_string() << "\", \"copy_bandwidth_bytes_per_s\": " << copy_bw
    << ", \"results\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const double s = r.time_us * 1e-6;
    f << "  {\"op\": \"" << escape(r.op) << "\", \"shape\": \"" << escape(r.shape) << "\", \"kernel\": \""
      << escape(r.kernel) << "\", \"time_us\": " << r.time_us << ", \"bytes\": " << r.bytes
      << ", \"flops\": " << r.flops << ", \"bytes_per_s\": " << (s > 0 ? r.bytes / s : 0)
      << ", \"flops_per_s\": " << (s > 0 ? r.flops / s : 0) << ", \"check\": \"" << escape(r.check)
      << "\", \"check_ok\": " << (r.check_ok ? "true" : "false") << "}" << (i + 1 < results.size() ? "," : "")
      << "\n";
  }
  f << "]}\n";
  return static_cast<bool>(f);
}

}  // namespace kvserve::cli
