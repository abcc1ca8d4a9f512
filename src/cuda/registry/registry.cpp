// Selection and listing from the kernel rows: the one place a CUDA plan's
// configuration is looked up and the one spelling of its Unsupported.
#include "cuda/registry/registry.hpp"

#include <atomic>

#include "cuda/cuda_kernels.hpp"

#include "cuda/merge/merge_params.hpp"
#include "cuda/multi_query/multi_query_schedule.hpp"

namespace kvserve::detail::cuda {
namespace {

// The figures the listing's text states, held to the kernels' constants.
static_assert(kMergeMaxStates == 12288, "kFamilyOps: MergeStates N <= 12288");
static_assert(kCascadeMaxPrefixSplits == 8, "kFamilyOps: CascadeAttention prefix split <= 8");
static_assert(kMaxVocab == 4194304, "kFamilyOps: Sampling vocab <= 4194304");

// How a family names a row's fields (null: the field is not part of its key).
struct Labels {
  const char* q;
  const char* kv;
  const char* dim;
};
constexpr Labels labels_of(Family f) {
  switch (f) {
    case Family::paged_decode:
    case Family::multi_query: return {"q", "kv", "d"};
    case Family::paged_append: return {"rows", "pool", nullptr};
    case Family::single_decode:
    case Family::merge: return {"dtype", nullptr, "d"};
    case Family::norm: return {"dtype", nullptr, "hidden"};
    case Family::mla_decode: return {"dtype", nullptr, "ckv"};
    default: return {"dtype", nullptr, nullptr};
  }
}

int chunk_of(DType t) { return 16 / static_cast<int>(size_of(t)); }

bool serves(const KernelRow& row, Family family, const RowKey& key) {
  if (row.family != family || row.q != key.q || row.kv != key.kv) return false;
  if (row.head_dim == kAnyHeadDim) return true;
  if (row.head_dim == kChunkMultiple) return key.head_dim > 0 && key.head_dim % chunk_of(row.q) == 0;
  return row.head_dim == key.head_dim;
}

std::string dtypes_text(Family family, DType q, DType kv) {
  const Labels l = labels_of(family);
  std::string text = std::string(l.q) + "=" + std::string(name_of(q));
  if (l.kv) text += std::string(" ") + l.kv + "=" + std::string(name_of(kv));
  return text;
}

// What the family's rows hold, grouped by dtypes: "q=f16 kv=f16 d in {64,128,256}; ...".
std::string built_text(Family family) {
  const Labels l = labels_of(family);
  std::string text;
  for (int i = 0; i < kKernelRowCount; ++i) {
    const KernelRow& r = kKernelRows[i];
    if (r.family != family) continue;
    bool first_of_group = true;
    for (int j = 0; j < i; ++j)
      first_of_group &= !(kKernelRows[j].family == family && kKernelRows[j].q == r.q && kKernelRows[j].kv == r.kv);
    if (!first_of_group) continue;
    if (!text.empty()) text += "; ";
    if (r.head_dim > 0) {
      text += dtypes_text(family, r.q, r.kv) + " " + l.dim + " in {";
      bool first = true;
      for (int j = i; j < kKernelRowCount; ++j) {
        const KernelRow& s = kKernelRows[j];
        if (s.family != family || s.q != r.q || s.kv != r.kv) continue;
        if (!first) text += ",";
        text += std::to_string(s.head_dim);
        first = false;
      }
      text += "}";
    } else {
      text += row_text(r);
    }
  }
  return text;
}

std::atomic<std::uint64_t> g_lookups{0};
std::array<std::atomic<bool>, kKernelRowCount> g_launchable{};

}  // namespace

std::string row_text(const KernelRow& row) {
  const Labels l = labels_of(row.family);
  std::string text = dtypes_text(row.family, row.q, row.kv);
  if (!l.dim) return text;
  if (row.head_dim == kChunkMultiple) return text + " " + l.dim + " a multiple of " + std::to_string(chunk_of(row.q));
  if (row.head_dim > 0) return text + " " + l.dim + "=" + std::to_string(row.head_dim);
  return text;
}

Status no_kernel(std::string_view op, std::string_view what, std::string_view built) {
  return Status::unsupported(std::string(op) + ": no CUDA kernel for " + std::string(what) + " (built: " +
                             std::string(built) + ")");
}

Result<int> find_row(std::string_view op, Family family, RowKey key) {
  g_lookups.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < kKernelRowCount; ++i)
    if (serves(kKernelRows[i], family, key)) return i;
  const Labels l = labels_of(family);
  std::string asked = dtypes_text(family, key.q, key.kv);
  if (l.dim) asked += std::string(" ") + l.dim + "=" + std::to_string(key.head_dim);
  return no_kernel(op, asked, built_text(family));
}

std::uint64_t row_lookups() { return g_lookups.load(std::memory_order_relaxed); }

void mark_launchable(int row) { g_launchable[row].store(true, std::memory_order_relaxed); }

std::vector<int> rows_without_launcher() {
  std::vector<int> missing;
  for (int i = 0; i < kKernelRowCount; ++i)
    if (!g_launchable[i].load(std::memory_order_relaxed)) missing.push_back(i);
  return missing;
}

}  // namespace kvserve::detail::cuda

namespace kvserve::detail {

// Every row, one line per (op, row), for `kvserve list` and the docs.
std::vector<CompiledKernel> cuda_compiled_kernels() {
  using namespace cuda;
  std::vector<CompiledKernel> out;
  for (const FamilyOp& f : kFamilyOps)
    for (const KernelRow& r : kKernelRows)
      if (r.family == f.family)
        out.push_back({Backend::cuda, std::string(f.op), row_text(r) + ", " + std::string(f.accepts)});
  return out;
}

}  // namespace kvserve::detail
