// Core vocabulary shared by every op: status values, devices, streams,
// workspaces, typed tensor views and the identity a plan reports.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kvserve/dtype.hpp"

namespace kvserve {

// ---------------------------------------------------------------- status ----

enum class StatusCode : int {
  ok = 0,
  invalid_argument = 1,     // bad shape, stride, dtype, value or device
  unsupported = 2,          // valid, but this build has no kernel for it
  workspace_too_small = 3,  // needed() / got() say by how much
  cuda_error = 4,           // message carries the CUDA error string
  internal = 5,
  resource_exhausted = 6,   // a host-side pool (BlockManager pages) is used up
};

std::string_view name_of(StatusCode c);

// An error is a value: a code, a message naming the argument, the expected and
// the given value, and for workspace_too_small the two sizes.
class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  static Status ok() { return {}; }
  static Status invalid_argument(std::string msg) { return {StatusCode::invalid_argument, std::move(msg)}; }
  static Status unsupported(std::string msg) { return {StatusCode::unsupported, std::move(msg)}; }
  static Status cuda_error(std::string msg) { return {StatusCode::cuda_error, std::move(msg)}; }
  static Status internal(std::string msg) { return {StatusCode::internal, std::move(msg)}; }
  static Status resource_exhausted(std::string msg) { return {StatusCode::resource_exhausted, std::move(msg)}; }
  static Status workspace_too_small(std::size_t needed, std::size_t got);

  bool is_ok() const { return code_ == StatusCode::ok; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::size_t needed() const { return needed_; }
  std::size_t got() const { return got_; }
  // "InvalidArgument: BatchPagedDecode: argument 'q' ..."
  std::string to_string() const;

 private:
  Status(StatusCode c, std::string m) : code_(c), message_(std::move(m)) {}
  StatusCode code_ = StatusCode::ok;
  std::string message_;
  std::size_t needed_ = 0, got_ = 0;
};

// A value or the Status that says why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status s) : v_(std::move(s)) {}
  bool has_value() const { return v_.index() == 1; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // ok() when there is a value.
  Status status() const { return has_value() ? Status::ok() : std::get<0>(v_); }

 private:
  std::variant<Status, T> v_;
};

// Returns the Status of `expr` from the enclosing function unless it is ok.
#define KVSERVE_TRY(expr)                                         \
  do {                                                            \
    if (::kvserve::Status kvserve_try_ = (expr); !kvserve_try_)   \
      return kvserve_try_;                                        \
  } while (0)

// ---------------------------------------------------------------- device ----

enum class DeviceKind : std::uint8_t { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int ordinal = 0;  // CUDA device ordinal; 0 for the host
  static constexpr Device cpu() { return {DeviceKind::cpu, 0}; }
  static constexpr Device cuda(int ordinal) { return {DeviceKind::cuda, ordinal}; }
  bool is_cpu() const { return kind == DeviceKind::cpu; }
  bool is_cuda() const { return kind == DeviceKind::cuda; }
  friend bool operator==(Device, Device) = default;
  std::string to_string() const;  // "cpu", "cuda:1"
};

// Whether this build has the CUDA backend, and how many devices it can see
// (0 without the backend or without a driver; never an error).
bool cuda_backend_built();
int cuda_device_count();

// A CUDA stream (cudaStream_t) as an opaque handle; null is the legacy default
// stream. The CPU backend runs synchronously on the calling thread and ignores it.
struct Stream {
  void* handle = nullptr;
};

// Scratch memory the caller owns, on the plan's device, of at least
// plan.workspace_bytes() bytes, 256-byte aligned. A plan never allocates.
struct Workspace {
  void* data = nullptr;
  std::size_t bytes = 0;
};

// ---------------------------------------------------------------- limits ----

// Upper bounds on descriptor sizes. Every plan's create() and supports()
// refuse a larger value as InvalidArgument naming the field. Each bound is the
// largest real model's need times at least 4, and together they keep every
// product of sizes a kernel forms far below 2^63, so 64-bit offsets cannot
// overflow: a KV pool's element count, num_pages * page_size * num_kv_heads *
// head_dim, stays below 2^31 * 2^10 * 2^10 * 2^8 = 2^59 (2^61 bytes in f32).
inline constexpr int kMaxBatch = 1 << 20;         // requests, rows, sequences or groups per run (servers run <= 4096;
                                                  // statistical checks draw 10^5 sampling rows at once)
inline constexpr int kMaxHeads = 1024;            // any head count (largest today: 128 query heads, DeepSeek-V3)
inline constexpr int kMaxHeadDim = 256;           // attention and GDN head dims (largest today: 256, Gemma)
inline constexpr int kMaxRowWidth = 1 << 16;      // a merged state's head_dim, RmsNorm's hidden_size, MLA widths
                                                  // (largest today: 16384 hidden, Llama-3.1-405B)
inline constexpr int kMaxPageSize = 1024;         // tokens per page (1, 16, 32, 64 and 128 are common)
inline constexpr std::int64_t kMaxPages = (std::int64_t{1} << 31) - 1;   // page ids are int32
inline constexpr std::int64_t kMaxTokens = (std::int64_t{1} << 31) - 1;  // packed tokens per run (offsets are int32)
inline constexpr int kMaxSequenceLength = 1 << 30;  // kv_split_tokens and window_left (longest context today: 10M)
inline constexpr int kMaxVocab = 1 << 22;         // 4194304 (largest today: 262144, Gemma 3); sampling's fixed-point
                                                  // row mass must fit 63 bits
inline constexpr int kMaxDraftTokens = 256;       // speculative draft length (chains in use are <= 16)

// ---------------------------------------------------------------- tensors ---

inline constexpr int kMaxRank = 6;
// A view's farthest element lies at most this many elements from its first
// (2^48: a thousand times the largest GPU memory in bytes), so element offsets
// and byte counts of a valid view fit in int64.
inline constexpr std::int64_t kMaxViewSpan = std::int64_t{1} << 48;

// A non-owning, typed view: element type, rank, shape, strides (in elements)
// and the device the memory lives on. Ops say in their headers which arguments
// they read and which they write. Only the first `rank` entries of shape and
// strides mean anything; a rank outside [0, kMaxRank] is invalid, and every op
// refuses such a view (naming the argument) before reading its shape. The
// helpers below never read past the arrays: an invalid view has no elements.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  int rank = 0;
  std::array<std::int64_t, kMaxRank> shape{};
  std::array<std::int64_t, kMaxRank> strides{};
  Device device = Device::cpu();

