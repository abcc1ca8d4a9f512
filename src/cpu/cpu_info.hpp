#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "core/plan_state.hpp"
#include "kvserve/core.hpp"

namespace kvserve::detail::cpu {

// Every CPU kernel: fp32 products and sums, single pass order fixed by the
// input, so deterministic and batch invariant.
inline KernelInfo kernel_info(std::string op, std::string config) {
  KernelInfo info;
  info.backend = Backend::cpu;
  info.arch = "host";
  info.op = std::move(op);
  info.config = std::move(config);
  info.precision = Precision{DType::f32, DType::f32, /*deterministic=*/true, /*batch_invariant=*/true};
  return info;
}

// A CPU kernel of Op: the identity it reports and the function that runs it.
template <class Op>
Kernel<Op> make_kernel(std::string config,
                       Status (*run)(const PlanState<Op>&, const typename Op::Args&, Workspace, Stream)) {
  Kernel<Op> k;
  k.info = kernel_info(Op::kName, std::move(config));
  k.run = run;
  return k;
}

// A configuration value as the identity spells it: enums by name, bools 0 / 1.
template <class V>
std::string config_value(const V& v) {
  if constexpr (std::is_same_v<V, bool>) return v ? "1" : "0";
  else if constexpr (std::is_enum_v<V>) return std::string(name_of(v));
  else return std::to_string(v);
}

inline void append_config(std::string&) {}
template <class V, class... Rest>
void append_config(std::string& s, const char* key, const V& value, const Rest&... rest) {
  if (!s.empty()) s += ' ';
  s += key;
  s += '=';
  s += config_value(value);
  append_config(s, rest...);
}

// "key=value key=value ...": config("d", 128, "layout", KvLayout::nhd).
template <class... KeyValues>
std::string config(const KeyValues&... kv) {
  std::string s;
  append_config(s, kv...);
  return s;
}

}  // namespace kvserve::detail::cpu
