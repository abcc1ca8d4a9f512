// A tensor that lives on the host and, in a GPU run, on the device too: each op
// asks for a view on the device its plan runs on, and the fresh copy follows
// it. This lets the demo run every op that has a CUDA kernel on the GPU and the
// rest on the CPU, with the copies in between made explicit and counted.
#pragma once

#include <cstdint>
#include <memory>

#include "kvserve/core.hpp"
#include "reference/buffer.hpp"

namespace kvserve::cli {

class Mirror {
 public:
  Mirror() = default;
  // `gpu`: the device copy's device, or Device::cpu() for a host-only tensor.
  Mirror(DType dtype, std::int64_t n, Device gpu);

  DType dtype() const { return dtype_; }
  std::int64_t size() const { return n_; }

  // A view of the copy on `device`, made fresh first; `will_write` marks that
  // copy as the only fresh one (the op is about to write it).
  TensorView on(Device device, std::initializer_list<std::int64_t> shape, bool will_write = false);
  // Host access (syncs the host copy first; set() marks it the fresh one).
  double get(std::int64_t i);
  void set(std::int64_t i, double x);
  // Bytes copied between host and device so far, over all mirrors.
  static std::int64_t bytes_copied();

 private:
  void make_fresh(Device device);
  DType dtype_ = DType::f32;
  std::int64_t n_ = 0;
  std::shared_ptr<test::DeviceMemory> host_, dev_;
  bool host_fresh_ = true, dev_fresh_ = true;
};

}  // namespace kvserve::cli
