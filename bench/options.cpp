#include "options.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace kvserve::cli {
namespace {

std::string kind_text(OptKind k) {
  switch (k) {
    case OptKind::positive_int: return "a positive integer";
    case OptKind::count: return "an integer >= 0";
    case OptKind::integer: return "an integer";
    case OptKind::real: return "a finite number";
    case OptKind::dtype: return "one of f16, bf16, f32, fp8_e4m3, fp8_e5m2";
    case OptKind::act_dtype: return "one of f16, bf16, f32";
    case OptKind::head_dim: return "a multiple of 16 in [16, 256]";
    case OptKind::layout: return "NHD or HND";
    case OptKind::device: return "cpu, cuda or cuda:N";
    case OptKind::text: return "a value";
    case OptKind::flag: return "no value";
  }
  return "?";
}

bool parse_int(const std::string& s, std::int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

bool valid(OptKind kind, const std::string& v) {
  std::int64_t i;
  switch (kind) {
    case OptKind::positive_int: return parse_int(v, &i) && i > 0;
    case OptKind::count: return parse_int(v, &i) && i >= 0;
    case OptKind::integer: return parse_int(v, &i);
    case OptKind::real: {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      return !v.empty() && *end == '\0' && std::isfinite(d);
    }
    case OptKind::dtype: {
      DType t;
      return parse_dtype(v, &t) && t != DType::int32;
    }
    case OptKind::act_dtype: {
      DType t;
      return parse_dtype(v, &t) && (t == DType::f16 || t == DType::bf16 || t == DType::f32);
    }
    case OptKind::head_dim: return parse_int(v, &i) && i >= 16 && i <= 256 && i % 16 == 0;
    case OptKind::layout: return v == "NHD" || v == "HND";
    case OptKind::device: return v == "cpu" || v == "cuda" || (v.rfind("cuda:", 0) == 0 && parse_int(v.substr(5), &i) && i >= 0);
    case OptKind::text: return !v.empty();
    case OptKind::flag: return true;
  }
  return false;
}

}  // namespace

OptionSpec size_option(std::string name, const std::string& what, std::int64_t gpu, std::int64_t cpu) {
  return {std::move(name), OptKind::positive_int, "",
          what + " (default " + std::to_string(gpu) + " on a GPU, " + std::to_string(cpu) + " on the CPU)", gpu, cpu};
}

Options::Options(const std::vector<OptionSpec>& specs, const std::vector<std::string>& args, const std::string& command)
    : specs_(specs) {
  for (const auto& s : specs_)
    if (!s.default_value.empty()) values_[s.name] = s.default_value;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) throw BadOption(command + ": unexpected argument '" + a + "' (options start with --)");
    std::string name = a.substr(2), value;
    const bool inline_value = name.find('=') != std::string::npos;
    if (inline_value) {
      value = name.substr(name.find('=') + 1);
      name = name.substr(0, name.find('='));
    }
    const OptionSpec* sp = nullptr;
    for (const auto& s : specs_)
      if (s.name == name) sp = &s;
    if (!sp) throw BadOption(command + ": unknown option --" + name + " (see --help)");
    if (sp->kind == OptKind::flag) {
      if (inline_value) throw BadOption("--" + name + ": takes no value, got '" + value + "'");
      value = "1";
    } else if (!inline_value) {
      if (i + 1 >= args.size()) throw BadOption("--" + name + ": expected " + kind_text(sp->kind) + ", got nothing");
      value = args[++i];
    }
    if (!valid(sp->kind, value)) throw BadOption("--" + name + ": expected " + kind_text(sp->kind) + ", got '" + value + "'");
    values_[name] = value;
    given_[name] = true;
  }
}

const OptionSpec& Options::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw std::logic_error("option --" + name + " was not declared");
}

std::int64_t Options::integer(const std::string& name) const {
  spec(name);
  std::int64_t v = 0;
  parse_int(values_.at(name), &v);
  return v;
}
std::int64_t Options::size(const std::string& name, bool on_gpu) const {
  const OptionSpec& s = spec(name);
  if (s.gpu_default <= 0) throw std::logic_error("option --" + name + " is not a size_option");
  return given(name) ? integer(name) : (on_gpu ? s.gpu_default : s.cpu_default);
}
double Options::real(const std::string& name) const {
  spec(name);
  return std::strtod(values_.at(name).c_str(), nullptr);
}
DType Options::dtype(const std::string& name) const {
  spec(name);
  DType t = DType::f32;
  parse_dtype(values_.at(name), &t);
  return t;
}
KvLayout Options::layout(const std::string& name) const {
  spec(name);
  return values_.at(name) == "HND" ? KvLayout::HND : KvLayout::NHD;
}
Device Options::device(const std::string& name) const {
  spec(name);
  const std::string& v = values_.at(name);
  if (v == "cpu") return Device::cpu();
  if (v == "cuda") return Device::cuda(0);
  return Device::cuda(std::atoi(v.c_str() + 5));
}
const std::string& Options::text(const std::string& name) const {
  spec(name);
  static const std::string empty;
  auto it = values_.find(name);
  return it == values_.end() ? empty : it->second;
}
bool Options::flag(const std::string& name) const {
  spec(name);
  return values_.count(name) != 0;
}

std::vector<OptionSpec> common_bench_options() {
  return {
      {"device", OptKind::device, "", "cpu | cuda | cuda:N (default: cuda when a GPU is present, else cpu)"},
      size_option("iters", "timed iterations", 200, 20),
      {"warmup", OptKind::count, "3", "untimed iterations first"},
      {"json", OptKind::text, "", "also write the results to this file as JSON"},
      {"no-check", OptKind::flag, "", "skip the check against the fp64 oracle"},
      {"seed", OptKind::count, "1", "seed of the random inputs"},
      {"help", OptKind::flag, "", "print the options"},
  };
}

std::string usage(const std::vector<OptionSpec>& specs) {
  std::ostringstream os;
  for (const auto& s : specs) {
    os << "  --" << s.name;
    if (s.kind != OptKind::flag) os << " <" << kind_text(s.kind) << ">";
    os << "\n      " << s.help;
    if (!s.default_value.empty()) os << " [default " << s.default_value << "]";
    os << "\n";
  }
  return os.str();
}

}  // namespace kvserve::cli
