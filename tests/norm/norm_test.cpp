// RmsNorm (plain, Gemma, fused add, per-head QK norm) against the fp64 oracle
// on every test device, and its validation.
#include <cmath>
#include <cstring>

#include "harness/harness.hpp"
#include "kvserve/norm.hpp"
#include "reference/oracle_norm.hpp"

namespace kvserve::test {
namespace {

// Where the rows of an x-shaped tensor live in its buffer: [rows, H] or
// [tokens, heads, H], contiguous or with padded strides (as q inside a fused
// qkv projection: token stride (heads + 3) * H).
struct RowLayout {
  std::vector<std::int64_t> shape, strides;
  std::int64_t rows = 0, buffer_size = 0;

  RowLayout(const std::vector<std::int64_t>& lead, int hidden, bool padded) : shape(lead) {
    shape.push_back(hidden);
    if (lead.size() == 1) {
      strides = {padded ? hidden + 8 : hidden, 1};
    } else {
      const std::int64_t heads = lead[1];
      strides = {(padded ? heads + 3 : heads) * hidden, hidden, 1};
    }
    rows = 1;
    for (std::int64_t e : lead) rows *= e;
    buffer_size = rows == 0 ? 0 : 1;
    for (std::size_t d = 0; d < shape.size() && rows > 0; ++d) buffer_size += (shape[d] - 1) * strides[d];
  }
  // Buffer index of element c of logical row r (rows in row-major order).
  std::int64_t index(std::int64_t r, std::int64_t c) const {
    if (shape.size() == 2) return r * strides[0] + c;
    return (r / shape[1]) * strides[0] + (r % shape[1]) * strides[1] + c;
  }
  TensorView view(const Buffer& b) const {
    TensorView v = b.view({b.size()});
    v.rank = static_cast<int>(shape.size());
    for (int d = 0; d < v.rank; ++d) v.shape[d] = shape[d], v.strides[d] = strides[d];
    return v;
  }
  std::vector<double> gather(const std::vector<double>& buffer_values) const {
    const std::int64_t n = shape.back();
    std::vector<double> rows_out(static_cast<std::size_t>(rows * n));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < n; ++c) rows_out[r * n + c] = buffer_values[index(r, c)];
    return rows_out;
  }
  // Buffer entries outside the view.
  std::vector<bool> outside() const {
    std::vector<bool> out(static_cast<std::size_t>(buffer_size), true);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < shape.back(); ++c) out[index(r, c)] = false;
    return out;
  }
};

// Bit-level equality of two value lists where NaN equals NaN (poison).
bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void expect_outside_unchanged(const RowLayout& l, const std::vector<double>& before, const std::vector<double>& after,
                              const std::string& what) {
  const std::vector<bool> outside = l.outside();
  for (std::size_t i = 0; i < outside.size(); ++i)
    if (outside[i] && !same_value(before[i], after[i])) {
      ADD_FAILURE() << what << ": element " << i << " outside the view was written";
      return;
    }
}

struct NormCase {
  DType dtype;
  int hidden;
  std::vector<std::int64_t> lead;  // {rows} or {tokens, heads}
  float eps = 1e-6f;
  float weight_offset = 0.f;
  bool fused_add = false;
  bool padded = false;    // x, residual and out use padded strides
  bool in_place = false;  // out is x
  double x_range = 2;     // x and residual uniform in [-x_range, x_range]
  bool zero_first_row = false;
};

