"""FlashInfer's public Python API (0.6 / 0.7) for the ops kvserve covers, on
kvserve plans: `import kvserve.flashinfer as flashinfer` and FlashInfer code
runs unchanged, on CUDA and on CPU tensors alike. An argument kvserve has no
equivalent for raises NotImplementedError naming it; docs/python.md has the
compatibility table. Needs torch (this is a torch API).

Submodules mirror FlashInfer's (decode, prefill, cascade, page, sampling,
norm, gdn_prefill, mla); every function is also here at the top level."""

import sys as _sys
import types as _types

try:
    import torch as _torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised where torch is missing
    raise ImportError("kvserve.flashinfer needs torch (pip install torch); the kvserve module itself does not") from e


from . import cascade, gdn_prefill, mla, norm, page, sampling
from .attention import (BatchDecodeWithPagedKVCacheWrapper, BatchPrefillWithPagedKVCacheWrapper,
                        BatchPrefillWithRaggedKVCacheWrapper, CUDAGraphBatchDecodeWithPagedKVCacheWrapper,
                        MultiLevelCascadeAttentionWrapper,
                        single_decode_with_kv_cache, single_prefill_with_kv_cache,
                        single_prefill_with_kv_cache_return_lse)
from .cascade import merge_state, merge_state_in_place, merge_states
from .gdn_prefill import chunk_gated_delta_rule
from .mla import BatchMLAPagedAttentionWrapper
from .norm import fused_add_rmsnorm, gemma_fused_add_rmsnorm, gemma_rmsnorm, rmsnorm
from .page import append_paged_kv_cache, append_paged_mla_kv_cache, get_batch_indices_positions, get_seq_lens
from .sampling import (apply_token_penalties, chain_speculative_sampling, min_p_sampling_from_probs,
                       sampling_from_logits, sampling_from_probs, top_k_mask_logits, top_k_renorm_probs,
                       top_k_sampling_from_probs, top_k_top_p_sampling_from_logits, top_k_top_p_sampling_from_probs,
                       top_p_renorm_probs, top_p_sampling_from_probs)


def _namespace(name, *objects):
    """flashinfer.<name> as FlashInfer lays it out (importable as a module)."""
    module = _types.ModuleType(f"{__name__}.{name}")
    for obj in objects:
        setattr(module, obj.__name__, obj)
    _sys.modules[module.__name__] = module
    return module


decode = _namespace("decode", BatchDecodeWithPagedKVCacheWrapper, CUDAGraphBatchDecodeWithPagedKVCacheWrapper,
                    single_decode_with_kv_cache)
prefill = _namespace("prefill", BatchPrefillWithPagedKVCacheWrapper, BatchPrefillWithRaggedKVCacheWrapper,
                     single_prefill_with_kv_cache, single_prefill_with_kv_cache_return_lse)
cascade.MultiLevelCascadeAttentionWrapper = MultiLevelCascadeAttentionWrapper
