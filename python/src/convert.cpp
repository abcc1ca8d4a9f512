#include "convert.hpp"

#include <cstdint>
#include <algorithm>
#include <cstring>

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

namespace kvserve::py {

namespace {

// DLPack device types (dlpack.h): the ones a kvserve plan can be handed.
constexpr int kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13;

// Zero-element tensors may carry a null data pointer (torch does this), which
// a TensorView would read as "argument absent". Such views get this address:
// never dereferenced (no elements), aligned for every element type.
alignas(256) unsigned char empty_tensor_storage[256];

std::string dlpack_dtype_name(nb::dlpack::dtype t) {
  using C = nb::dlpack::dtype_code;
  const char* kind = "?";
  switch (static_cast<C>(t.code)) {
    case C::Int: kind = "int"; break;
    case C::UInt: kind = "uint"; break;
    case C::Float: kind = "float"; break;
    case C::Bfloat: kind = "bfloat"; break;
    case C::Complex: kind = "complex"; break;
    case C::Bool: kind = "bool"; break;
    default: kind = "float8/other code "; break;
  }
  return std::string(kind) + std::to_string(t.bits);
}

std::optional<DType> to_dtype(nb::dlpack::dtype t, const Holder& hold) {
  using C = nb::dlpack::dtype_code;
  if (t.lanes != 1) return std::nullopt;
  switch (static_cast<C>(t.code)) {
    case C::Float:
      if (t.bits == 16) return DType::f16;
      if (t.bits == 32) return DType::f32;
      break;
    case C::Bfloat:
      if (t.bits == 16) return DType::bf16;
      break;
    case C::Int:
      if (t.bits == 32) return DType::int32;
      if (t.bits == 8) return hold.byte_dtype;
      break;
    case C::UInt:
      if (t.bits == 8) return hold.byte_dtype;
      break;
    case C::Float8_E4M3FN: return DType::fp8_e4m3;
    case C::Float8_E5M2: return DType::fp8_e5m2;
    default: break;
  }
  return std::nullopt;
}

std::optional<Device> to_kvserve_device(int type, int id) {
  if (type == kDLCPU || type == kDLCUDAHost) return Device::cpu();
  if (type == kDLCUDA || type == kDLCUDAManaged) return Device::cuda(id);
  return std::nullopt;
}

nb::ndarray<nb::ro> import_array(nb::handle h, std::string_view name, const Holder& hold) {
  nb::ndarray<nb::ro> a;
  // No implicit conversion: a copy would break zero-copy (outputs would land
  // in a temporary), so anything that is not already a DLPack array is refused.
  if (!nb::try_cast(h, a, false))
    throw_invalid(hold.where, name, "a DLPack array (numpy, torch, ...)",
                  nb::type_name(h.type()).c_str());
  return a;
}

std::uint64_t int_attr(nb::handle h) { return nb::cast<std::uint64_t>(nb::int_(h)); }

}  // namespace

void throw_invalid(std::string_view where, std::string_view name, std::string_view expected,
                   std::string_view given) {
  throw StatusError{Status::invalid_argument(std::string(where) + ": argument '" + std::string(name) +
                                             "': expected " + std::string(expected) + ", got " +
                                             std::string(given))};
}

Device to_device(nb::handle h) {
  if (h.is_none()) return Device::cpu();
  std::string text;
  if (nb::isinstance<nb::str>(h)) {
    text = nb::cast<std::string>(h);
  } else if (nb::hasattr(h, "type")) {  // torch.device
    text = nb::cast<std::string>(nb::str(h.attr("type")));
    nb::object index = h.attr("index");
    if (!index.is_none()) text += ":" + nb::cast<std::string>(nb::str(index));
  } else {
    throw_invalid("kvserve", "device", "'cpu', 'cuda', 'cuda:N' or a torch.device",
                  nb::type_name(h.type()).c_str());
  }
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() < 10 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos)
    return Device::cuda(std::stoi(text.substr(5)));
  throw_invalid("kvserve", "device", "'cpu', 'cuda' or 'cuda:N'", "'" + text + "'");
}

namespace {

// The view of an imported array (either kind), kept alive in `keep`.
template <class Array>
TensorView view_of(Array&& a, std::string_view name, Holder& hold, std::vector<std::decay_t<Array>>& keep) {
  TensorView v;
  std::optional<DType> dtype = to_dtype(a.dtype(), hold);
  if (!dtype)
    throw_invalid(hold.where, name,
                  hold.byte_dtype ? "dtype f16, bf16, f32, int32, or uint8 for the fp8 pool"
                                  : "dtype f16, bf16, f32, int32 or fp8",
                  dlpack_dtype_name(a.dtype()));
  std::optional<Device> device = to_kvserve_device(a.device_type(), a.device_id());
  if (!device)
    throw_invalid(hold.where, name, "memory on the CPU or a CUDA device",
                  "DLPack device type " + std::to_string(a.device_type()));
  if (a.ndim() > static_cast<std::size_t>(kMaxRank))
    throw_invalid(hold.where, name, "rank <= " + std::to_string(kMaxRank), "rank " + std::to_string(a.ndim()));
  v.dtype = *dtype;
  v.device = *device;
  v.rank = static_cast<int>(a.ndim());
  for (int i = 0; i < v.rank; ++i) {
    v.shape[i] = static_cast<std::int64_t>(a.shape(i));
    v.strides[i] = a.stride(i);
  }
  v.data = const_cast<void*>(static_cast<const void*>(a.data()));
  if (v.data == nullptr && a.size() == 0) v.data = empty_tensor_storage;
  keep.push_back(std::forward<Array>(a));
  return v;
}

}  // namespace