void run_case(const NormCase& c, Device device) {
  SCOPED_TRACE(std::string(name_of(c.dtype)) + " hidden=" + std::to_string(c.hidden) + " rank=" +
               std::to_string(c.lead.size() + 1) + " eps=" + std::to_string(c.eps) + " offset=" +
               std::to_string(c.weight_offset) + (c.fused_add ? " fused_add" : "") + (c.padded ? " padded" : "") +
               (c.in_place ? " in_place" : "") + " on " + device.to_string());
  auto rng = make_rng();
  const RowLayout layout(c.lead, c.hidden, c.padded);
  RmsNormDesc desc{.hidden_size = c.hidden, .dtype = c.dtype, .eps = c.eps, .weight_offset = c.weight_offset,
                   .fused_add = c.fused_add};
  auto plan = RmsNormPlan::create(desc, device);
  if (device.is_cuda() && c.hidden * size_of(c.dtype) % 16 != 0) {
    // The CUDA kernel moves 16-byte chunks: other row lengths are a
    // configuration it does not serve, and must say so.
    ASSERT_FALSE(plan) << "a CUDA plan for hidden_size " << c.hidden;
    EXPECT_EQ(plan.status().code(), StatusCode::unsupported) << plan.status().to_string();
    EXPECT_NE(plan.status().message().find("hidden=" + std::to_string(c.hidden)), std::string::npos)
        << plan.status().to_string();
    return;
  }
  ASSERT_TRUE(plan) << plan.status().to_string();

  Buffer x(c.dtype, layout.buffer_size, device), w(c.dtype, c.hidden, device);
  Buffer residual(c.dtype, c.fused_add ? layout.buffer_size : 0, device), out(c.dtype, layout.buffer_size, device);
  x.fill_uniform(rng, -c.x_range, c.x_range);
  if (c.zero_first_row) {
    for (std::int64_t i = 0; i < c.hidden; ++i) x.set(layout.index(0, i), 0);
    x.upload();
  }
  w.fill_uniform(rng, -1, 1);
  residual.fill_uniform(rng, -c.x_range, c.x_range);
  out.poison();
  const std::vector<double> x_before = x.values(), residual_before = residual.values(), out_before = out.values();
  if (layout.rows > 0) {
    expect_nonzero(x_before, "x");
    expect_nonzero(w.values(), "weight");
  }

  const Buffer& out_buffer = c.in_place ? x : out;
  RmsNormArgs args{.x = layout.view(x), .weight = w.view({c.hidden}), .out = layout.view(out_buffer)};
  if (c.fused_add) args.residual = layout.view(residual);
  Status s = plan->run(args, {}, {});
  ASSERT_TRUE(s) << s.to_string();
  synchronize(device);
  x.download();
  out.download();
  residual.download();

  const oracle::RmsNormSpec spec{.hidden = c.hidden, .eps = c.eps, .weight_offset = c.weight_offset};
  const std::vector<double> x_rows = layout.gather(x_before), w_values = w.values();
  std::vector<double> ref;
  if (c.fused_add) {
    std::vector<double> ref_residual = layout.gather(residual_before);
    ref = oracle::fused_add_rms_norm(spec, c.dtype, x_rows, &ref_residual, w_values);
    expect_close(layout.gather(residual.values()), ref_residual, c.dtype, "residual");
    expect_outside_unchanged(layout, residual_before, residual.values(), "residual");
  } else {
    ref = oracle::rms_norm(spec, x_rows, w_values);
  }
  expect_close(layout.gather(out_buffer.values()), ref, c.dtype, "out");
  expect_outside_unchanged(layout, c.in_place ? x_before : out_before, out_buffer.values(), "out");
  if (!c.in_place) EXPECT_EQ(x.values(), x_before) << "x was written";
}

class RmsNormTest : public DeviceTest {};

TEST_P(RmsNormTest, DtypesAndOddHiddenSizes) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int hidden : {1, 7, 128, 4097})
      run_case({.dtype = t, .hidden = hidden, .lead = {5}}, GetParam());
  run_case({.dtype = DType::bf16, .hidden = 8192, .lead = {3}}, GetParam());
}

TEST_P(RmsNormTest, EpsVariations) {
  // Small inputs, so that eps is a visible part of mean(x^2) + eps.
  for (float eps : {1e-6f, 1e-5f, 1e-3f, 1.f})
    run_case({.dtype = DType::f32, .hidden = 300, .lead = {4}, .eps = eps, .x_range = 0.05}, GetParam());
}

TEST_P(RmsNormTest, GemmaWeightOffset) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    run_case({.dtype = t, .hidden = 2049, .lead = {6}, .weight_offset = 1.f}, GetParam());
}

TEST_P(RmsNormTest, FusedAddUpdatesResidualInPlace) {
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (float offset : {0.f, 1.f})
      run_case({.dtype = t, .hidden = 4097, .lead = {7}, .weight_offset = offset, .fused_add = true}, GetParam());
  run_case({.dtype = DType::bf16, .hidden = 1000, .lead = {9}, .fused_add = true, .padded = true}, GetParam());
  run_case({.dtype = DType::f16, .hidden = 513, .lead = {3}, .fused_add = true, .in_place = true}, GetParam());
}

