"""FlashInfer's attention API on kvserve plans: the paged decode, paged
prefill, ragged prefill and multi-level cascade wrappers (plan / run), and
single decode / single prefill."""

import torch

import kvserve as _kv

from . import _common as C
from .cascade import merge_state_in_place_natural



def _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta, **more):
    C.refuse(api, pos_encoding_mode=(pos_encoding_mode, ("NONE",)), rope_scale=(rope_scale, (None,)),
             rope_theta=(rope_theta, (None,)), **more)


def _attn_params(sm_scale, head_dim, logits_soft_cap, window_left, q_scale=None, k_scale=None, api=""):
    # FlashInfer folds q_scale and k_scale into the softmax scale; so does this.
    scale = (head_dim ** -0.5 if sm_scale is None else float(sm_scale)) * \
        C.scalar(api, "q_scale", q_scale) * C.scalar(api, "k_scale", k_scale)
    return (scale, float(logits_soft_cap or 0.0), int(window_left))


def _make_attn(params):
    scale, cap, window = params
    return _kv.AttentionParams(sm_scale=scale, logits_soft_cap=cap, window_left=window)


def _outputs(api, q, out, lse, return_lse, rows, heads, dim_v, dtype=None):
    if out is None:
        out = torch.empty((rows, heads, dim_v), dtype=dtype or q.dtype, device=q.device)
    if return_lse and lse is None:
        lse = torch.empty((rows, heads), dtype=torch.float32, device=q.device)
    return out, (lse if return_lse else None)


def _finish(out, lse, return_lse, v_scale, api):
    """FlashInfer's results: out scaled by v_scale, LSE in base 2."""
    if v_scale is not None:
        out.mul_(C.scalar(api, "v_scale", v_scale))
    if not return_lse:
        return out
    lse.mul_(C.LOG2E)
    return out, lse


def _unpack_paged(api, paged_kv_cache, kv_layout):
    """(k_pages, v_pages) from FlashInfer's tuple or single [P, 2, ...] tensor."""
    if isinstance(paged_kv_cache, (tuple, list)):
        k, v = paged_kv_cache
    elif isinstance(paged_kv_cache, torch.Tensor) and paged_kv_cache.dim() == 5 and paged_kv_cache.shape[1] == 2:
        k, v = paged_kv_cache[:, 0], paged_kv_cache[:, 1]
    else:
        raise ValueError(f"kvserve.flashinfer.{api}: argument 'paged_kv_cache': expected (k_cache, v_cache) or "
                         f"a tensor [num_pages, 2, ...], got {type(paged_kv_cache).__name__}")
    page_size = k.shape[1] if kv_layout == "NHD" else k.shape[2]
    return C.raw(k), C.raw(v), k.shape[0], page_size, k.dtype


