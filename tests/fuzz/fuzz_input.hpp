// The input decoder every fuzz target shares: descriptor values, tensor views
// over real buffers, page tables and float contents, all read from the fuzz
// input. When the input runs out every read returns 0, which decodes to the
// "well-formed" choice, so short inputs exercise the accepted paths and longer
// ones the rejections.
//
// Tensors are honest: a view's buffer holds every element its own shape and
// strides describe (negative strides included, by placing `data` inside the
// buffer). Where the fuzzer bends a view (wrong rank, dtype, extent, strides,
// absent) the buffer is sized from the bent view, so an out-of-bounds access
// reported by ASan is the library's bug, never the harness's. A view with an
// invalid rank (outside [0, kMaxRank]) points at a one-element buffer: the
// library must refuse it before reading its shape.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

#include "kvserve/plan.hpp"

namespace kvserve::fuzz {

// Elements a single view may span; larger expected shapes are shrunk (the view
// then disagrees with the descriptor, which the library must refuse).
inline constexpr std::int64_t kMaxElements = 1 << 16;

// An index bound for Arena::tensor, clamped to int32.
inline std::int32_t index_bound(std::int64_t v) {
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(v, 0, std::numeric_limits<std::int32_t>::max()));
}

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

  std::size_t remaining() const { return n_; }

  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{u8()} << (8 * i);
    return v;
  }
  std::uint64_t u64() { return std::uint64_t{u32()} | (std::uint64_t{u32()} << 32); }
  bool flag() { return u8() & 1; }
  // One of n choices (0 when the input is exhausted).
  int pick(int n) { return static_cast<int>(u8() % static_cast<unsigned>(n)); }

  // A size or count: usually `usual` (a valid value), sometimes a small value
  // or an edge (0, negative, the bound, the bound + 1, int extremes).
  std::int64_t size(std::int64_t usual, std::int64_t bound) {
    switch (u8() % 16) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: return usual;
      case 8: case 9: case 10: return u8() % 8;            // small, 0 included
      case 11: return -static_cast<std::int64_t>(u8() % 3) - 1;
      case 12: return bound;
      case 13: return bound + 1;
      case 14: return std::numeric_limits<std::int32_t>::max();
      default: return static_cast<std::int32_t>(u32());
    }
  }
  int isize(std::int64_t usual, std::int64_t bound) {
    std::int64_t v = size(usual, bound);
    if (v > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
    if (v < std::numeric_limits<int>::min()) return std::numeric_limits<int>::min();
    return static_cast<int>(v);
  }

  // A float parameter: usually `usual`, sometimes an edge (NaN, +-inf, 0, -0,
  // negative, tiny, huge) or raw bits.
  float param(float usual) {
    switch (u8() % 16) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: return usual;
      case 7: return std::numeric_limits<float>::quiet_NaN();
      case 8: return std::numeric_limits<float>::infinity();
      case 9: return -std::numeric_limits<float>::infinity();
      case 10: return 0.f;
      case 11: return -0.f;
      case 12: return -usual - 1.f;
      case 13: return std::numeric_limits<float>::denorm_min();
      case 14: return std::numeric_limits<float>::max();
      default: { std::uint32_t b = u32(); float f; std::memcpy(&f, &b, 4); return f; }
    }
  }

  // A dtype: usually `usual`, sometimes any of the six or an invalid value.
  DType dtype(DType usual) {
    switch (u8() % 8) {
      case 0: case 1: case 2: case 3: case 4: return usual;
      case 5: case 6: return static_cast<DType>(u8() % 6);
      default: return static_cast<DType>(6 + u8() % 250);
    }
  }
  template <class E>
  E enumeration(int count, E usual) {
    switch (u8() % 8) {
      case 0: case 1: case 2: case 3: case 4: case 5: return usual;
      case 6: return static_cast<E>(u8() % count);
      default: return static_cast<E>(u8());
    }
  }

  // A float element: mostly ordinary values in [-4, 4), sometimes specials.
  float element() {
    std::uint8_t b = u8();
    switch (b >> 5) {
      case 0: case 1: case 2: case 3: case 4: return (static_cast<float>(b) - 80.f) / 20.f;
      case 5: return static_cast<float>(b & 31) / 31.f;  // probabilities
      case 6: return 0.f;
      default:
        switch (b & 7) {
          case 0: return std::numeric_limits<float>::quiet_NaN();
          case 1: return std::numeric_limits<float>::infinity();
          case 2: return -std::numeric_limits<float>::infinity();
          case 3: return std::numeric_limits<float>::max();
          case 4: return -std::numeric_limits<float>::max();
          case 5: return std::numeric_limits<float>::denorm_min();
          case 6: return 1e30f;
          default: return -1e-30f;
        }
    }
  }
  // An int32 element of an index array: usually in [0, usual_hi), sometimes an
  // edge (-1, hi, hi + 1, int extremes).
  std::int32_t index(std::int32_t usual_hi) {
    std::uint8_t b = u8();
    if (b < 200) return usual_hi > 0 ? static_cast<std::int32_t>(b % usual_hi) : 0;
    switch (b % 6) {
      case 0: return -1;
      case 1: return usual_hi;
      case 2: return usual_hi < std::numeric_limits<std::int32_t>::max() ? usual_hi + 1 : usual_hi;
      case 3: return std::numeric_limits<std::int32_t>::max();
      case 4: return std::numeric_limits<std::int32_t>::min();
      default: return static_cast<std::int32_t>(u32());
    }
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// Owns every buffer of one fuzz iteration (freed when it goes out of scope),
// and builds the views over them.
class Arena {
 public:
  explicit Arena(FuzzInput& in) : in_(in) {}

  // A view the harness believes right (dtype, shape, row-major), which the
  // fuzzer may bend. Float contents come from the input (cycled when it runs
  // out); int32 contents are indices in [0, index_hi) with edges.
  TensorView tensor(DType dtype, std::vector<std::int64_t> shape, std::int32_t index_hi = 0) {
    TensorView t;
    t.dtype = dtype;
    switch (in_.u8() % 32) {
      case 0: return t;                                   // absent (data null)
      case 1: t.dtype = in_.dtype(dtype); break;          // another dtype
      case 2: if (!shape.empty()) shape.pop_back(); break;  // rank - 1
      case 3: shape.push_back(1 + in_.u8() % 3); break;   // rank + 1
      case 4:                                             // one extent off
        if (!shape.empty()) {
          auto& e = shape[in_.u8() % shape.size()];
          e = in_.flag() ? e + 1 : (e > 0 ? e - 1 : -1);
        }
        break;
      case 5: {                                           // an invalid rank
        t.rank = in_.flag() ? kMaxRank + 1 + in_.u8() : -1 - in_.u8();
        t.data = bytes(16);
        return t;
      }
      default: break;
    }
    if (static_cast<int>(shape.size()) > kMaxRank) shape.resize(kMaxRank);
    shrink(shape);
    t.rank = static_cast<int>(shape.size());
    std::int64_t stride = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
      t.shape[d] = shape[d];
      t.strides[d] = stride;
      stride *= shape[d] > 0 ? shape[d] : 1;
    }
    bend_strides(t);
    place(t, index_hi);
    return t;
  }
  // An int32 vector given exactly (page tables built by the harness).
  TensorView ints(const std::vector<std::int32_t>& v) {
    TensorView t;
    t.dtype = DType::int32;
    t.rank = 1;
    t.shape[0] = static_cast<std::int64_t>(v.size());
    t.strides[0] = 1;
    void* b = bytes(v.size() * 4);
    if (!v.empty()) std::memcpy(b, v.data(), v.size() * 4);
    t.data = b;
    return t;
  }
  // Raw zeroed storage that lives as long as the arena.
  void* bytes(std::size_t n) {
    buffers_.emplace_back(n == 0 ? 1 : n);
    return buffers_.back().data();
  }

 private:
  // Expected shapes too large to allocate lose their largest extents.
  static void shrink(std::vector<std::int64_t>& shape) {
    for (auto& e : shape)
      if (e > kMaxElements || e < -1) e = e < 0 ? -1 : 1;
    for (;;) {
      std::int64_t n = 1;
      for (auto e : shape) n *= e > 0 ? e : 1;
      if (n <= kMaxElements) return;
      auto& big = *std::max_element(shape.begin(), shape.end());
      big = 1;
    }
  }
  // Padded, broadcast (0), overlapping or negative strides now and then.
  void bend_strides(TensorView& t) {
    if (t.rank == 0) return;
    switch (in_.u8() % 16) {
      case 0: t.strides[in_.u8() % t.rank] = 0; break;
      case 1: for (int d = 0; d + 1 < t.rank; ++d) t.strides[d] += in_.u8() % 5; break;
      case 2: t.strides[in_.u8() % t.rank] *= -1; break;
      case 3: t.strides[in_.u8() % t.rank] = 1 + in_.u8() % 4; break;
      case 4: t.strides[t.rank - 1] = 2; break;
      default: break;
    }
  }
  // Allocates the span the view describes and points data inside it.
  void place(TensorView& t, std::int32_t index_hi) {
    std::int64_t lo = 0, hi = 0;
    bool empty = false;
    for (int d = 0; d < t.rank; ++d) {
      if (t.shape[d] <= 0) { empty = true; continue; }
      std::int64_t reach = (t.shape[d] - 1) * t.strides[d];
      (reach < 0 ? lo : hi) += reach;
    }
    std::int64_t span = empty ? 1 : hi - lo + 1;
    if (span > 4 * kMaxElements) {  // bent strides too far apart: make it contiguous
      std::int64_t s = 1;
      for (int d = t.rank - 1; d >= 0; --d) { t.strides[d] = s; s *= t.shape[d] > 0 ? t.shape[d] : 1; }
      lo = 0;
      span = s;
    }
    std::size_t esize = size_of(t.dtype) ? size_of(t.dtype) : 4;
    auto* base = static_cast<std::uint8_t*>(bytes(static_cast<std::size_t>(span) * esize));
    fill(base, span, t.dtype, index_hi);
    t.data = base + (-lo) * static_cast<std::int64_t>(esize);
  }
  // The first 64 elements from the input, the rest repeat them (memcpy
  // doubling: large buffers cost little per iteration).
  void fill(std::uint8_t* base, std::int64_t n, DType dtype, std::int32_t index_hi) {
    if (size_of(dtype) == 0) return;
    const std::int64_t head = std::min<std::int64_t>(n, 64);
    for (std::int64_t i = 0; i < head; ++i) {
      if (dtype == DType::int32) {
        std::int32_t v = in_.index(index_hi);
        std::memcpy(base + i * 4, &v, 4);
      } else {
        store_from_float(dtype, base, i, in_.element());
      }
    }
    const std::size_t total = static_cast<std::size_t>(n) * size_of(dtype);
    std::size_t done = static_cast<std::size_t>(head) * size_of(dtype);
    while (done < total) {
      std::size_t step = std::min(done, total - done);
      std::memcpy(base + done, base, step);
      done += step;
    }
  }

  FuzzInput& in_;
  std::deque<std::vector<std::uint8_t>> buffers_;
};

