// Conversions between the C ABI's structs and the C++ API, and the generic
// bodies of the per-op C functions (each op's file is then a few one-liners).
#pragma once

#include <cstring>
#include <exception>
#include <string>

#include "kvserve/attention.hpp"
#include "kvserve/kvserve.h"

namespace kvserve::capi {

Device to_device(kvs_device d);
DType to_dtype(kvs_dtype t);
TensorView to_view(const kvs_tensor& t);
AttentionParams to_params(const kvs_attention_params& p);
PagedKvDesc to_desc(const kvs_paged_kv_desc& d);
PagedKv to_paged(const kvs_paged_kv& kv);

// Fills `err` (when given) and returns the code.
kvs_status_code report(const Status& s, kvs_error* err);

// Runs body() -> Status, turning any exception into KVS_INTERNAL: nothing
// unwinds through the C ABI.
template <class F>
kvs_status_code guarded(kvs_error* err, F&& body) {
  try {
    return report(body(), err);
  } catch (const std::exception& e) {
    return report(Status::internal(std::string("exception in the C ABI: ") + e.what()), err);
  } catch (...) {
    return report(Status::internal("unknown exception in the C ABI"), err);
  }
}

// The opaque handle of op Op's plans: struct kvs_<op>_plan derives from this.
template <class Op>
struct PlanHandle {
  Plan<Op> plan;
};

template <class Handle>
kvs_status_code create(const typename decltype(Handle::plan)::Desc& desc, kvs_device device, Handle** out,
                       kvs_error* err) {
  return guarded(err, [&]() -> Status {
    if (out == nullptr) return Status::invalid_argument("C ABI: argument 'plan': expected a non-null pointer, got NULL");
    *out = nullptr;
    auto plan = decltype(Handle::plan)::create(desc, to_device(device));
    if (!plan) return plan.status();
    *out = new Handle{{std::move(*plan)}};
    return Status::ok();
  });
}

template <class Handle>
Status check_handle(const Handle* h) {
  if (h == nullptr) return Status::invalid_argument("C ABI: argument 'plan': expected a plan handle, got NULL");
  return Status::ok();
}

template <class Handle, class Args>
kvs_status_code run(const Handle* h, const Args& args, void* ws, std::size_t ws_bytes, void* stream, kvs_error* err) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_handle(h));
    return h->plan.run(args, Workspace{ws, ws_bytes}, Stream{stream});
  });
}

template <class Handle>
std::size_t kernel_key(const Handle* h, char* buf, std::size_t size) {
  if (h == nullptr) return 0;
  const std::string key = h->plan.kernel().key();
  if (buf != nullptr && size > 0) {
    const std::size_t n = key.size() < size - 1 ? key.size() : size - 1;
    std::memcpy(buf, key.data(), n);
    buf[n] = '\0';
  }
  return key.size();
}

// A pointer argument of a C entry point ("desc", "args") that must be given.
inline Status non_null(const void* p, const char* name) {
  if (p != nullptr) return Status::ok();
  return Status::invalid_argument(std::string("C ABI: argument '") + name + "': expected a pointer, got NULL");
}

}  // namespace kvserve::capi

// The three entry points every op has and whose body never varies:
// kvs_<name>_workspace_bytes, kvs_<name>_kernel and kvs_<name>_destroy, for the
// handle struct kvs_<name>_plan.
#define KVS_CAPI_PLAN_COMMON(name)                                                            \
  extern "C" size_t kvs_##name##_workspace_bytes(const kvs_##name##_plan* plan) {             \
    return plan ? plan->plan.workspace_bytes() : 0;                                           \
  }                                                                                           \
  extern "C" size_t kvs_##name##_kernel(const kvs_##name##_plan* plan, char* buf, size_t size) { \
    return ::kvserve::capi::kernel_key(plan, buf, size);                                      \
  }                                                                                           \
  extern "C" void kvs_##name##_destroy(kvs_##name##_plan* plan) { delete plan; }