class _PagedWrapper:
    """What the paged decode and paged prefill wrappers share: the page table
    kept from plan(), and the kvserve plans. A kvserve plan knows its pool's
    page count, which FlashInfer's plan() is not given, so the first run()
    makes it; each later plan() prepares the plans already made for the same
    configuration at once, so a CUDA graph captured around run() replays with
    the new schedule."""

    _api = "?"
    _plan_class = None

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, indptr_buf=None,
                 indices_buf=None, last_page_len_buf=None):
        C.refuse(type(self).__name__, kv_layout=(kv_layout, ("NHD", "HND")))
        self._workspace = float_workspace_buffer
        self._device = float_workspace_buffer.device
        self._kv_layout = kv_layout
        self._use_cuda_graph = use_cuda_graph
        self._buffers = (indptr_buf, indices_buf, last_page_len_buf)
        self._plans = C.PlanCache()
        self._prepared = set()
        self._table = None

    def reset_workspace_buffer(self, float_workspace_buffer, int_workspace_buffer=None):
        self._workspace = float_workspace_buffer
        self._prepared.clear()

    def forward_return_lse(self, q, paged_kv_cache, **kwargs):
        """FlashInfer's deprecated spelling of run(..., return_lse=True)."""
        return self.run(q, paged_kv_cache, return_lse=True, **kwargs)

    def _keep_table(self, indptr, indices, last_page_len):
        """The page table on the device (in the CUDA-graph buffers when given,
        so a captured run reads the next plan()'s table) and host lengths."""
        device = self._device
        tables = []
        for name, t, buf in zip(("indptr", "indices", "last_page_len"), (indptr, indices, last_page_len),
                                self._buffers):
            t = C.on(t, device)
            if self._use_cuda_graph and buf is not None:
                buf[: t.numel()].copy_(t, non_blocking=True)
                # A captured run keeps its views: the whole indices buffer
                # (kvserve reads indptr[B] of them), the first B (+1) of the others.
                t = buf if name == "indices" else buf[: t.numel()]
            tables.append(t)
        self._table = tables
        self._lengths = (C.host_ints(indptr), C.host_ints(last_page_len))
        self._prepared.clear()
        for key, plan in self._plans.items():
            if key[0] == self._static_key():
                plan.prepare(workspace=self._workspace, **self._prepare_args())
                self._prepared.add(id(plan))

    def _static_key(self):
        """What plan() fixes of a kvserve plan's descriptor (run() adds the pool
        size, the scales and window_left)."""
        cfg = self._config
        return (cfg["heads"], cfg["page_size"], cfg["q"], cfg["kv"], C.batch_capacity(cfg["batch"]),
                cfg.get("causal"))

    def _prepare_args(self):
        indptr, last = self._lengths
        return dict(indptr=indptr, last_page_len=last)

    def _paged_plan(self, key, make_desc):
        key = (self._static_key(), *key)
        plan = self._plans.get(self._plan_class, key, make_desc, C.device_name(self._device))
        if id(plan) not in self._prepared:
            plan.prepare(workspace=self._workspace, **self._prepare_args())
            self._prepared.add(id(plan))
        return plan

    def _kv(self, k, v):
        indptr, indices, last = self._table
        return dict(k_pages=k, v_pages=v, indptr=indptr, indices=indices, last_page_len=last)


def _kv_desc(num_pages, page_size, heads, dim, kv_dtype, layout, v_scale_fp8):
    kv = _kv.PagedKvDesc(page_size=page_size, num_pages=num_pages, num_kv_heads=heads, head_dim=dim,
                         dtype=kv_dtype, layout=getattr(_kv.KvLayout, layout))
    if v_scale_fp8 is not None:
        kv.v_scale = [v_scale_fp8]
    return kv