// A page table decoded from the input: B requests, pages per request, page
// ids and last_page_len, usually valid, sometimes with the edges the library
// must refuse (ids out of range or -1, repeated pages, last_page_len 0 or >
// page_size, indptr not monotone or not starting at 0, short indices).
struct PageTable {
  std::vector<std::int32_t> indptr, indices, last_page_len;
  std::int64_t batch() const { return static_cast<std::int64_t>(last_page_len.size()); }
};

inline PageTable page_table(FuzzInput& in, std::int64_t batch, std::int64_t num_pages, int page_size) {
  PageTable t;
  std::int32_t pages_hi = num_pages > 0 && num_pages < (1 << 30) ? static_cast<std::int32_t>(num_pages) : 1;
  t.indptr.push_back(0);
  for (std::int64_t b = 0; b < batch; ++b) {
    int pages = in.u8() % 4;
    for (int i = 0; i < pages; ++i) t.indices.push_back(in.index(pages_hi));
    t.indptr.push_back(static_cast<std::int32_t>(t.indices.size()));
    int ps = page_size > 0 ? page_size : 1;
    std::uint8_t l = in.u8();
    t.last_page_len.push_back(pages == 0 ? 0 : (l < 230 ? 1 + l % ps : (l % 2 || ps == std::numeric_limits<int>::max() ? 0 : ps + 1)));
  }
  switch (in.u8() % 16) {
    case 0: if (t.indptr.size() > 1) t.indptr[1 + in.u8() % (t.indptr.size() - 1)] -= 1 + in.u8() % 3; break;
    case 1: t.indptr[0] = 1; break;
    case 2: if (!t.indices.empty()) t.indices.pop_back(); break;
    case 3: if (!t.last_page_len.empty()) t.last_page_len.pop_back(); break;
    case 4: t.indptr.push_back(t.indptr.back()); break;
    default: break;
  }
  return t;
}

