// The demo's model: seeded random weights, small enough for the CPU, shaped
// like a real attention stack. Each layer embeds a token into q / k / v (rows
// of random tables) and rotates q and k by their position (RoPE); the logits
// are a random projection of the sum of the layers' attention outputs. It is
// not a language model; it makes every serving op do real work on real shapes.
#pragma once

#include <cstdint>
#include <vector>

namespace kvserve::cli {

// Rotates each of `heads` consecutive rows of width d by position pos (RoPE,
// base 10000, the row's halves paired).
void rope(std::int64_t pos, int heads, int d, double* x);

// A seeded table of N(0, 1) rows: the per-token weights of the demo's
// optional layers (demo_layers.hpp).
class ToyTable {
 public:
  ToyTable(int rows, int width, std::uint64_t seed);
  const float* row(int r) const { return t_.data() + static_cast<std::size_t>(r) * width_; }

 private:
  int width_;
  std::vector<float> t_;
};

struct ToyModelShape {
  int vocab = 2048;
  int layers = 2;
  int num_qo_heads = 8;
  int num_kv_heads = 2;
  int head_dim = 64;
};

class ToyModel {
 public:
  ToyModel(const ToyModelShape& shape, std::uint64_t seed);
  const ToyModelShape& shape() const { return s_; }
  // q [num_qo_heads * head_dim], k and v [num_kv_heads * head_dim] of a token
  // at a position, in layer `layer`.
  void q(int layer, int token, std::int64_t pos, double* out) const;
  void k(int layer, int token, std::int64_t pos, double* out) const;
  void v(int layer, int token, double* out) const;
  // logits [vocab] from the summed attention output [num_qo_heads * head_dim].
  void logits(const double* attn, float* out) const;

 private:
  ToyModelShape s_;
  std::vector<float> eq_, ek_, ev_, wout_;  // [layers][vocab][width] / [vocab][hq * d]
};

}  // namespace kvserve::cli
