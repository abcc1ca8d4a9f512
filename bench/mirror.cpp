#include "mirror.hpp"

#include <atomic>

namespace kvserve::cli {
namespace {
std::atomic<std::int64_t> g_bytes_copied{0};  // a statistic of the demo tool, not of the library
}

Mirror::Mirror(DType dtype, std::int64_t n, Device gpu)
    : dtype_(dtype),
      n_(n),
      host_(std::make_shared<test::DeviceMemory>(Device::cpu(), static_cast<std::size_t>(n) * size_of(dtype))) {
  if (gpu.is_cuda()) dev_ = std::make_shared<test::DeviceMemory>(gpu, host_->bytes());
}

void Mirror::make_fresh(Device device) {
  if (device.is_cpu() && !host_fresh_) {
    dev_->download(host_->data(), host_->bytes());
    g_bytes_copied += static_cast<std::int64_t>(host_->bytes());
    host_fresh_ = true;
  } else if (device.is_cuda() && !dev_fresh_) {
    dev_->upload(host_->data(), host_->bytes());
    g_bytes_copied += static_cast<std::int64_t>(host_->bytes());
    dev_fresh_ = true;
  }
}

TensorView Mirror::on(Device device, std::initializer_list<std::int64_t> shape, bool will_write) {
  if (!dev_) device = Device::cpu();
  make_fresh(device);
  if (will_write && dev_) {
    host_fresh_ = device.is_cpu();
    dev_fresh_ = device.is_cuda();
  }
  void* data = device.is_cpu() ? host_->data() : dev_->data();
  return TensorView::contiguous(data, dtype_, shape, device);
}

double Mirror::get(std::int64_t i) {
  make_fresh(Device::cpu());
  return dtype_ == DType::int32 ? static_cast<const std::int32_t*>(host_->data())[i]
                                : load_as_float(dtype_, host_->data(), i);
}

void Mirror::set(std::int64_t i, double x) {
  make_fresh(Device::cpu());
  if (dtype_ == DType::int32) static_cast<std::int32_t*>(host_->data())[i] = static_cast<std::int32_t>(x);
  else store_from_float(dtype_, host_->data(), i, static_cast<float>(x));
  if (dev_) dev_fresh_ = false;
}

std::int64_t Mirror::bytes_copied() { return g_bytes_copied; }

}  // namespace kvserve::cli