  // Row-major contiguous view.
  static TensorView contiguous(const void* data, DType dtype, std::initializer_list<std::int64_t> shape,
                               Device device = Device::cpu());
  static TensorView strided(const void* data, DType dtype, std::initializer_list<std::int64_t> shape,
                            std::initializer_list<std::int64_t> strides, Device device = Device::cpu());

  bool defined() const { return data != nullptr; }
  bool rank_valid() const { return rank >= 0 && rank <= kMaxRank; }
  std::int64_t numel() const;  // 0 for an invalid rank
  bool is_contiguous() const;
  std::string shape_string() const;    // "[4, 32, 128]"; "(invalid rank 64)"
  std::string strides_string() const;  // "[4096, 128, 1]"
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

// ---------------------------------------------------------------- identity --

enum class Backend : std::uint8_t { cpu, cuda };

// What a plan promises about its numbers.
struct Precision {
  DType math = DType::f32;         // type the products are formed in
  DType accumulator = DType::f32;  // type sums and softmax state are kept in
  bool deterministic = true;       // same inputs, same plan -> same bits, run to run
  bool batch_invariant = false;    // a row's result does not depend on the rest of the batch
};

// The kernel a plan selected: usable as a telemetry or autotuning key.
struct KernelInfo {
  Backend backend = Backend::cpu;
  std::string arch;    // "host" or "sm_90a", "sm_80"
  std::string op;      // "BatchPagedDecode"
  std::string config;  // "q=bf16 kv=bf16 d=128 layout=NHD split=..." (op-specific)
  Precision precision;
  // "cuda/sm_90a/BatchPagedDecode/q=bf16 kv=bf16 d=128 ..."
  std::string key() const;
};

// One compiled kernel configuration. The list is data: `kvserve list` prints
// it and docs/support-matrix.md is generated from it. The CPU backend has one
// generic entry per op (every dtype, head_dim, layout and page size).
struct CompiledKernel {
  Backend backend = Backend::cpu;
  std::string op;
  std::string config;
};
std::vector<CompiledKernel> compiled_kernels();

}  // namespace kvserve