class BatchDecodeWithPagedKVCacheWrapper(_PagedWrapper):
    """Decode attention over a paged KV cache (kvserve BatchPagedDecode)."""

    _api = "BatchDecodeWithPagedKVCacheWrapper"
    _plan_class = _kv.BatchPagedDecodePlan

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, use_tensor_cores=False,
                 paged_kv_indptr_buffer=None, paged_kv_indices_buffer=None, paged_kv_last_page_len_buffer=None,
                 backend="auto", jit_args=None):
        C.refuse(self._api, jit_args=(jit_args, (None,)))
        super().__init__(float_workspace_buffer, kv_layout, use_cuda_graph, paged_kv_indptr_buffer,
                         paged_kv_indices_buffer, paged_kv_last_page_len_buffer)

    def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size,
             pos_encoding_mode="NONE", window_left=-1, logits_soft_cap=None, q_data_type="float16",
             kv_data_type=None, data_type=None, sm_scale=None, rope_scale=None, rope_theta=None,
             non_blocking=True, block_tables=None, seq_lens=None, fixed_split_size=None, disable_split_kv=False,
             **newer):
        api = self._api + ".plan"
        C.refuse_extra(api, newer)
        _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta,
                                 block_tables=(block_tables, (None,)), seq_lens=(seq_lens, (None,)),
                                 fixed_split_size=(fixed_split_size, (None,)))
        q_type = data_type if data_type is not None else q_data_type
        self._config = dict(heads=(int(num_qo_heads), int(num_kv_heads), int(head_dim)), page_size=int(page_size),
                            q=C.kv_dtype(api, "q_data_type", q_type),
                            kv=C.kv_dtype(api, "kv_data_type", kv_data_type if kv_data_type is not None else q_type),
                            sm_scale=sm_scale, window_left=window_left, cap=logits_soft_cap,
                            batch=int(torch.as_tensor(last_page_len).numel()))
        self._keep_table(indptr, indices, last_page_len)

    begin_forward = plan

    def run(self, q, paged_kv_cache, q_scale=None, k_scale=None, v_scale=None, out=None, lse=None,
            return_lse=False, enable_pdl=None, window_left=None, sinks=None):
        api = self._api + ".run"
        C.refuse(api, sinks=(sinks, (None,)))
        cfg = self._config
        k, v, num_pages, page_size, cache_dtype = _unpack_paged(api, paged_kv_cache, self._kv_layout)
        hq, hk, d = cfg["heads"]
        fp8 = cache_dtype in C._FP8
        params = _attn_params(cfg["sm_scale"], d, cfg["cap"], cfg["window_left"] if window_left is None
                              else window_left, q_scale, k_scale, api)
        v_fp8 = C.scalar(api, "v_scale", v_scale) if fp8 else None
        key = (num_pages, params, v_fp8)

        def make_desc():
            return _kv.BatchPagedDecodeDesc(
                max_batch=C.batch_capacity(cfg["batch"]), num_qo_heads=hq, q_dtype=cfg["q"],
                kv=_kv_desc(num_pages, cfg["page_size"], hk, d, cfg["kv"], self._kv_layout, v_fp8),
                attn=_make_attn(params))

        plan = self._paged_plan(key, make_desc)
        out, lse_out = _outputs(api, q, out, lse, return_lse, q.shape[0], hq, d)
        plan.run(q=q, kv=self._kv(k, v), out=out, lse=lse_out, workspace=self._workspace)
        return _finish(out, lse_out, return_lse, None if fp8 else v_scale, api)

    forward = run

    def end_forward(self):
        pass


class CUDAGraphBatchDecodeWithPagedKVCacheWrapper(BatchDecodeWithPagedKVCacheWrapper):
    """The decode wrapper with CUDA-graph buffers, as FlashInfer's older class of this name."""

    def __init__(self, workspace_buffer, indptr_buffer, indices_buffer, last_page_len_buffer, kv_layout="NHD",
                 use_tensor_cores=False):
        super().__init__(workspace_buffer, kv_layout, use_cuda_graph=True, use_tensor_cores=use_tensor_cores,
                         paged_kv_indptr_buffer=indptr_buffer, paged_kv_indices_buffer=indices_buffer,
                         paged_kv_last_page_len_buffer=last_page_len_buffer)


