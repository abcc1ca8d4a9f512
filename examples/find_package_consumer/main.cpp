// Paged decode on the CPU through an installed kvserve: one request of 40
// tokens in pages of 16, checked against a direct computation.
#include <kvserve/attention.hpp>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <vector>

int main() {
  using namespace kvserve;
  const int page_size = 16, heads = 2, dim = 64, pages = 3, len = 40;
  PagedKvDesc kv{.page_size = page_size, .num_pages = pages, .num_kv_heads = heads, .head_dim = dim,
                 .dtype = DType::f32, .layout = KvLayout::NHD};
  BatchPagedDecodeDesc desc{.max_batch = 1, .num_qo_heads = heads, .kv = kv, .q_dtype = DType::f32};
  auto plan = BatchPagedDecodePlan::create(desc, Device::cpu());
  if (!plan) {
    std::printf("create: %s\n", plan.status().to_string().c_str());  // names the field, what was expected and given
    return 1;
  }
  std::vector<float> q(heads * dim), k(pages * page_size * heads * dim), v(k.size()), out(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.1f * i);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.07f * i), v[i] = std::sin(0.03f * i);
  std::vector<int> indptr{0, pages}, indices{2, 0, 1}, last{len - 2 * page_size};
  // A plan never allocates: the caller owns its scratch, workspace_bytes() of it, 256-byte aligned.
  std::vector<std::byte> scratch(plan->workspace_bytes() + 256);
  void* base = scratch.data();
  std::size_t room = scratch.size();
  const Workspace ws{std::align(256, plan->workspace_bytes(), base, room), plan->workspace_bytes()};
  // Once per step: schedule from the host copy of the page table's lengths.
  if (Status s = plan->prepare({indptr, last}, ws, Stream{}); !s) return std::printf("%s\n", s.to_string().c_str()), 1;
  BatchPagedDecodeArgs args{
      .q = TensorView::contiguous(q.data(), DType::f32, {1, heads, dim}),
      .kv = {.k_pages = TensorView::contiguous(k.data(), DType::f32, {pages, page_size, heads, dim}),
             .v_pages = TensorView::contiguous(v.data(), DType::f32, {pages, page_size, heads, dim}),
             .indptr = TensorView::contiguous(indptr.data(), DType::int32, {2}),
             .indices = TensorView::contiguous(indices.data(), DType::int32, {3}),
             .last_page_len = TensorView::contiguous(last.data(), DType::int32, {1})},
      .out = TensorView::contiguous(out.data(), DType::f32, {1, heads, dim})};
  // Then any number of runs per prepare (on CUDA: asynchronous on the stream).
  if (Status s = plan->run(args, ws, Stream{}); !s) return std::printf("%s\n", s.to_string().c_str()), 1;
  // Direct computation for head 0.
  double m = -1e300, sum = 0, o0 = 0;
  std::vector<double> s(len);
  for (int j = 0; j < len; ++j) {
    const int page = indices[j / page_size], slot = j % page_size;
    double dot = 0;
    for (int c = 0; c < dim; ++c) dot += q[c] * k[((page * page_size + slot) * heads) * dim + c];
    s[j] = dot / std::sqrt(double(dim));
    m = std::max(m, s[j]);
  }
  for (int j = 0; j < len; ++j) {
    const int page = indices[j / page_size], slot = j % page_size;
    sum += std::exp(s[j] - m);
    o0 += std::exp(s[j] - m) * v[((page * page_size + slot) * heads) * dim];
  }
  o0 /= sum;
  const bool ok = std::fabs(o0 - out[0]) < 1e-4;
  std::printf("kvserve consumer: %s (%s) out[0]=%.6f expected %.6f\n", ok ? "ok" : "MISMATCH",
              plan->kernel().key().c_str(), out[0], o0);
  return ok ? 0 : 1;
}
