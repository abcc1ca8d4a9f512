// The online-softmax state of the CPU backend and its merge rule: cascade
// attention and the MergeState / MergeStates ops combine partial attention
// results through this one type, so they agree to the bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace kvserve::detail::cpu {

// Attention over a set of keys with logits s_j, kept unnormalised in fp32 and
// natural log:
//   max = max_j s_j          (-inf while the set is empty),
//   sum = sum_j exp(s_j - max),
//   acc = sum_j exp(s_j - max) v_j     ([dim] floats).
// Its finished form is the output acc / sum with lse = max + log(sum).
class SoftmaxState {
 public:
  explicit SoftmaxState(int dim) : acc_(static_cast<std::size_t>(dim), 0.f) {}

  // Back to the empty state (keeps the storage).
  void clear() {
    max_ = -std::numeric_limits<float>::infinity();
    sum_ = 0.f;
    std::fill(acc_.begin(), acc_.end(), 0.f);
  }

  // Absorbs a finished partial result (o, lse) over keys disjoint from those
  // already absorbed. A partial with lse = -inf saw no key: it is skipped
  // without reading o (which may hold anything), so merging with it leaves
  // this state exactly as it was. Otherwise the larger lse becomes the
  // reference, so every exponent is <= 0 and an empty state's -inf only ever
  // appears as exp(-inf) = 0, never as -inf - -inf.
  void merge(const float* o, float lse) {
    if (lse == -std::numeric_limits<float>::infinity()) return;
    if (lse > max_) {
      const float rescale = std::exp(max_ - lse);  // 0 while empty
      sum_ *= rescale;
      for (float& a : acc_) a *= rescale;
      max_ = lse;
    }
    const float w = std::exp(lse - max_);
    sum_ += w;
    for (std::size_t c = 0; c < acc_.size(); ++c) acc_[c] += w * o[c];
  }

  // Writes the output (dim floats) and its lse; the empty state writes zeros
  // and -inf. A state built from one partial reproduces it exactly (w = 1).
  void finish(float* o, float* lse) const {
    if (sum_ == 0.f) {
      std::fill(o, o + acc_.size(), 0.f);
      *lse = -std::numeric_limits<float>::infinity();
      return;
    }
    const float inv = 1.f / sum_;
    for (std::size_t c = 0; c < acc_.size(); ++c) o[c] = acc_[c] * inv;
    *lse = max_ + std::log(sum_);
  }

 private:
  float max_ = -std::numeric_limits<float>::infinity();
  float sum_ = 0.f;
  std::vector<float> acc_;
};

}  // namespace kvserve::detail::cpu