class BatchPrefillWithPagedKVCacheWrapper(_PagedWrapper):
    """Prefill (and chunked prefill) against a paged KV cache (kvserve BatchPagedPrefill)."""

    _api = "BatchPrefillWithPagedKVCacheWrapper"
    _plan_class = _kv.BatchPagedPrefillPlan

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, qo_indptr_buf=None,
                 paged_kv_indptr_buf=None, paged_kv_indices_buf=None, paged_kv_last_page_len_buf=None,
                 custom_mask_buf=None, mask_indptr_buf=None, backend="auto", jit_args=None):
        C.refuse(self._api, custom_mask_buf=(custom_mask_buf, (None,)), mask_indptr_buf=(mask_indptr_buf, (None,)),
                 jit_args=(jit_args, (None,)))
        super().__init__(float_workspace_buffer, kv_layout, use_cuda_graph, paged_kv_indptr_buf,
                         paged_kv_indices_buf, paged_kv_last_page_len_buf)
        self._qo_buf = qo_indptr_buf

    def plan(self, qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len, num_qo_heads,
             num_kv_heads, head_dim_qk, page_size, head_dim_vo=None, custom_mask=None, packed_custom_mask=None,
             causal=False, pos_encoding_mode="NONE", use_fp16_qk_reduction=False, sm_scale=None, window_left=-1,
             logits_soft_cap=None, rope_scale=None, rope_theta=None, q_data_type="float16", kv_data_type=None,
             non_blocking=True, **newer):
        api = self._api + ".plan"
        _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta,
                                 custom_mask=(custom_mask, (None,)), packed_custom_mask=(packed_custom_mask, (None,)),
                                 head_dim_vo=(head_dim_vo, (None, head_dim_qk)))
        C.refuse_extra(api, newer)
        self._config = dict(heads=(int(num_qo_heads), int(num_kv_heads), int(head_dim_qk)), page_size=int(page_size),
                            q=C.kv_dtype(api, "q_data_type", q_data_type),
                            kv=C.kv_dtype(api, "kv_data_type", kv_data_type if kv_data_type is not None
                                          else q_data_type),
                            sm_scale=sm_scale, window_left=window_left, cap=logits_soft_cap, causal=bool(causal),
                            batch=int(torch.as_tensor(paged_kv_last_page_len).numel()))
        qo = C.on(qo_indptr, self._device)
        if self._use_cuda_graph and self._qo_buf is not None:
            self._qo_buf[: qo.numel()].copy_(qo, non_blocking=True)
            qo = self._qo_buf[: qo.numel()]
        self._qo_indptr, self._qo_host = qo, C.host_ints(qo_indptr)
        self._keep_table(paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len)

    begin_forward = plan

    def _prepare_args(self):
        return dict(qo_indptr=self._qo_host, kv=super()._prepare_args())

    def run(self, q, paged_kv_cache, *args, q_scale=None, k_scale=None, v_scale=None, out=None, lse=None,
            return_lse=False, enable_pdl=None, window_left=None, sinks=None):
        api = self._api + ".run"
        C.refuse(api, sinks=(sinks, (None,)), extra_positional_arguments=(args, ((),)))
        out, lse = self._run_natural(q, paged_kv_cache, q_scale, k_scale, v_scale, out, lse, return_lse,
                                     window_left, api)
        return _finish(out, lse, return_lse, None if self._fp8 else v_scale, api)

    forward = run

    def end_forward(self):
        pass

    def _run_natural(self, q, paged_kv_cache, q_scale, k_scale, v_scale, out, lse, return_lse, window_left, api):
        """run() with kvserve's natural-log LSE and no v_scale: the cascade merges these."""
        cfg = self._config
        k, v, num_pages, page_size, cache_dtype = _unpack_paged(api, paged_kv_cache, self._kv_layout)
        hq, hk, d = cfg["heads"]
        self._fp8 = cache_dtype in C._FP8
        params = _attn_params(cfg["sm_scale"], d, cfg["cap"], cfg["window_left"] if window_left is None
                              else window_left, q_scale, k_scale, api)
        v_fp8 = C.scalar(api, "v_scale", v_scale) if self._fp8 else None
        key = (num_pages, params, v_fp8)

        def make_desc():
            return _kv.BatchPagedPrefillDesc(
                max_batch=C.batch_capacity(cfg["batch"]), num_qo_heads=hq, q_dtype=cfg["q"], causal=cfg["causal"],
                kv=_kv_desc(num_pages, cfg["page_size"], hk, d, cfg["kv"], self._kv_layout, v_fp8),
                attn=_make_attn(params))

        plan = self._paged_plan(key, make_desc)
        out, lse = _outputs(api, q, out, lse, return_lse, q.shape[0], hq, d)
        plan.run(q=q, qo_indptr=self._qo_indptr, kv=self._kv(k, v), out=out, lse=lse, workspace=self._workspace)
        return out, lse


