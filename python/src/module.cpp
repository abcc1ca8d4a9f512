// kvserve._kvserve: the nanobind extension behind the kvserve package.
// python/kvserve/__init__.py re-exports it; the exception classes live in
// python/kvserve/_errors.py and are raised from here.
#include <kvserve/block_manager.hpp>

#include "bind.hpp"

namespace kvserve::py {

std::string plan_repr(const KernelInfo& k, Device device) {
  return "<" + k.op + "Plan on " + device.to_string() + ": " + k.key() + ">";
}

namespace {

// Builds kvserve's exception for a failed Status (kvserve._errors.from_status
// picks the class and parses field / expected / given from the message).
void translate(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const StatusError& e) {
    const Status& s = e.status;
    nb::object err = nb::module_::import_("kvserve._errors")
                         .attr("from_status")(std::string(name_of(s.code())), s.message(), s.needed(), s.got());
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
  }
}

void bind_enums(nb::module_& m) {
  bind_enum<DType>(m, "DType", {{"f16", DType::f16}, {"bf16", DType::bf16}, {"f32", DType::f32},
                                {"fp8_e4m3", DType::fp8_e4m3}, {"fp8_e5m2", DType::fp8_e5m2},
                                {"int32", DType::int32}});
  bind_enum<KvLayout>(m, "KvLayout", {{"NHD", KvLayout::NHD}, {"HND", KvLayout::HND}});
  bind_enum<AppendMode>(m, "AppendMode", {{"decode", AppendMode::decode}, {"ragged", AppendMode::ragged}});
  bind_enum<SamplingInput>(m, "SamplingInput", {{"probs", SamplingInput::probs}, {"logits", SamplingInput::logits}});
  bind_enum<SamplingFilter>(m, "SamplingFilter",
                            {{"none", SamplingFilter::none}, {"top_k", SamplingFilter::top_k},
                             {"top_p", SamplingFilter::top_p}, {"min_p", SamplingFilter::min_p},
                             {"top_k_top_p", SamplingFilter::top_k_top_p}, {"greedy", SamplingFilter::greedy}});
  bind_enum<TopKTopPOrder>(m, "TopKTopPOrder", {{"k_then_p", TopKTopPOrder::k_then_p}, {"joint", TopKTopPOrder::joint}});
  bind_enum<ParamSource>(m, "ParamSource", {{"scalar", ParamSource::scalar}, {"per_row", ParamSource::per_row}});
  bind_enum<RandomSource>(m, "RandomSource", {{"host", RandomSource::host}, {"per_row", RandomSource::per_row}});
  bind_enum<RenormKind>(m, "RenormKind",
                        {{"top_k_renorm_probs", RenormKind::top_k_renorm_probs},
                         {"top_p_renorm_probs", RenormKind::top_p_renorm_probs},
                         {"top_k_mask_logits", RenormKind::top_k_mask_logits}});
  bind_enum<PenaltyHistory>(m, "PenaltyHistory",
                            {{"token_counts", PenaltyHistory::token_counts}, {"token_ids", PenaltyHistory::token_ids}});
  bind_enum<Backend>(m, "Backend", {{"cpu", Backend::cpu}, {"cuda", Backend::cuda}});
  bind_enum<TablePart>(m, "TablePart", {{"all", TablePart::all}, {"prefix", TablePart::prefix},
                                        {"suffix", TablePart::suffix}});
}

template <class... T>
void bind_structs(nb::module_& m) {
  (bind_struct<T>(m, Fields<T>::kName), ...);
}

template <class... Op>
void bind_plans(nb::module_& m) {
  (bind_plan<Op>(m), ...);
}

// A numpy array owning a copy of v.
nb::object to_numpy(const std::vector<std::int32_t>& v) {
  auto* copy = new std::vector<std::int32_t>(v);
  nb::capsule owner(copy, [](void* p) noexcept { delete static_cast<std::vector<std::int32_t>*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, std::int32_t>(copy->data(), {copy->size()}, owner), nb::rv_policy::move);
}

void bind_block_manager(nb::module_& m) {
  // Page tables come back as numpy int32 arrays: ready for prepare() and for
  // upload (torch.from_numpy(...).cuda()).
  nb::class_<PageTable>(m, "PageTable")
      .def_prop_ro("indptr", [](const PageTable& t) { return to_numpy(t.indptr); })
      .def_prop_ro("indices", [](const PageTable& t) { return to_numpy(t.indices); })
      .def_prop_ro("last_page_len", [](const PageTable& t) { return to_numpy(t.last_page_len); })
      .def_prop_ro("batch", &PageTable::batch);
  nb::class_<CascadeTables>(m, "CascadeTables")
      .def_prop_ro("group_indptr", [](const CascadeTables& t) { return to_numpy(t.group_indptr); })
      .def_ro("prefix", &CascadeTables::prefix)
      .def_ro("suffix", &CascadeTables::suffix);
  using BM = BlockManager;
  nb::class_<BM>(m, "BlockManager")
      .def("__init__",
           [](BM* self, std::int64_t num_pages, int page_size) { new (self) BM(unwrap(BM::create(num_pages, page_size))); },
           "num_pages"_a, "page_size"_a)
      .def_prop_ro("page_size", &BM::page_size)
      .def_prop_ro("num_pages", &BM::num_pages)
      .def_prop_ro("free_pages", &BM::free_pages)
      .def_prop_ro("num_sequences", &BM::num_sequences)
      .def("refcount", [](const BM& b, std::int64_t page) { return unwrap(b.refcount(page)); }, "page"_a)
      .def("add_sequence", [](BM& b, std::int64_t tokens) { return unwrap(b.add_sequence(tokens)); }, "tokens"_a = 0)
      .def("fork",
           [](BM& b, SeqId parent, std::optional<std::int64_t> tokens) {
             return unwrap(tokens ? b.fork(parent, *tokens) : b.fork(parent));
           },
           "parent"_a, "tokens"_a = nb::none())
      .def("append_tokens", [](BM& b, SeqId s, std::int64_t n) { check(b.append_tokens(s, n)); }, "seq"_a, "tokens"_a = 1)
      .def("append_tokens_all", [](BM& b, const std::vector<SeqId>& s, std::int64_t n) { check(b.append_tokens(s, n)); },
           "seqs"_a, "tokens"_a = 1)
      .def("pages_needed", [](const BM& b, SeqId s, std::int64_t n) { return unwrap(b.pages_needed(s, n)); }, "seq"_a,
           "tokens"_a)
      .def("truncate", [](BM& b, SeqId s, std::int64_t n) { check(b.truncate(s, n)); }, "seq"_a, "length"_a)
      .def("release", [](BM& b, SeqId s) { check(b.release(s)); }, "seq"_a)
      .def("length", [](const BM& b, SeqId s) { return unwrap(b.sequence(s)).length; }, "seq"_a)
      .def("pages", [](const BM& b, SeqId s) {
             auto info = unwrap(b.sequence(s));
             return std::vector<std::int32_t>(info.pages.begin(), info.pages.end());
           }, "seq"_a)
      .def("page_table",
           [](const BM& b, const std::vector<SeqId>& seqs, TablePart part) { return unwrap(b.page_table(seqs, part)); },
           "seqs"_a, "part"_a = TablePart::all)
      .def("cascade_tables",
           [](const BM& b, const std::vector<std::vector<SeqId>>& groups) { return unwrap(b.cascade_tables(groups)); },
           "groups"_a);
}

}  // namespace

}  // namespace kvserve::py