// The invariant every target checks besides "no crash, no sanitizer report":
// a refused call says why.
inline void expect_clear(const Status& s) {
  if (!s && s.message().empty()) __builtin_trap();
}

// A workspace of the size the plan asks for, or (now and then) a smaller or
// absent one, which run() and prepare() must refuse as WorkspaceTooSmall.
inline Workspace workspace(FuzzInput& in, Arena& arena, std::size_t needed) {
  if (needed > (std::size_t{1} << 26)) needed = 0;  // not allocatable here; the run is then refused
  switch (in.u8() % 16) {
    case 0: return {};
    case 1: return {arena.bytes(needed / 2), needed / 2};
    default: return {arena.bytes(needed), needed};
  }
}

// Runs a plan of Op from `desc` the way a caller would: create, then (where
// the op has one) prepare via `prep`, then run `args` a few times.
template <class Op, class Prep>
void drive(FuzzInput& in, Arena& arena, const typename Op::Desc& desc, const typename Op::Args& args, Prep prep) {
  (void)Plan<Op>::supports(desc, Device::cpu());
  auto plan = Plan<Op>::create(desc, Device::cpu());
  expect_clear(plan.status());
  if (!plan) return;
  Workspace ws = workspace(in, arena, plan->workspace_bytes());
  expect_clear(prep(*plan, ws));
  expect_clear(plan->can_implement(args));
  int runs = 1 + in.u8() % 2;
  for (int i = 0; i < runs; ++i) expect_clear(plan->run(args, ws, Stream{}));
}

// A target is a list of cases, one function each, which it returns from
// fuzz_cases(); the entry point (fuzz_main.cpp) lets the first input byte pick
// one, and reads no byte for a target of a single case.
using FuzzCase = void (*)(FuzzInput& in, Arena& arena);
const std::vector<FuzzCase>& fuzz_cases();

// A target's cases, in the order the first byte picks them:
// KVSERVE_FUZZ_CASES(merge_state, merge_states) inside namespace kvserve::fuzz.
#define KVSERVE_FUZZ_CASES(...)                                 \
  const std::vector<FuzzCase>& fuzz_cases() {                   \
    static const std::vector<FuzzCase> cases = {__VA_ARGS__};   \
    return cases;                                               \
  }

}  // namespace kvserve::fuzz