class BatchPrefillWithRaggedKVCacheWrapper:
    """Prefill over packed q / k / v (kvserve BatchRaggedPrefill)."""

    _api = "BatchPrefillWithRaggedKVCacheWrapper"

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, qo_indptr_buf=None,
                 kv_indptr_buf=None, custom_mask_buf=None, mask_indptr_buf=None, backend="auto", jit_args=None):
        C.refuse(self._api, kv_layout=(kv_layout, ("NHD", "HND")), custom_mask_buf=(custom_mask_buf, (None,)),
                 mask_indptr_buf=(mask_indptr_buf, (None,)), jit_args=(jit_args, (None,)))
        self._workspace = float_workspace_buffer
        self._device = float_workspace_buffer.device
        self._kv_layout = kv_layout
        self._buffers = (qo_indptr_buf, kv_indptr_buf) if use_cuda_graph else (None, None)
        self._plans = C.PlanCache()

    def reset_workspace_buffer(self, float_workspace_buffer, int_workspace_buffer=None):
        self._workspace = float_workspace_buffer

    def plan(self, qo_indptr, kv_indptr, num_qo_heads, num_kv_heads, head_dim_qk, head_dim_vo=None,
             custom_mask=None, packed_custom_mask=None, causal=False, pos_encoding_mode="NONE",
             use_fp16_qk_reduction=False, window_left=-1, logits_soft_cap=None, sm_scale=None, rope_scale=None,
             rope_theta=None, q_data_type="float16", kv_data_type=None, non_blocking=True, **newer):
        api = self._api + ".plan"
        _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta,
                                 custom_mask=(custom_mask, (None,)), packed_custom_mask=(packed_custom_mask, (None,)))
        C.refuse_extra(api, newer)
        q_type = C.kv_dtype(api, "q_data_type", q_data_type)
        if kv_data_type is not None and C.kv_dtype(api, "kv_data_type", kv_data_type) != q_type:
            raise NotImplementedError(f"kvserve.flashinfer.{api}: argument 'kv_data_type' different from "
                                      "q_data_type is not supported")
        batch = int(torch.as_tensor(qo_indptr).numel()) - 1
        params = _attn_params(sm_scale, int(head_dim_qk), logits_soft_cap, window_left)
        desc = _kv.BatchRaggedPrefillDesc(max_batch=C.batch_capacity(batch), num_qo_heads=int(num_qo_heads),
                                          num_kv_heads=int(num_kv_heads), head_dim=int(head_dim_qk),
                                          head_dim_v=int(head_dim_vo or head_dim_qk), dtype=q_type,
                                          causal=bool(causal), attn=_make_attn(params))
        key = (batch, params, bool(causal), int(num_qo_heads), int(num_kv_heads), int(head_dim_qk),
               int(head_dim_vo or head_dim_qk), q_type)
        self._plan = self._plans.get(_kv.BatchRaggedPrefillPlan, key, lambda: desc, C.device_name(self._device))
        indptrs = []
        for t, buf in zip((qo_indptr, kv_indptr), self._buffers):
            t = C.on(t, self._device)
            if buf is not None:
                buf[: t.numel()].copy_(t, non_blocking=True)
                t = buf[: t.numel()]
            indptrs.append(t)
        self._indptrs = indptrs
        self._plan.prepare(qo_indptr=C.host_ints(qo_indptr), kv_indptr=C.host_ints(kv_indptr),
                           workspace=self._workspace)
        self._heads = (int(num_qo_heads), int(head_dim_vo or head_dim_qk))

    begin_forward = plan

    def run(self, q, k, v, *args, q_scale=None, k_scale=None, v_scale=None, out=None, lse=None, return_lse=False,
            enable_pdl=None):
        api = self._api + ".run"
        C.refuse(api, extra_positional_arguments=(args, ((),)), q_scale=(q_scale, (None, 1.0)),
                 k_scale=(k_scale, (None, 1.0)))
        if self._kv_layout == "HND":  # [H, nnz, D] -> rows of [nnz, H, D], as views
            k, v = k.transpose(0, 1), v.transpose(0, 1)
        hq, dv = self._heads
        out, lse = _outputs(api, q, out, lse, return_lse, q.shape[0], hq, dv)
        qo, kvi = self._indptrs
        self._plan.run(q=q, k=k, v=v, qo_indptr=qo, kv_indptr=kvi, out=out, lse=lse, workspace=self._workspace)
        return _finish(out, lse, return_lse, v_scale, api)

    forward = run

    def end_forward(self):
        pass