TEST_P(RmsNormTest, QkNormPerHeadOnStridedViews) {
  // q / k heads inside a fused projection, normalised in place or into a copy.
  for (DType t : {DType::f16, DType::bf16, DType::f32})
    for (int head_dim : {64, 128, 256}) {
      run_case({.dtype = t, .hidden = head_dim, .lead = {9, 4}, .padded = true, .in_place = true}, GetParam());
      run_case({.dtype = t, .hidden = head_dim, .lead = {5, 2}, .padded = true}, GetParam());
    }
  run_case({.dtype = DType::bf16, .hidden = 80, .lead = {3, 5}, .weight_offset = 1.f}, GetParam());
}

TEST_P(RmsNormTest, PaddedRowsAndInPlace) {
  run_case({.dtype = DType::bf16, .hidden = 4097, .lead = {4}, .padded = true}, GetParam());
  run_case({.dtype = DType::f32, .hidden = 1023, .lead = {4}, .padded = true, .in_place = true}, GetParam());
}

// Hidden sizes a vectorised GPU kernel serves (multiples of 16 bytes), in
// place and fused, including rows longer than its registers hold.
TEST_P(RmsNormTest, VectorisedRowsInPlaceFusedAndLong) {
  for (DType t : {DType::f16, DType::bf16, DType::f32}) {
    run_case({.dtype = t, .hidden = 4096, .lead = {5}, .fused_add = true, .in_place = true}, GetParam());
    run_case({.dtype = t, .hidden = 2048, .lead = {3}, .weight_offset = 1.f, .padded = true, .in_place = true},
             GetParam());
  }
  run_case({.dtype = DType::f32, .hidden = 12288, .lead = {3}, .fused_add = true, .padded = true}, GetParam());
  run_case({.dtype = DType::bf16, .hidden = 20480, .lead = {2}, .in_place = true}, GetParam());
  run_case({.dtype = DType::bf16, .hidden = 128, .lead = {33, 8}, .fused_add = true, .padded = true}, GetParam());
}

TEST_P(RmsNormTest, EdgeRows) {
  // No rows at all; a row of zeros (normalises to 0, never NaN); f16 values near
  // the top of its range, whose squares only fit in the fp32 accumulator.
  run_case({.dtype = DType::bf16, .hidden = 64, .lead = {0}}, GetParam());
  run_case({.dtype = DType::bf16, .hidden = 64, .lead = {0, 4}}, GetParam());
  run_case({.dtype = DType::f16, .hidden = 257, .lead = {3}, .zero_first_row = true}, GetParam());
  run_case({.dtype = DType::f16, .hidden = 4097, .lead = {2}, .x_range = 60000}, GetParam());
  run_case({.dtype = DType::f16, .hidden = 4097, .lead = {2}, .fused_add = true, .x_range = 30000}, GetParam());
}

// The header's promise: fused add + norm equals the add (rounded to dtype)
// followed by a plain norm of the new residual, bit for bit.
TEST_P(RmsNormTest, FusedAddEqualsAddThenNorm) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int hidden = 3000;
  const std::int64_t rows = 6;
  for (DType t : {DType::f16, DType::bf16, DType::f32}) {
    SCOPED_TRACE(std::string(name_of(t)));
    RmsNormDesc desc{.hidden_size = hidden, .dtype = t, .eps = 1e-5f, .fused_add = true};
    KVS_CREATE_OR_SKIP(fused, RmsNormPlan, desc, device);
    desc.fused_add = false;
    KVS_CREATE_OR_SKIP(plain, RmsNormPlan, desc, device);
    Buffer x(t, rows * hidden, device), w(t, hidden, device), residual(t, rows * hidden, device),
        y_fused(t, rows * hidden, device), y_plain(t, rows * hidden, device);
    x.fill_uniform(rng, -2, 2);
    w.fill_uniform(rng, -1, 1);
    residual.fill_uniform(rng, -2, 2);
    y_fused.poison();
    y_plain.poison();
    ASSERT_TRUE(fused->run({.x = x.view({rows, hidden}), .weight = w.view({hidden}),
                            .residual = residual.view({rows, hidden}), .out = y_fused.view({rows, hidden})},
                           {}, {}));
    ASSERT_TRUE(plain->run({.x = residual.view({rows, hidden}), .weight = w.view({hidden}),
                            .out = y_plain.view({rows, hidden})},
                           {}, {}));
    synchronize(device);
    y_fused.download();
    y_plain.download();
    expect_nonzero(y_plain.values(), "y");
    EXPECT_EQ(y_fused.values(), y_plain.values());
  }
}

// ---------------------------------------------------------------- validation

