// kvserve: the command-line tool.
//   kvserve list                     ops and kernel configurations in this build
//   kvserve bench [op] [options]     run, check and time ops (all ops when none named)
// Bad options: one line naming the option, exit code 2.
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
#include "report.hpp"

namespace kvserve::cli {
namespace {

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "kvserve: %s\n", msg.c_str());
  return 2;
}

void print_help() {
  std::printf(
      "kvserve - serving kernels for LLM inference\n\n"
      "usage:\n"
      "  kvserve list                   ops and kernel configurations in this build\n"
      "  kvserve bench [OP] [OPTIONS]   run, check against the fp64 oracle, and time (every op when OP is omitted)\n"
      "  kvserve bench OP --help        the options of OP\n\nops:\n");
  for (const auto& op : bench_ops()) std::printf("  %-12s %s\n", op.name.c_str(), op.summary.c_str());
}

int cmd_list() {
  std::printf("CUDA backend: %s; CUDA devices visible: %d\n\n", cuda_backend_built() ? "built" : "not built",
              cuda_device_count());
  std::printf("%-8s %-24s %s\n", "backend", "op", "configuration");
  for (const auto& k : compiled_kernels())
    std::printf("%-8s %-24s %s\n", k.backend == Backend::cpu ? "cpu" : "cuda", k.op.c_str(), k.config.c_str());
  return 0;
}

int cmd_bench(std::vector<std::string> args) {
  std::vector<const BenchOp*> ops;
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    for (const auto& op : bench_ops())
      if (op.name == args[0]) ops.push_back(&op);
    if (ops.empty()) return usage_error("bench: unknown op '" + args[0] + "' (kvserve help lists them)");
    args.erase(args.begin());
  } else {
    for (const auto& op : bench_ops()) ops.push_back(&op);
  }
  std::vector<BenchResult> results;
  Device device = Device::cpu();
  std::string json_path;
  for (const BenchOp* op : ops) {
    std::vector<OptionSpec> specs = common_bench_options();
    specs.insert(specs.end(), op->options.begin(), op->options.end());
    // With every op selected only the common options apply.
    const Options o(ops.size() == 1 ? specs : common_bench_options(), args, "bench " + op->name);
    if (o.flag("help")) {
      std::printf("kvserve bench %s: %s\n\noptions:\n%s", op->name.c_str(), op->summary.c_str(), usage(specs).c_str());
      return 0;
    }
    BenchContext ctx;
    ctx.device = o.given("device") ? o.device("device") : default_device();
    if (ctx.device.is_cuda() && ctx.device.ordinal >= cuda_device_count())
      return usage_error("--device: expected a visible CUDA device (" + std::to_string(cuda_device_count()) +
                         " visible" + (cuda_backend_built() ? "" : "; this build has no CUDA backend") + "), got '" +
                         ctx.device.to_string() + "'");
    ctx.iters = o.given("iters") ? static_cast<int>(o.integer("iters")) : (ctx.device.is_cuda() ? 200 : 20);
    ctx.warmup = static_cast<int>(o.integer("warmup"));
    ctx.check = !o.flag("no-check");
    ctx.seed = static_cast<std::uint64_t>(o.integer("seed"));
    device = ctx.device;
    json_path = o.text("json");
    if (ctx.device.is_cpu() && op == ops.front())
      std::printf("running on the CPU backend (%s)\n",
                  cuda_device_count() > 0 ? "--device cuda for the GPU" : "no GPU found");
    std::printf("bench %s on %s ...\n", op->name.c_str(), ctx.device.to_string().c_str());
    std::fflush(stdout);
    if (Status s = op->run(o, ctx, &results); !s) {
      std::fprintf(stderr, "kvserve bench %s: %s\n", op->name.c_str(), s.to_string().c_str());
      return s.code() == StatusCode::invalid_argument ? 2 : 1;
    }
  }
  const double bw = measured_copy_bandwidth(device);
  print_table(results, device, bw);
  if (!json_path.empty() && !write_json(json_path, results, device, bw))
    return usage_error("--json: cannot write '" + json_path + "'");
  for (const auto& r : results)
    if (!r.check_ok) return 1;
  return 0;
}

int main_impl(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help") {
    print_help();
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "list") return cmd_list();
    if (cmd == "bench") return cmd_bench(args);
  } catch (const BadOption& e) {
    return usage_error(e.what());
  }
  return usage_error("unknown command '" + cmd + "' (kvserve help)");
}

}  // namespace
}  // namespace kvserve::cli

int main(int argc, char** argv) { return kvserve::cli::main_impl(argc, argv); }