class MultiLevelCascadeAttentionWrapper:
    """Attention over a hierarchy of shared KV levels (level 0: prefixes shared
    by groups of queries, ..., last: each request's own KV): one paged prefill
    per level, merged. Each level gets its own slice of the workspace."""

    _api = "MultiLevelCascadeAttentionWrapper"

    def __init__(self, num_levels, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False,
                 qo_indptr_buf_arr=None, paged_kv_indptr_buf_arr=None, paged_kv_indices_buf_arr=None,
                 paged_kv_last_page_len_buf_arr=None):
        n = int(num_levels)
        bufs = [x or [None] * n for x in (qo_indptr_buf_arr, paged_kv_indptr_buf_arr, paged_kv_indices_buf_arr,
                                          paged_kv_last_page_len_buf_arr)]
        share = float_workspace_buffer.numel() // n
        self._levels = [BatchPrefillWithPagedKVCacheWrapper(float_workspace_buffer[i * share:(i + 1) * share],
                                                            kv_layout, use_cuda_graph, *[b[i] for b in bufs])
                        for i in range(n)]

    def reset_workspace_buffer(self, float_workspace_buffer, int_workspace_buffers=None):
        share = float_workspace_buffer.numel() // len(self._levels)
        for i, level in enumerate(self._levels):
            level.reset_workspace_buffer(float_workspace_buffer[i * share:(i + 1) * share])

    def plan(self, qo_indptr_arr, paged_kv_indptr_arr, paged_kv_indices_arr, paged_kv_last_page_len, num_qo_heads,
             num_kv_heads, head_dim, page_size, causal=False, pos_encoding_mode="NONE", use_fp16_qk_reduction=False,
             sm_scale=None, window_left=-1, logits_soft_cap=None, rope_scale=None, rope_theta=None,
             q_data_type="float16", kv_data_type=None):
        last = len(self._levels) - 1
        for i, level in enumerate(self._levels):
            # Shared levels hold keys every query sees; the causal mask applies within the last.
            level.plan(qo_indptr_arr[i], paged_kv_indptr_arr[i], paged_kv_indices_arr[i], paged_kv_last_page_len[i],
                       num_qo_heads, num_kv_heads, head_dim, page_size, causal=causal if i == last else False,
                       pos_encoding_mode=pos_encoding_mode, use_fp16_qk_reduction=use_fp16_qk_reduction,
                       sm_scale=sm_scale, window_left=window_left, logits_soft_cap=logits_soft_cap,
                       rope_scale=rope_scale, rope_theta=rope_theta, q_data_type=q_data_type,
                       kv_data_type=kv_data_type)

    begin_forward = plan

    def run(self, q, paged_kv_cache):
        api = self._api + ".run"
        out, lse = self._levels[0]._run_natural(q, paged_kv_cache, None, None, None, None, None, True, None, api)
        for level in self._levels[1:]:
            o, s = level._run_natural(q, paged_kv_cache, None, None, None, None, None, True, None, api)
            merge_state_in_place_natural(out, lse, o, s)
        return out

    forward = run

    def end_forward(self):
        pass


