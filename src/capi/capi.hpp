// Conversions between the C ABI's structs and the C++ API, and the generic
// bodies of the per-op C functions (each op's file is then a few one-liners).
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "kvserve/attention.hpp"
#include "kvserve/kv_cache.hpp"
#include "kvserve/kvserve.h"

namespace kvserve::capi {

Device to_device(const kvs_device& d);
DType to_dtype(const kvs_dtype& t);
TensorView to_view(const kvs_tensor& t);
AttentionParams to_params(const kvs_attention_params& p);
PagedKvDesc to_desc(const kvs_paged_kv_desc& d);
PagedKv to_paged(const kvs_paged_kv& kv);
PagedMlaDesc to_desc(const kvs_paged_mla_desc& d);
PagedMlaCache to_mla_cache(const kvs_paged_mla_cache& c);
inline bool to_bool(std::int32_t v) { return v != 0; }
// An optional positive value whose C sentinel for "not given" is <= 0.
inline std::optional<float> positive_or_default(float v) { return v > 0 ? std::optional<float>(v) : std::nullopt; }

// A C enum field as the C++ enum E (whose underlying type is std::uint8_t).
// The field's bytes are read as its underlying integer: a caller may store
// any int there, and loading a C enum object outside its enumerators' range
// is undefined in C++ (UBSan flags it). The C++ rules reject values outside
// E naming the field; a value that would not fit the byte maps to 255, which
// no enum uses, rather than wrapping onto a valid one.
template <class E, class C>
E to_enum(const C& field) {
  static_assert(std::is_same_v<std::underlying_type_t<E>, std::uint8_t> && std::is_enum_v<C>);
  std::underlying_type_t<C> raw;
  std::memcpy(&raw, &field, sizeof raw);
  const auto value = static_cast<long long>(raw);
  return static_cast<E>(value >= 0 && value <= 255 ? value : 255);
}

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

// A pointer argument of a C entry point ("desc", "args") that must be given.
inline Status non_null(const void* p, const char* name) {
  if (p != nullptr) return Status::ok();
  return Status::invalid_argument(std::string("C ABI: argument '") + name + "': expected a pointer, got NULL");
}

// A count argument of a C entry point ("batch", "num_seqs"): >= 0.
Status check_count(std::int64_t count, const char* name);

// A host array argument: `count` values at `data`, which may be NULL only when
// count is 0 (count was checked >= 0).
template <class T>
Status to_span(const T* data, std::int64_t count, const char* name, std::span<const T>* out) {
  if (data == nullptr && count > 0) return non_null(data, name);
  *out = std::span<const T>(data, static_cast<std::size_t>(count));
  return Status::ok();
}

// The host lengths of a page table of `rows` rows (checked >= 0): indptr
// [rows + 1] and last_page_len [rows], named as the C entry point names them.
Status to_lengths(const std::int32_t* indptr, const char* indptr_name, const std::int32_t* last_page_len,
                  const char* last_name, std::int64_t rows, PagedKvLengths* out);

// The opaque handle of op Op's plans: struct kvs_<op>_plan derives from this.
template <class Op>
struct PlanHandle {
  using Operation = Op;
  Plan<Op> plan;
};

template <class Handle>
Status check_handle(const Handle* h) {
  if (h == nullptr) return Status::invalid_argument("C ABI: argument 'plan': expected a plan handle, got NULL");
  return Status::ok();
}

// kvs_<op>_create: `to_cpp` turns the C descriptor into the C++ one (inside
// the guard, as it may allocate); *out is NULL unless the plan was made.
template <class Handle, class CDesc, class ToCpp>
kvs_status_code create(const CDesc* desc, kvs_device device, Handle** out, kvs_error* err, ToCpp&& to_cpp) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(non_null(out, "plan"));
    *out = nullptr;
    KVSERVE_TRY(non_null(desc, "desc"));
    auto plan = Plan<typename Handle::Operation>::create(to_cpp(*desc), to_device(device));
    if (!plan) return plan.status();
    *out = new Handle{{std::move(*plan)}};
    return Status::ok();
  });
}

// kvs_<op>_prepare: `to_host(&host)` builds the C++ prepare arguments from the
// C call's host arrays, or says which of them is wrong.
template <class Handle, class ToHost>
kvs_status_code prepare(Handle* h, void* ws, std::size_t ws_bytes, void* stream, kvs_error* err, ToHost&& to_host) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_handle(h));
    typename Handle::Operation::PrepareArgs host;
    KVSERVE_TRY(to_host(&host));
    return h->plan.prepare(host, Workspace{ws, ws_bytes}, Stream{stream});
  });
}

