"""FlashInfer's MLA decode wrapper on kvserve's BatchPagedMlaDecode: the
absorbed form over the paged (ckv, kpe) cache that append_paged_mla_kv_cache
writes. Decode only (one query per request): kvserve has no MLA prefill."""

import torch

import kvserve as _kv

from . import _common as C
from .attention import _PagedWrapper


class BatchMLAPagedAttentionWrapper(_PagedWrapper):
    """flashinfer.mla.BatchMLAPagedAttentionWrapper: plan() with FlashInfer's
    kv_len_arr (kvserve's last_page_len is derived from it), run() with
    q_nope / q_pe and the two caches."""

    _api = "BatchMLAPagedAttentionWrapper"
    _plan_class = _kv.BatchPagedMlaDecodePlan

    def __init__(self, float_workspace_buffer, use_cuda_graph=False, qo_indptr=None, kv_indptr=None,
                 kv_indices=None, kv_len_arr=None, backend="auto"):
        # With CUDA-graph buffers the derived last_page_len needs one of its
        # own, as long as kv_len_arr's.
        last_buf = None
        if use_cuda_graph and kv_len_arr is not None:
            last_buf = torch.empty_like(kv_len_arr, dtype=torch.int32)
        super().__init__(float_workspace_buffer, "NHD", use_cuda_graph, kv_indptr, kv_indices, last_buf)

    def plan(self, qo_indptr, kv_indptr, kv_indices, kv_len_arr, num_heads, head_dim_ckv, head_dim_kpe, page_size,
             causal, sm_scale, q_data_type, kv_data_type, use_profiler=False):
        api = self._api + ".plan"
        C.refuse(api, use_profiler=(use_profiler, (False,)))
        qo = C.host_ints(qo_indptr)
        batch = int(torch.as_tensor(kv_len_arr).numel())
        if qo.numel() != batch + 1 or not torch.equal(qo, torch.arange(batch + 1, dtype=torch.int32)):
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument 'qo_indptr': only one query per "
                                      f"request (decode) is supported by kvserve, got {qo.tolist()}")
        q_type = C.kv_dtype(api, "q_data_type", q_data_type)
        if C.kv_dtype(api, "kv_data_type", kv_data_type) != q_type:
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument 'kv_data_type' = {kv_data_type} "
                                      f"differs from q_data_type = {q_data_type}: kvserve's MLA decode takes one dtype")
        page_size = int(page_size)
        indptr, lens = C.host_ints(kv_indptr), C.host_ints(kv_len_arr)
        pages = indptr[1:] - indptr[:-1]
        last = lens - (pages - 1).clamp(min=0) * page_size
        bad = ((pages > 0) & ((last < 1) | (last > page_size))) | ((pages == 0) & (lens != 0))
        if bad.any():
            b = int(bad.nonzero()[0])
            raise ValueError(f"kvserve.flashinfer.{api}: argument 'kv_len_arr': entry {b} = {int(lens[b])} tokens "
                             f"do not fill the last of its {int(pages[b])} pages of {page_size}")
        self._config = dict(heads=(int(num_heads), int(head_dim_ckv), int(head_dim_kpe)), page_size=page_size,
                            q=q_type, kv=q_type, batch=batch, sm_scale=float(sm_scale), causal=bool(causal))
        self._keep_table(kv_indptr, kv_indices, last)

    begin_forward = plan

    def _static_key(self):
        return (*super()._static_key(), self._config["sm_scale"])

    def run(self, q_nope, q_pe, ckv_cache, kpe_cache, out=None, lse=None, return_lse=False, profiler_buffer=None,
            kv_len=None, page_table=None, return_lse_base_on_e=False):
        api = self._api + ".run"
        C.refuse(api, profiler_buffer=(profiler_buffer, (None,)), kv_len=(kv_len, (None,)),
                 page_table=(page_table, (None,)))
        cfg = self._config
        heads, ckv, kpe = cfg["heads"]
        num_pages = ckv_cache.shape[0]

        def make_desc():
            cache = _kv.PagedMlaDesc(page_size=cfg["page_size"], num_pages=num_pages, ckv_dim=ckv, kpe_dim=kpe,
                                     dtype=cfg["kv"])
            return _kv.BatchPagedMlaDecodeDesc(max_batch=C.batch_capacity(cfg["batch"]), num_heads=heads,
                                               cache=cache, sm_scale=cfg["sm_scale"])

        plan = self._paged_plan((num_pages,), make_desc)
        if out is None:
            out = torch.empty((q_nope.shape[0], heads, ckv), dtype=q_nope.dtype, device=q_nope.device)
        if return_lse and lse is None:
            lse = torch.empty((q_nope.shape[0], heads), dtype=torch.float32, device=q_nope.device)
        indptr, indices, last = self._table
        plan.run(q_nope=q_nope, q_pe=q_pe, out=out, lse=lse if return_lse else None, workspace=self._workspace,
                 cache=dict(ckv_pages=ckv_cache, kpe_pages=kpe_cache, indptr=indptr, indices=indices,
                            last_page_len=last))
        if not return_lse:
            return out
        if not return_lse_base_on_e:
            lse.mul_(C.LOG2E)  # FlashInfer's LSE is base 2 unless asked for base e
        return out, lse