def single_decode_with_kv_cache(q, k, v, kv_layout="NHD", pos_encoding_mode="NONE", use_tensor_cores=False,
                                q_scale=None, k_scale=None, v_scale=None, window_left=-1, logits_soft_cap=None,
                                sm_scale=None, rope_scale=None, rope_theta=None, return_lse=False):
    """One query token [H_q, D] against k / v [L, H_k, D] (NHD) or [H_k, L, D] (HND)."""
    api = "single_decode_with_kv_cache"
    _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta, kv_layout=(kv_layout, ("NHD", "HND")))
    if k.dtype in C._FP8:
        raise NotImplementedError(f"kvserve.flashinfer.{api}: argument 'k' of fp8 is not supported "
                                  "(kvserve's SingleDecode takes f16, bf16 and f32)")
    # As [1, H_k, L, D] views: SingleDecode's cache layout, strided.
    k4, v4 = ((k.permute(1, 0, 2), v.permute(1, 0, 2)) if kv_layout == "NHD" else (k, v))
    hq, d = q.shape
    hk = k4.shape[0]
    params = _attn_params(sm_scale, d, logits_soft_cap, window_left, q_scale, k_scale, api)
    dtype = C.kv_dtype(api, "q", q.dtype)
    plan = C.SHARED_PLANS.get(_kv.SingleDecodePlan, (hq, hk, d, dtype, params), lambda: _kv.SingleDecodeDesc(
        max_batch=1, num_qo_heads=hq, num_kv_heads=hk, head_dim=d, dtype=dtype, attn=_make_attn(params)),
        C.device_name(q.device))
    out, lse = _outputs(api, q, None, None, return_lse, 1, hq, d)
    plan.run(q=q.unsqueeze(0), k=k4.unsqueeze(0), v=v4.unsqueeze(0), out=out, lse=lse,
             workspace=C.workspace_for(plan, q.device))
    result = _finish(out[0], None if lse is None else lse, return_lse, v_scale, api)
    return (result[0], result[1][0]) if return_lse else result


def single_prefill_with_kv_cache(q, k, v, scale_q=None, scale_k=None, scale_v=None, o_dtype=None, custom_mask=None,
                                 packed_custom_mask=None, causal=False, kv_layout="NHD", pos_encoding_mode="NONE",
                                 use_fp16_qk_reduction=False, sm_scale=None, window_left=-1, logits_soft_cap=None,
                                 rope_scale=None, rope_theta=None, backend="auto", return_lse=False):
    """q [L_q, H_q, D] against k / v [L_kv, H_k, D] (NHD) or [H_k, L_kv, D] (HND)."""
    api = "single_prefill_with_kv_cache"
    _check_attention_options(api, pos_encoding_mode, rope_scale, rope_theta, kv_layout=(kv_layout, ("NHD", "HND")),
                             custom_mask=(custom_mask, (None,)), packed_custom_mask=(packed_custom_mask, (None,)),
                             o_dtype=(o_dtype, (None, q.dtype)))
    lq, hq, d = q.shape
    hk, dv = (k.shape[1], v.shape[2]) if kv_layout == "NHD" else (k.shape[0], v.shape[2])
    params = _attn_params(sm_scale, d, logits_soft_cap, window_left, scale_q, scale_k, api)
    dtype = C.kv_dtype(api, "q", q.dtype)
    key = (hq, hk, d, dv, dtype, kv_layout, bool(causal), params)
    plan = C.SHARED_PLANS.get(_kv.SinglePrefillPlan, key, lambda: _kv.SinglePrefillDesc(
        num_qo_heads=hq, num_kv_heads=hk, head_dim=d, head_dim_v=dv, dtype=dtype,
        layout=getattr(_kv.KvLayout, kv_layout), causal=bool(causal), attn=_make_attn(params)),
        C.device_name(q.device))
    out, lse = _outputs(api, q, None, None, return_lse, lq, hq, dv)
    plan.run(q=q, k=k, v=v, out=out, lse=lse, workspace=C.workspace_for(plan, q.device))
    return _finish(out, lse, return_lse, scale_v, api)


def single_prefill_with_kv_cache_return_lse(*args, **kwargs):
    kwargs["return_lse"] = True
    return single_prefill_with_kv_cache(*args, **kwargs)