TEST_P(RmsNormTest, RejectsBadDescriptorFields) {
  const Device device = GetParam();
  const RmsNormDesc good{.hidden_size = 128, .dtype = DType::bf16, .eps = 1e-6f};
  if (device.is_cpu()) ASSERT_TRUE(RmsNormPlan::supports(good, device));
  const auto check = [&](RmsNormDesc d, const std::string& field) {
    SCOPED_TRACE(field);
    auto plan = RmsNormPlan::create(d, device);
    ASSERT_FALSE(plan);
    expect_rejected(plan.status(), field);
    expect_rejected(RmsNormPlan::supports(d, device), field);
  };
  for (int hidden : {0, -4}) {
    RmsNormDesc d = good;
    d.hidden_size = hidden;
    check(d, "hidden_size");
  }
  for (DType t : {DType::int32, DType::fp8_e4m3}) {
    RmsNormDesc d = good;
    d.dtype = t;
    check(d, "dtype");
  }
  for (float eps : {0.f, -1e-6f, NAN, INFINITY}) {
    RmsNormDesc d = good;
    d.eps = eps;
    check(d, "eps");
  }
  for (float offset : {0.5f, -1.f, NAN}) {
    RmsNormDesc d = good;
    d.weight_offset = offset;
    check(d, "weight_offset");
  }
}

TEST_P(RmsNormTest, RejectsBadArgumentsAndWritesNothing) {
  const Device device = GetParam();
  auto rng = make_rng();
  const int hidden = 96;
  const std::int64_t tokens = 4, heads = 3;
  const DType t = DType::f16;
  RmsNormDesc desc{.hidden_size = hidden, .dtype = t, .fused_add = true};
  KVS_CREATE_OR_SKIP(plan, RmsNormPlan, desc, device);
  Buffer x(t, tokens * heads * hidden, device), w(t, hidden, device), residual(t, tokens * heads * hidden, device),
      out(t, tokens * heads * hidden, device), wrong_type(DType::f32, tokens * heads * hidden, device);
  x.fill_uniform(rng, -1, 1);
  w.fill_uniform(rng, -1, 1);
  residual.fill_uniform(rng, -1, 1);
  const std::vector<double> residual_before = residual.values();
  const RmsNormArgs good{.x = x.view({tokens, heads, hidden}), .weight = w.view({hidden}),
                         .residual = residual.view({tokens, heads, hidden}), .out = out.view({tokens, heads, hidden})};

  const auto check = [&](RmsNormArgs a, const std::string& name) {
    SCOPED_TRACE(name);
    out.poison();
    expect_rejected(plan->run(a, {}, {}), name);
    ASSERT_TRUE(still_poisoned(out)) << "out was written";
    residual.download();
    EXPECT_EQ(residual.values(), residual_before) << "residual was written";
  };
  RmsNormArgs a = good;
  a.x = {};
  check(a, "x");
  a = good;
  a.x = x.view({tokens * heads * hidden});
  check(a, "x");  // rank 1
  a.x = x.view({1, tokens, heads, hidden});
  check(a, "x");  // rank 4
  a = good;
  a.x = wrong_type.view({tokens, heads, hidden});
  check(a, "x");
  a = good;
  a.x = x.view_strided({tokens, heads, hidden}, {heads * hidden, 1, heads});
  check(a, "x");  // last dim not contiguous
  a = good;
  a.x.device = other_device(device);
  check(a, "x");
  a = good;
  a.weight = w.view({hidden / 2});
  check(a, "weight");
  a.weight = wrong_type.view({hidden});
  check(a, "weight");
  a = good;
  a.residual = {};
  check(a, "residual");
  a.residual = residual.view({tokens, heads - 1, hidden});
  check(a, "residual");
  a.residual = residual.view({tokens * heads, hidden});
  check(a, "residual");  // rank differs from x
  a = good;
  a.out = out.view({tokens - 1, heads, hidden});
  check(a, "out");
  a.out = wrong_type.view({tokens, heads, hidden});
  check(a, "out");
  a.out = {};
  check(a, "out");

  // A residual without fused_add is a mistake, not something to ignore.
  desc.fused_add = false;
  KVS_CREATE_OR_SKIP(plain, RmsNormPlan, desc, device);
  out.poison();
  expect_rejected(plain->run(good, {}, {}), "residual");
}

INSTANTIATE_TEST_SUITE_P(Devices, RmsNormTest, ::testing::ValuesIn(test_devices()),
                         [](const auto& info) { return device_label(info.param); });

}  // namespace
}  // namespace kvserve::test
