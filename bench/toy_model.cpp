#include "toy_model.hpp"

#include <cmath>
#include <random>

namespace kvserve::cli {

ToyModel::ToyModel(const ToyModelShape& s, std::uint64_t seed) : s_(s) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  const std::size_t wq = static_cast<std::size_t>(s.num_qo_heads) * s.head_dim;
  const std::size_t wkv = static_cast<std::size_t>(s.num_kv_heads) * s.head_dim;
  const std::size_t rows = static_cast<std::size_t>(s.layers) * s.vocab;
  eq_.resize(rows * wq);
  ek_.resize(rows * wkv);
  ev_.resize(rows * wkv);
  wout_.resize(static_cast<std::size_t>(s.vocab) * wq);
  for (auto* t : {&eq_, &ek_, &ev_}) for (float& x : *t) x = n(rng);
  const float out_scale = 4.f / std::sqrt(static_cast<float>(wq));  // logits with a spread of a few units
  for (float& x : wout_) x = n(rng) * out_scale;
}

void rope(std::int64_t pos, int heads, int d, double* x) {
  const int half = d / 2;
  for (int h = 0; h < heads; ++h) {
    double* r = x + static_cast<std::ptrdiff_t>(h) * d;
    for (int i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos) * std::pow(10000.0, -2.0 * i / d);
      const double c = std::cos(angle), sn = std::sin(angle), a = r[i], b = r[i + half];
      r[i] = a * c - b * sn;
      r[i + half] = a * sn + b * c;
    }
  }
}

ToyTable::ToyTable(int rows, int width, std::uint64_t seed)
    : width_(width), t_(static_cast<std::size_t>(rows) * width) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  for (float& x : t_) x = n(rng);
}

void ToyModel::q(int layer, int token, std::int64_t pos, double* out) const {
  const std::size_t w = static_cast<std::size_t>(s_.num_qo_heads) * s_.head_dim;
  const float* row = eq_.data() + (static_cast<std::size_t>(layer) * s_.vocab + token) * w;
  for (std::size_t i = 0; i < w; ++i) out[i] = row[i];
  rope(pos, s_.num_qo_heads, s_.head_dim, out);
}

void ToyModel::k(int layer, int token, std::int64_t pos, double* out) const {
  const std::size_t w = static_cast<std::size_t>(s_.num_kv_heads) * s_.head_dim;
  const float* row = ek_.data() + (static_cast<std::size_t>(layer) * s_.vocab + token) * w;
  for (std::size_t i = 0; i < w; ++i) out[i] = row[i];
  rope(pos, s_.num_kv_heads, s_.head_dim, out);
}

void ToyModel::v(int layer, int token, double* out) const {
  const std::size_t w = static_cast<std::size_t>(s_.num_kv_heads) * s_.head_dim;
  const float* row = ev_.data() + (static_cast<std::size_t>(layer) * s_.vocab + token) * w;
  for (std::size_t i = 0; i < w; ++i) out[i] = row[i];
}

void ToyModel::logits(const double* attn, float* out) const {
  const std::size_t w = static_cast<std::size_t>(s_.num_qo_heads) * s_.head_dim;
  for (int t = 0; t < s_.vocab; ++t) {
    const float* row = wout_.data() + static_cast<std::size_t>(t) * w;
    double acc = 0;
    for (std::size_t i = 0; i < w; ++i) acc += row[i] * attn[i];
    out[t] = static_cast<float>(acc);
  }
}

}  // namespace kvserve::cli