// kvs_<op>_prepare of a plan over one paged table (PagedKvLengths): the C
// call's indptr [batch + 1] and last_page_len [batch].
template <class Handle>
kvs_status_code prepare_paged(Handle* h, const std::int32_t* indptr, const std::int32_t* last_page_len,
                              std::int64_t batch, void* ws, std::size_t ws_bytes, void* stream, kvs_error* err) {
  return prepare(h, ws, ws_bytes, stream, err, [&](PagedKvLengths* host) -> Status {
    KVSERVE_TRY(check_count(batch, "batch"));
    return to_lengths(indptr, "indptr", last_page_len, "last_page_len", batch, host);
  });
}

// kvs_<op>_run: `to_cpp` turns the C arguments into the C++ ones.
template <class Handle, class CArgs, class ToCpp>
kvs_status_code run(const Handle* h, const CArgs* args, void* ws, std::size_t ws_bytes, void* stream, kvs_error* err,
                    ToCpp&& to_cpp) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_handle(h));
    KVSERVE_TRY(non_null(args, "args"));
    return h->plan.run(to_cpp(*args), Workspace{ws, ws_bytes}, Stream{stream});
  });
}

// kvs_<op>_can_implement: run()'s checks of the arguments, without a launch.
template <class Handle, class CArgs, class ToCpp>
kvs_status_code can_implement(const Handle* h, const CArgs* args, kvs_error* err, ToCpp&& to_cpp) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_handle(h));
    KVSERVE_TRY(non_null(args, "args"));
    return h->plan.can_implement(to_cpp(*args));
  });
}

// kvs_<op>_precision: the selected kernel's precision promise.
kvs_precision to_precision(const Precision& p);
template <class Handle>
kvs_status_code precision(const Handle* h, kvs_precision* out, kvs_error* err) {
  return guarded(err, [&]() -> Status {
    KVSERVE_TRY(check_handle(h));
    KVSERVE_TRY(non_null(out, "out"));
    *out = to_precision(h->plan.kernel().precision);
    return Status::ok();
  });
}

// kvs_<op>_kernel: 0 for a NULL handle, or if the key cannot be built (no
// exception may leave the C ABI, and this entry point has no status to report).
template <class Handle>
std::size_t kernel_key(const Handle* h, char* buf, std::size_t size) noexcept {
  if (h == nullptr) return 0;
  try {
    const std::string key = h->plan.kernel().key();
    if (buf != nullptr && size > 0) {
      const std::size_t n = key.size() < size - 1 ? key.size() : size - 1;
      std::memcpy(buf, key.data(), n);
      buf[n] = '\0';
    }
    return key.size();
  } catch (...) {
    return 0;
  }
}

}  // namespace kvserve::capi

// The entry points every op has and whose body never varies:
// kvs_<name>_run, _can_implement, _workspace_bytes, _kernel, _precision and
// _destroy, for the handle struct kvs_<name>_plan; the op's file defines
// to_args(const kvs_<name>_args&), its C++ run arguments.
#define KVS_CAPI_PLAN_COMMON(name)                                                            \
  extern "C" kvs_status_code kvs_##name##_run(const kvs_##name##_plan* plan, const kvs_##name##_args* args, \
                                              void* workspace, size_t workspace_bytes, void* stream,      \
                                              kvs_error* err) {                                           \
    return ::kvserve::capi::run(plan, args, workspace, workspace_bytes, stream, err,                      \
                                [](const kvs_##name##_args& a) { return to_args(a); });                   \
  }                                                                                           \
  extern "C" kvs_status_code kvs_##name##_can_implement(const kvs_##name##_plan* plan,       \
                                                        const kvs_##name##_args* args, kvs_error* err) {  \
    return ::kvserve::capi::can_implement(plan, args, err,                                    \
                                          [](const kvs_##name##_args& a) { return to_args(a); }); \
  }                                                                                           \
  extern "C" kvs_status_code kvs_##name##_precision(const kvs_##name##_plan* plan, kvs_precision* out,     \
                                                    kvs_error* err) {                         \
    return ::kvserve::capi::precision(plan, out, err);                                        \
  }                                                                                           \
  extern "C" size_t kvs_##name##_workspace_bytes(const kvs_##name##_plan* plan) {             \
    return plan ? plan->plan.workspace_bytes() : 0;                                           \
  }                                                                                           \
  extern "C" size_t kvs_##name##_kernel(const kvs_##name##_plan* plan, char* buf, size_t size) { \
    return ::kvserve::capi::kernel_key(plan, buf, size);                                      \
  }                                                                                           \
  extern "C" void kvs_##name##_destroy(kvs_##name##_plan* plan) { delete plan; }