NB_MODULE(_kvserve, m) {
  using namespace kvserve;
  using namespace kvserve::py;
  nb::register_exception_translator(translate);
  bind_enums(m);
  bind_structs<AttentionParams, PagedKvDesc, BatchPagedDecodeDesc, SingleDecodeDesc, SinglePrefillDesc,
               BatchRaggedPrefillDesc, BatchPagedPrefillDesc, CascadeAttentionDesc, MergeStateDesc, MergeStatesDesc,
               PagedKvAppendDesc, PagedMlaDesc, KvCacheAppendDesc, BatchPagedMlaDecodeDesc, SamplingDesc,
               SamplingRenormDesc, ChainSpeculativeSamplingDesc, TokenPenaltyDesc, RmsNormDesc, GdnPrefillDesc,
               GdnDecodeDesc, Precision, CompiledKernel>(m);
  bind_struct<KernelInfo>(m, "KernelInfo").def("key", &KernelInfo::key);
  bind_plans<BatchPagedDecode, SingleDecode, SinglePrefill, BatchRaggedPrefill, BatchPagedPrefill, CascadeAttention,
             MergeState, MergeStates, PagedKvAppend, PagedMlaAppend, KvCacheAppend, BatchPagedMlaDecode, Sampling,
             SamplingRenorm, ChainSpeculativeSampling, TokenPenalty, RmsNorm, GdnPrefill, GdnDecode>(m);
  bind_block_manager(m);

  m.def("compiled_kernels", &compiled_kernels);
  m.def("cuda_backend_built", &cuda_backend_built);
  m.def("cuda_device_count", &cuda_device_count);
  m.def(
      "validate_page_table",
      [](const PagedKvDesc& desc, nb::handle stream, nb::kwargs page_table) {
        Holder hold;
        hold.where = "validate_page_table";
        hold.byte_dtype = is_fp8(desc.dtype) ? std::optional<DType>(desc.dtype) : std::nullopt;
        PagedKv kv{};
        fill(kv, page_table, hold, "");
        const Device device = kv.indptr.defined() ? kv.indptr.device : Device::cpu();
        const Stream st = to_stream(stream, device);
        call_unlocked([&] { return validate_page_table(desc, kv, st); });
      },
      "desc"_a, nb::kw_only(), "stream"_a = nb::none(), "page_table"_a);
}