TensorView to_view(nb::handle h, std::string_view name, Holder& hold) {
  if (h.is_none()) return {};
  const bool written = std::find(hold.written.begin(), hold.written.end(), name) != hold.written.end();
  if (written) {
    // One import that also proves the memory writable (nanobind refuses a
    // read-only array for a non-const ndarray).
    nb::ndarray<> a;
    if (nb::try_cast(h, a, false)) return view_of(std::move(a), name, hold, hold.written_arrays);
    import_array(h, name, hold);  // not an array at all: that error first
    throw_invalid(hold.where, name, "a writable array (run() writes it)", "a read-only one");
  }
  return view_of(import_array(h, name, hold), name, hold, hold.arrays);
}

std::span<const std::int32_t> to_host_ints(nb::handle h, std::string_view name, Holder& hold) {
  nb::ndarray<nb::ro> a;
  if (nb::try_cast(h, a, false)) {
    const auto t = a.dtype();
    const bool int32 = t.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int) && t.bits == 32;
    if (!int32 || a.ndim() != 1 || (a.shape(0) > 1 && a.stride(0) != 1))
      throw_invalid(hold.where, name, "a contiguous 1-D int32 host array",
                    dlpack_dtype_name(t) + " of rank " + std::to_string(a.ndim()));
    if (a.device_type() != kDLCPU && a.device_type() != kDLCUDAHost)
      throw_invalid(hold.where, name, "host memory (prepare() schedules from a host copy of the lengths)",
                    "DLPack device type " + std::to_string(a.device_type()));
    std::span<const std::int32_t> s(static_cast<const std::int32_t*>(a.data()), a.shape(0));
    hold.arrays.push_back(std::move(a));
    return s;
  }
  std::vector<std::int32_t> values;
  if (!nb::try_cast(h, values, true))
    throw_invalid(hold.where, name, "an int32 host array or a sequence of ints", nb::type_name(h.type()).c_str());
  return hold.host_ints.emplace_back(std::move(values));
}

Stream to_stream(nb::handle h, Device device) {
  if (device.is_cpu()) return {};
  if (h.is_none()) {
    // The caller's current stream, as torch code expects: only when torch is
    // already imported (a tensor of it is in play); importing it here would
    // cost seconds for callers that do not use it.
    nb::object modules = nb::module_::import_("sys").attr("modules");
    if (!nb::cast<bool>(modules.attr("__contains__")("torch"))) return {};
    nb::object stream = modules["torch"].attr("cuda").attr("current_stream")(device.ordinal);
    return {reinterpret_cast<void*>(static_cast<std::uintptr_t>(int_attr(stream.attr("cuda_stream"))))};
  }
  std::uint64_t handle = 0;
  if (nb::isinstance<nb::int_>(h)) {
    handle = nb::cast<std::uint64_t>(h);
  } else if (nb::hasattr(h, "__cuda_stream__")) {
    handle = int_attr(h.attr("__cuda_stream__")()[1]);
  } else if (nb::hasattr(h, "cuda_stream")) {
    handle = int_attr(h.attr("cuda_stream"));
  } else if (nb::hasattr(h, "ptr")) {
    handle = int_attr(h.attr("ptr"));
  } else {
    throw_invalid("kvserve", "stream", "None, an int (cudaStream_t) or a stream object",
                  nb::type_name(h.type()).c_str());
  }
  return {reinterpret_cast<void*>(static_cast<std::uintptr_t>(handle))};
}

Workspace to_workspace(nb::handle h, Device device, Holder& hold) {
  if (h.is_none()) return {};
  nb::ndarray<nb::ro> a = import_array(h, "workspace", hold);
  std::optional<Device> where = to_kvserve_device(a.device_type(), a.device_id());
  if (!where || *where != device)
    throw_invalid(hold.where, "workspace", "memory on the plan's device " + device.to_string(),
                  where ? where->to_string() : "DLPack device type " + std::to_string(a.device_type()));
  // Contiguous: the bytes between the first and the last element are all ours.
  std::int64_t expect = 1;
  for (std::size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) > 1 && a.stride(i) != expect)
      throw_invalid(hold.where, "workspace", "a contiguous buffer", "a strided view");
    expect *= static_cast<std::int64_t>(a.shape(i));
  }
  const std::size_t bytes = a.nbytes();
  auto base = reinterpret_cast<std::uintptr_t>(a.data());
  const std::uintptr_t aligned = (base + 255) & ~std::uintptr_t{255};
  const std::size_t skip = aligned - base;
  hold.arrays.push_back(std::move(a));
  if (bytes <= skip) return {reinterpret_cast<void*>(aligned), 0};
  return {reinterpret_cast<void*>(aligned), bytes - skip};
}

}  // namespace kvserve::py
