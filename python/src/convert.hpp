// Python -> C++ conversions shared by every binding: DLPack tensors to
// TensorView (zero-copy), devices, streams, workspaces, and the Status ->
// exception path.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <kvserve/core.hpp>

namespace kvserve::py {

namespace nb = nanobind;

// A failed Status on its way to Python; translated into kvserve.InvalidProblem,
// kvserve.Unsupported, kvserve.WorkspaceTooSmall, ... by the module's
// exception translator (module.cpp).
struct StatusError {
  Status status;
};

inline void check(Status s) {
  if (!s) throw StatusError{std::move(s)};
}

template <class T>
T unwrap(Result<T> r) {
  if (!r) throw StatusError{r.status()};
  return std::move(r).value();
}

// An InvalidArgument in the C++ library's words:
// "<where>: argument '<name>': expected <expected>, got <given>".
[[noreturn]] void throw_invalid(std::string_view where, std::string_view name, std::string_view expected,
                                std::string_view given);

// What a call converted from Python and must keep alive until it returns: the
// imported arrays (their owners stay referenced), host copies of index lists,
// and the element type byte arrays stand for (uint8 views of fp8 KV pools).
struct Holder {
  std::string where;  // the op, for messages
  std::vector<nb::ndarray<nb::ro>> arrays;
  std::vector<nb::ndarray<>> written_arrays;
  std::deque<std::vector<std::int32_t>> host_ints;
  std::optional<DType> byte_dtype;
  std::span<const std::string_view> written;  // argument paths the call writes
};

// "cpu", "cuda", "cuda:N", kvserve.Device-like strings, torch.device, or None (cpu).
Device to_device(nb::handle h);

// A DLPack-capable object (numpy, torch, cupy, jax, ...) as a view of its
// memory, or an undefined view for None. An argument listed in hold.written
// must be writable (a read-only numpy array is refused).
TensorView to_view(nb::handle h, std::string_view name, Holder& hold);

// A host int32 array (any DLPack array on the CPU) or a Python sequence of ints.
std::span<const std::int32_t> to_host_ints(nb::handle h, std::string_view name, Holder& hold);

// The caller's stream for a plan on `device`: None takes torch's current
// stream when torch is loaded (else the legacy default stream); an int is a
// cudaStream_t; objects with __cuda_stream__ (CUDA stream protocol),
// cuda_stream (torch.cuda.Stream) or ptr (cupy) work too. CPU plans ignore it.
Stream to_stream(nb::handle h, Device device);

// A caller's buffer as a plan workspace: any contiguous array on the plan's
// device; its start is rounded up to the 256-byte alignment plans require
// (so a buffer of workspace_bytes() + 255 bytes always suffices). None is an
// empty workspace.
Workspace to_workspace(nb::handle h, Device device, Holder& hold);

}  // namespace kvserve::py
