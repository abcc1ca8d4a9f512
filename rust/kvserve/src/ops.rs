//! Every op's descriptor, run arguments and tag type, mirroring the C++
//! headers (include/kvserve/*.hpp say what each field means). Descriptors are
//! plain structs with the C++ defaults; arguments borrow their tensors.
//! Fields whose element type the op fixes (int32 page tables, f32 LSE and
//! sampling rows) are typed views; those the descriptor chooses are AnyRef /
//! AnyMut, checked against it by `run`.
use crate::dtype::DType;
use crate::error::{check, Result};
use crate::plan::{check_len, rows_of, Op, Plan};
use crate::tensor::{AnyMut, AnyRef, Stream, TensorMut, TensorRef, ToC, Workspace};
use kvserve_sys as sys;
use std::ffi::c_void;

/// Converts a field: through ToC, or the given function (sentinel encodings).
macro_rules! conv {
    ($v:expr) => {
        ToC::to_c(&$v)
    };
    ($v:expr, $f:expr) => {
        ($f)(&$v)
    };
}

/// A descriptor: a plain struct with Default (the C++ defaults) and its C form.
macro_rules! desc {
    ($(#[$m:meta])* pub struct $name:ident => $c:ident {
        $($(#[$fm:meta])* pub $f:ident: $t:ty = $default:expr $(=> $conv:expr)?,)*
    }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        impl Default for $name {
            fn default() -> Self { $name { $($f: $default,)* } }
        }
        impl ToC for $name {
            type C = sys::$c;
            fn to_c(&self) -> sys::$c { sys::$c { $($f: conv!(self.$f $(, $conv)?),)* } }
        }
    };
}

/// Run arguments (or a part of them, like PagedKv) borrowing their tensors.
macro_rules! args {
    ($(#[$m:meta])* pub struct $name:ident => $c:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name<'a> { $($(#[$fm])* pub $f: $t,)* }
        impl ToC for $name<'_> {
            type C = sys::$c;
            fn to_c(&self) -> sys::$c { sys::$c { $($f: ToC::to_c(&self.$f),)* } }
        }
    };
}

/// C enums as Rust enums (the values are the C constants).
macro_rules! c_enum {
    ($($(#[$m:meta])* pub enum $name:ident { $first:ident = $fv:ident $(, $v:ident = $cv:ident)* $(,)? })*) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { #[default] $first = sys::$fv, $($v = sys::$cv,)* }
        impl ToC for $name {
            type C = i32;
            fn to_c(&self) -> i32 { *self as i32 }
        }
    )*};
}

/// The op tag types, their Plan aliases, and PLAN_KINDS (the C ABI kinds wrapped).
macro_rules! ops {
    ($($(#[$m:meta])* $op:ident, $plan:ident: $desc:ident, $args:ident => $raw:ident;)*) => {
        $(
            $(#[$m])*
            pub enum $op {}
            impl Op for $op {
                type Desc = $desc;
                type Args<'a> = $args<'a>;
                type Raw = sys::$raw;
            }
            pub type $plan = Plan<$op>;
        )*
        /// The `X` of every C ABI `kvs_X_create` plan this crate wraps.
        pub const PLAN_KINDS: &[&str] = &[$(<sys::$raw as sys::RawPlan>::KIND),*];
    };
}

c_enum! {
    pub enum KvLayout { Nhd = KVS_NHD, Hnd = KVS_HND }
    pub enum AppendMode { Decode = KVS_APPEND_DECODE, Ragged = KVS_APPEND_RAGGED }
    pub enum SamplingInput { Probs = KVS_SAMPLING_INPUT_PROBS, Logits = KVS_SAMPLING_INPUT_LOGITS }
    pub enum SamplingFilter {
        None = KVS_FILTER_NONE, TopK = KVS_FILTER_TOP_K, TopP = KVS_FILTER_TOP_P, MinP = KVS_FILTER_MIN_P,
        TopKTopP = KVS_FILTER_TOP_K_TOP_P, Greedy = KVS_FILTER_GREEDY,
    }
    pub enum TopKTopPOrder { KThenP = KVS_ORDER_K_THEN_P, Joint = KVS_ORDER_JOINT }
    pub enum ParamSource { Scalar = KVS_PARAMS_SCALAR, PerRow = KVS_PARAMS_PER_ROW }
    pub enum RandomSource { Host = KVS_RANDOM_HOST, PerRow = KVS_RANDOM_PER_ROW }
    pub enum RenormKind {
        TopKRenormProbs = KVS_TOP_K_RENORM_PROBS, TopPRenormProbs = KVS_TOP_P_RENORM_PROBS,
        TopKMaskLogits = KVS_TOP_K_MASK_LOGITS,
    }
    pub enum PenaltyHistory { TokenCounts = KVS_HISTORY_TOKEN_COUNTS, TokenIds = KVS_HISTORY_TOKEN_IDS }
}

type I32<'a, const N: usize> = TensorRef<'a, i32, N>;
type F32<'a, const N: usize> = TensorRef<'a, f32, N>;
type F32Mut<'a, const N: usize> = TensorMut<'a, f32, N>;

// ------------------------------------------------------------------ attention --

desc! {
    /// Attention variants.
    pub struct AttentionParams => kvs_attention_params {
        /// None: 1 / sqrt(head_dim).
        pub sm_scale: Option<f32> = None => |v: &Option<f32>| v.unwrap_or(0.0),
        /// > 0 enables cap * tanh(s / cap).
        pub logits_soft_cap: f32 = 0.0,
        /// Some(w): key j visible iff j >= position - w.
        pub window_left: Option<i32> = None => |v: &Option<i32>| v.unwrap_or(-1),
    }
}

/// A paged KV cache: one K pool and one V pool of the same shape.
#[derive(Clone, Debug, PartialEq)]
pub struct PagedKvDesc {
    pub page_size: i32,
    pub num_pages: i64,
    pub num_kv_heads: i32,
    pub head_dim: i32,
    pub dtype: DType,
    pub layout: KvLayout,
    /// fp8 pools only: empty (1), one scale, or one per KV head.
    pub k_scale: Vec<f32>,
    pub v_scale: Vec<f32>,
}

impl Default for PagedKvDesc {
    fn default() -> Self {
        PagedKvDesc {
            page_size: 16,
            num_pages: 0,
            num_kv_heads: 0,
            head_dim: 0,
            dtype: DType::BF16,
            layout: KvLayout::Nhd,
            k_scale: vec![],
            v_scale: vec![],
        }
    }
}

/// The C form points at the scale vectors: valid while `self` is borrowed.
impl ToC for PagedKvDesc {
    type C = sys::kvs_paged_kv_desc;
    fn to_c(&self) -> sys::kvs_paged_kv_desc {
        sys::kvs_paged_kv_desc {
            page_size: self.page_size,
            num_pages: self.num_pages,
            num_kv_heads: self.num_kv_heads,
            head_dim: self.head_dim,
            dtype: self.dtype.to_c(),
            layout: self.layout.to_c(),
            k_scale: self.k_scale.as_ptr(),
            num_k_scale: self.k_scale.len() as i32,
            v_scale: self.v_scale.as_ptr(),
            num_v_scale: self.v_scale.len() as i32,
        }
    }
}

args! {
    /// A batch's page table over the pools: request b owns pages
    /// `indices[indptr[b]..indptr[b+1]]`, the last holding `last_page_len[b]` tokens.
    pub struct PagedKv => kvs_paged_kv {
        pub k_pages: AnyRef<'a>,
        pub v_pages: AnyRef<'a>,
        pub indptr: I32<'a, 1>,
        pub indices: I32<'a, 1>,
        pub last_page_len: I32<'a, 1>,
    }
}

/// Checks a page table (indptr, page ids, last_page_len) against the
/// descriptor before a run reads it; the pools are not read.
pub fn validate_page_table(desc: &PagedKvDesc, kv: &PagedKv<'_>, stream: &Stream) -> Result<()> {
    let (c_desc, c_kv) = (desc.to_c(), kv.to_c());
    // SAFETY: both structs and what they point at are borrowed for the call.
    check(|err| unsafe { sys::kvs_validate_page_table(&c_desc, &c_kv, stream.as_raw(), err) })
}

desc! {
    pub struct BatchPagedDecodeDesc => kvs_batch_paged_decode_desc {
        pub max_batch: i32 = 0,
        pub num_qo_heads: i32 = 0,
        pub kv: PagedKvDesc = PagedKvDesc::default(),
        /// q and out; equals kv.dtype unless kv is fp8.
        pub q_dtype: DType = DType::BF16,
        pub attn: AttentionParams = AttentionParams::default(),
        /// 0: the plan balances splits; > 0: fixed split points (batch invariant).
        pub kv_split_tokens: i32 = 0,
    }
}
args! {
    pub struct BatchPagedDecodeArgs => kvs_batch_paged_decode_args {
        /// `[B, num_qo_heads, head_dim]`
        pub q: AnyRef<'a>,
        pub kv: PagedKv<'a>,
        /// `[B, num_qo_heads, head_dim]`
        pub out: AnyMut<'a>,
        /// `[B, num_qo_heads]`
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct SingleDecodeDesc => kvs_single_decode_desc {
        pub max_batch: i32 = 0,
        pub num_qo_heads: i32 = 0,
        pub num_kv_heads: i32 = 0,
        pub head_dim: i32 = 0,
        pub dtype: DType = DType::BF16,
        pub attn: AttentionParams = AttentionParams::default(),
        pub kv_split_tokens: i32 = 0,
    }
}
args! {
    pub struct SingleDecodeArgs => kvs_single_decode_args {
        /// `[B, num_qo_heads, head_dim]`
        pub q: AnyRef<'a>,
        /// `[B, num_kv_heads, L, head_dim]`; a head stride of 0 broadcasts one head.
        pub k: AnyRef<'a>,
        pub v: AnyRef<'a>,
        /// `[B]`, each in `[0, L]`; None: L.
        pub kv_len: Option<I32<'a, 1>>,
        pub out: AnyMut<'a>,
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct SinglePrefillDesc => kvs_single_prefill_desc {
        pub num_qo_heads: i32 = 0,
        pub num_kv_heads: i32 = 0,
        pub head_dim: i32 = 0,
        /// 0: head_dim.
        pub head_dim_v: i32 = 0,
        pub dtype: DType = DType::BF16,
        pub layout: KvLayout = KvLayout::Nhd,
        pub causal: bool = false,
        pub attn: AttentionParams = AttentionParams::default(),
    }
}
args! {
    pub struct SinglePrefillArgs => kvs_single_prefill_args {
        /// `[L_q, num_qo_heads, head_dim]`
        pub q: AnyRef<'a>,
        /// NHD `[L_kv, num_kv_heads, head_dim]` / HND `[num_kv_heads, L_kv, head_dim]`
        pub k: AnyRef<'a>,
        pub v: AnyRef<'a>,
        pub out: AnyMut<'a>,
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct BatchRaggedPrefillDesc => kvs_batch_ragged_prefill_desc {
        pub max_batch: i32 = 0,
        pub num_qo_heads: i32 = 0,
        pub num_kv_heads: i32 = 0,
        pub head_dim: i32 = 0,
        pub head_dim_v: i32 = 0,
        pub dtype: DType = DType::BF16,
        pub causal: bool = false,
        pub attn: AttentionParams = AttentionParams::default(),
    }
}
args! {
    pub struct BatchRaggedPrefillArgs => kvs_batch_ragged_prefill_args {
        pub q: AnyRef<'a>,
        pub k: AnyRef<'a>,
        pub v: AnyRef<'a>,
        /// `[B + 1]`, as given to the last prepare.
        pub qo_indptr: I32<'a, 1>,
        pub kv_indptr: I32<'a, 1>,
        pub out: AnyMut<'a>,
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct BatchPagedPrefillDesc => kvs_batch_paged_prefill_desc {
        pub max_batch: i32 = 0,
        pub num_qo_heads: i32 = 0,
        pub kv: PagedKvDesc = PagedKvDesc::default(),
        pub q_dtype: DType = DType::BF16,
        pub causal: bool = true,
        pub attn: AttentionParams = AttentionParams::default(),
    }
}
args! {
    pub struct BatchPagedPrefillArgs => kvs_batch_paged_prefill_args {
        pub q: AnyRef<'a>,
        pub qo_indptr: I32<'a, 1>,
        pub kv: PagedKv<'a>,
        pub out: AnyMut<'a>,
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct CascadeAttentionDesc => kvs_cascade_attention_desc {
        pub max_batch: i32 = 0,
        pub max_groups: i32 = 0,
        pub num_qo_heads: i32 = 0,
        pub kv: PagedKvDesc = PagedKvDesc::default(),
        pub q_dtype: DType = DType::BF16,
        pub attn: AttentionParams = AttentionParams::default(),
    }
}
args! {
    pub struct CascadeAttentionArgs => kvs_cascade_attention_args {
        pub q: AnyRef<'a>,
        /// `[G + 1]`, `group_indptr[G]` = B.
        pub group_indptr: I32<'a, 1>,
        /// G groups.
        pub prefix: PagedKv<'a>,
        /// B requests.
        pub suffix: PagedKv<'a>,
        pub out: AnyMut<'a>,
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

// --------------------------------------------------------------------- merge --

desc! {
    pub struct MergeStateDesc => kvs_merge_state_desc {
        pub num_heads: i32 = 0,
        pub head_dim: i32 = 0,
        pub dtype: DType = DType::BF16,
    }
}
args! {
    pub struct MergeStateArgs => kvs_merge_state_args {
        pub v_a: AnyRef<'a>,
        pub lse_a: F32<'a, 2>,
        pub v_b: AnyRef<'a>,
        pub lse_b: F32<'a, 2>,
        pub v_out: AnyMut<'a>,
        pub lse_out: Option<F32Mut<'a, 2>>,
    }
}
desc! {
    pub struct MergeStatesDesc => kvs_merge_states_desc {
        pub num_heads: i32 = 0,
        pub head_dim: i32 = 0,
        pub dtype: DType = DType::BF16,
    }
}
args! {
    pub struct MergeStatesArgs => kvs_merge_states_args {
        /// `[tokens, N, num_heads, head_dim]`
        pub v: AnyRef<'a>,
        pub lse: F32<'a, 3>,
        pub v_out: AnyMut<'a>,
        pub lse_out: Option<F32Mut<'a, 2>>,
    }
}

// ------------------------------------------------------------------ KV cache --

desc! {
    pub struct PagedKvAppendDesc => kvs_paged_kv_append_desc {
        pub kv: PagedKvDesc = PagedKvDesc::default(),
        /// The new rows: kv.dtype, or f16 / bf16 / f32 into an fp8 pool.
        pub dtype: DType = DType::BF16,
        pub mode: AppendMode = AppendMode::Decode,
    }
}
args! {
    /// The pools written at the addressed slots.
    pub struct PagedKvCacheMut => kvs_paged_kv {
        pub k_pages: AnyMut<'a>,
        pub v_pages: AnyMut<'a>,
        pub indptr: I32<'a, 1>,
        pub indices: I32<'a, 1>,
        pub last_page_len: I32<'a, 1>,
    }
}
args! {
    pub struct PagedKvAppendArgs => kvs_paged_kv_append_args {
        /// `[N, num_kv_heads, head_dim]`
        pub k: AnyRef<'a>,
        pub v: AnyRef<'a>,
        /// Ragged: `[N]`; decode: None.
        pub batch_indices: Option<I32<'a, 1>>,
        pub positions: Option<I32<'a, 1>>,
        pub kv: PagedKvCacheMut<'a>,
    }
}

desc! {
    pub struct PagedMlaDesc => kvs_paged_mla_desc {
        pub page_size: i32 = 16,
        pub num_pages: i64 = 0,
        pub ckv_dim: i32 = 512,
        pub kpe_dim: i32 = 64,
        pub dtype: DType = DType::BF16,
    }
}
args! {
    pub struct PagedMlaCacheMut => kvs_paged_mla_cache {
        pub ckv_pages: AnyMut<'a>,
        pub kpe_pages: AnyMut<'a>,
        pub indptr: I32<'a, 1>,
        pub indices: I32<'a, 1>,
        pub last_page_len: I32<'a, 1>,
    }
}
args! {
    pub struct PagedMlaAppendArgs => kvs_paged_mla_append_args {
        pub ckv: AnyRef<'a>,
        pub kpe: AnyRef<'a>,
        pub batch_indices: I32<'a, 1>,
        pub positions: I32<'a, 1>,
        pub cache: PagedMlaCacheMut<'a>,
    }
}

args! {
    pub struct PagedMlaCache => kvs_paged_mla_cache {
        pub ckv_pages: AnyRef<'a>,
        pub kpe_pages: AnyRef<'a>,
        pub indptr: I32<'a, 1>,
        pub indices: I32<'a, 1>,
        pub last_page_len: I32<'a, 1>,
    }
}

desc! {
    /// Absorbed-MLA decode over the paged MLA cache (mla.hpp).
    pub struct BatchPagedMlaDecodeDesc => kvs_batch_paged_mla_decode_desc {
        pub max_batch: i32 = 0,
        pub num_heads: i32 = 0,
        /// Its dtype is q's and out's too.
        pub cache: PagedMlaDesc = PagedMlaDesc::default(),
        /// Required: the model's 1 / sqrt(qk_nope_head_dim + qk_rope_head_dim).
        pub sm_scale: f32 = 0.0,
        /// 0: the plan balances splits; > 0: fixed split points (batch invariant).
        pub kv_split_tokens: i32 = 0,
    }
}
args! {
    pub struct BatchPagedMlaDecodeArgs => kvs_batch_paged_mla_decode_args {
        /// `[B, num_heads, ckv_dim]`
        pub q_nope: AnyRef<'a>,
        /// `[B, num_heads, kpe_dim]`
        pub q_pe: AnyRef<'a>,
        pub cache: PagedMlaCache<'a>,
        /// `[B, num_heads, ckv_dim]`
        pub out: AnyMut<'a>,
        /// `[B, num_heads]`
        pub lse: Option<F32Mut<'a, 2>>,
    }
}

desc! {
    pub struct KvCacheAppendDesc => kvs_kv_cache_append_desc {
        pub num_kv_heads: i32 = 0,
        pub head_dim: i32 = 0,
        pub dtype: DType = DType::BF16,
    }
}
args! {
    pub struct KvCacheAppendArgs => kvs_kv_cache_append_args {
        pub k: AnyRef<'a>,
        pub v: AnyRef<'a>,
        /// None: row i goes to batch row i.
        pub batch_indices: Option<I32<'a, 1>>,
        pub positions: I32<'a, 1>,
        /// `[B, num_kv_heads, L_max, head_dim]`
        pub k_cache: AnyMut<'a>,
        pub v_cache: AnyMut<'a>,
    }
}

// ------------------------------------------------------------------ sampling --

desc! {
    pub struct SamplingDesc => kvs_sampling_desc {
        pub vocab: i32 = 0,
        pub max_batch: i32 = 0,
        pub input: SamplingInput = SamplingInput::Probs,
        pub filter: SamplingFilter = SamplingFilter::None,
        pub order: TopKTopPOrder = TopKTopPOrder::KThenP,
        pub temperature: f32 = 1.0,
        pub top_k: i32 = 1,
        pub top_p: f32 = 1.0,
        pub min_p: f32 = 0.0,
        pub params: ParamSource = ParamSource::Scalar,
        pub random: RandomSource = RandomSource::Host,
    }
}
args! {
    pub struct SamplingArgs => kvs_sampling_args {
        /// `[B, vocab]`
        pub input: F32<'a, 2>,
        /// `[B]`; -1: no token of positive weight.
        pub out: TensorMut<'a, i32, 1>,
        /// Per-row parameters (params == PerRow), each only where the filter uses it.
        pub temperature: Option<F32<'a, 1>>,
        pub top_k: Option<I32<'a, 1>>,
        pub top_p: Option<F32<'a, 1>>,
        pub min_p: Option<F32<'a, 1>>,
        /// random == Host.
        pub seed: u64,
        pub offset: u64,
        /// random == PerRow.
        pub seeds: Option<I32<'a, 1>>,
        pub offsets: Option<I32<'a, 1>>,
    }
}

desc! {
    pub struct SamplingRenormDesc => kvs_sampling_renorm_desc {
        pub vocab: i32 = 0,
        pub max_batch: i32 = 0,
        pub kind: RenormKind = RenormKind::TopKRenormProbs,
        pub top_k: i32 = 1,
        pub top_p: f32 = 1.0,
        pub params: ParamSource = ParamSource::Scalar,
    }
}
args! {
    pub struct SamplingRenormArgs => kvs_sampling_renorm_args {
        pub input: F32<'a, 2>,
        pub out: F32Mut<'a, 2>,
        pub top_k: Option<I32<'a, 1>>,
        pub top_p: Option<F32<'a, 1>>,
    }
}

desc! {
    pub struct ChainSpeculativeSamplingDesc => kvs_chain_speculative_sampling_desc {
        pub vocab: i32 = 0,
        pub max_batch: i32 = 0,
        pub num_draft_tokens: i32 = 0,
        pub random: RandomSource = RandomSource::Host,
    }
}
args! {
    pub struct ChainSpeculativeSamplingArgs => kvs_chain_speculative_sampling_args {
        /// `[B, n]`
        pub draft_token_ids: I32<'a, 2>,
        /// `[B, n, vocab]`
        pub draft_probs: F32<'a, 3>,
        /// `[B, n + 1, vocab]`
        pub target_probs: F32<'a, 3>,
        /// `[B, n + 1]`: emitted drafts, the drawn token, then -1.
        pub out: TensorMut<'a, i32, 2>,
        pub accepted: Option<TensorMut<'a, i32, 1>>,
        pub emitted: Option<TensorMut<'a, i32, 1>>,
        pub seed: u64,
        pub offset: u64,
        pub seeds: Option<I32<'a, 1>>,
        pub offsets: Option<I32<'a, 1>>,
    }
}

desc! {
    pub struct TokenPenaltyDesc => kvs_token_penalty_desc {
        pub vocab: i32 = 0,
        pub max_batch: i32 = 0,
        pub history: PenaltyHistory = PenaltyHistory::TokenCounts,
        pub repetition: f32 = 1.0,
        pub frequency: f32 = 0.0,
        pub presence: f32 = 0.0,
        pub params: ParamSource = ParamSource::Scalar,
    }
}
args! {
    pub struct TokenPenaltyArgs => kvs_token_penalty_args {
        /// `[B, vocab]`, updated in place.
        pub logits: F32Mut<'a, 2>,
        /// history == TokenCounts: `[B, vocab]`.
        pub counts: Option<I32<'a, 2>>,
        /// history == TokenIds: `[B, L]`.
        pub token_ids: Option<I32<'a, 2>>,
        pub repetition: Option<F32<'a, 1>>,
        pub frequency: Option<F32<'a, 1>>,
        pub presence: Option<F32<'a, 1>>,
    }
}

// -------------------------------------------------------------- norm and GDN --

desc! {
    pub struct RmsNormDesc => kvs_rms_norm_desc {
        pub hidden_size: i32 = 0,
        pub dtype: DType = DType::BF16,
        pub eps: f32 = 1e-6,
        /// 0, or 1 for Gemma's (1 + w).
        pub weight_offset: f32 = 0.0,
        /// residual += x in place, then normalise residual.
        pub fused_add: bool = false,
    }
}
args! {
    pub struct RmsNormArgs => kvs_rms_norm_args {
        /// `[rows, hidden_size]` or `[tokens, heads, hidden_size]`
        pub x: AnyRef<'a>,
        pub weight: AnyRef<'a>,
        pub residual: Option<AnyMut<'a>>,
        pub out: AnyMut<'a>,
    }
}

desc! {
    pub struct GdnPrefillDesc => kvs_gdn_prefill_desc {
        pub max_batch: i32 = 0,
        pub max_tokens: i64 = 0,
        pub num_qk_heads: i32 = 0,
        pub num_v_heads: i32 = 0,
        pub head_dim_k: i32 = 0,
        pub head_dim_v: i32 = 0,
        pub dtype: DType = DType::BF16,
        /// None: 1 / sqrt(head_dim_k).
        pub scale: Option<f32> = None => |v: &Option<f32>| v.unwrap_or(0.0),
        pub use_qk_l2norm: bool = false,
        pub l2norm_eps: f32 = 1e-6,
    }
}
args! {
    pub struct GdnPrefillArgs => kvs_gdn_prefill_args {
        /// `[T, num_qk_heads, head_dim_k]`
        pub q: AnyRef<'a>,
        pub k: AnyRef<'a>,
        /// `[T, num_v_heads, head_dim_v]`
        pub v: AnyRef<'a>,
        /// `[T, H]`, H = max(num_qk_heads, num_v_heads)
        pub alpha: F32<'a, 2>,
        pub beta: F32<'a, 2>,
        /// `[B + 1]`
        pub cu_seqlens: I32<'a, 1>,
        /// `[B, H, head_dim_v, head_dim_k]`; None: zeros.
        pub initial_state: Option<F32<'a, 4>>,
        pub out: AnyMut<'a>,
        pub final_state: Option<F32Mut<'a, 4>>,
    }
}

desc! {
    pub struct GdnDecodeDesc => kvs_gdn_decode_desc {
        pub max_batch: i32 = 0,
        /// The state pool's first extent.
        pub num_state_slots: i32 = 0,
        pub num_qk_heads: i32 = 0,
        pub num_v_heads: i32 = 0,
        pub head_dim_k: i32 = 0,
        pub head_dim_v: i32 = 0,
        pub dtype: DType = DType::BF16,
        /// None: 1 / sqrt(head_dim_k).
        pub scale: Option<f32> = None => |v: &Option<f32>| v.unwrap_or(0.0),
        pub use_qk_l2norm: bool = false,
        pub l2norm_eps: f32 = 1e-6,
    }
}
args! {
    pub struct GdnDecodeArgs => kvs_gdn_decode_args {
        /// `[B, num_qk_heads, head_dim_k]`: one token per sequence
        pub q: AnyRef<'a>,
        pub k: AnyRef<'a>,
        /// `[B, num_v_heads, head_dim_v]`
        pub v: AnyRef<'a>,
        /// `[B, H]`, H = max(num_qk_heads, num_v_heads)
        pub alpha: F32<'a, 2>,
        pub beta: F32<'a, 2>,
        /// `[B]`: each sequence's slot in `state`, -1 for a padded row
        pub state_indices: I32<'a, 1>,
        /// `[num_state_slots, H, head_dim_v, head_dim_k]`, updated in place
        pub state: F32Mut<'a, 4>,
        pub out: AnyMut<'a>,
    }
}

ops! {
    BatchPagedDecode, BatchPagedDecodePlan: BatchPagedDecodeDesc, BatchPagedDecodeArgs
        => kvs_batch_paged_decode_plan;
    SingleDecode, SingleDecodePlan: SingleDecodeDesc, SingleDecodeArgs => kvs_single_decode_plan;
    SinglePrefill, SinglePrefillPlan: SinglePrefillDesc, SinglePrefillArgs => kvs_single_prefill_plan;
    BatchRaggedPrefill, BatchRaggedPrefillPlan: BatchRaggedPrefillDesc, BatchRaggedPrefillArgs
        => kvs_batch_ragged_prefill_plan;
    BatchPagedPrefill, BatchPagedPrefillPlan: BatchPagedPrefillDesc, BatchPagedPrefillArgs
        => kvs_batch_paged_prefill_plan;
    CascadeAttention, CascadeAttentionPlan: CascadeAttentionDesc, CascadeAttentionArgs
        => kvs_cascade_attention_plan;
    MergeState, MergeStatePlan: MergeStateDesc, MergeStateArgs => kvs_merge_state_plan;
    MergeStates, MergeStatesPlan: MergeStatesDesc, MergeStatesArgs => kvs_merge_states_plan;
    PagedKvAppend, PagedKvAppendPlan: PagedKvAppendDesc, PagedKvAppendArgs => kvs_paged_kv_append_plan;
    PagedMlaAppend, PagedMlaAppendPlan: PagedMlaDesc, PagedMlaAppendArgs => kvs_paged_mla_append_plan;
    KvCacheAppend, KvCacheAppendPlan: KvCacheAppendDesc, KvCacheAppendArgs => kvs_kv_cache_append_plan;
    BatchPagedMlaDecode, BatchPagedMlaDecodePlan: BatchPagedMlaDecodeDesc, BatchPagedMlaDecodeArgs
        => kvs_batch_paged_mla_decode_plan;
    Sampling, SamplingPlan: SamplingDesc, SamplingArgs => kvs_sampling_plan;
    SamplingRenorm, SamplingRenormPlan: SamplingRenormDesc, SamplingRenormArgs => kvs_sampling_renorm_plan;
    ChainSpeculativeSampling, ChainSpeculativeSamplingPlan: ChainSpeculativeSamplingDesc,
        ChainSpeculativeSamplingArgs => kvs_chain_speculative_sampling_plan;
    TokenPenalty, TokenPenaltyPlan: TokenPenaltyDesc, TokenPenaltyArgs => kvs_token_penalty_plan;
    RmsNorm, RmsNormPlan: RmsNormDesc, RmsNormArgs => kvs_rms_norm_plan;
    GdnPrefill, GdnPrefillPlan: GdnPrefillDesc, GdnPrefillArgs => kvs_gdn_prefill_plan;
    GdnDecode, GdnDecodePlan: GdnDecodeDesc, GdnDecodeArgs => kvs_gdn_decode_plan;
}

// ------------------------------------------------------------------- prepare --
// The ops scheduled from host-side lengths: once per step, before the runs.

/// The C prepare of a plan over one paged table: (plan, indptr, last_page_len,
/// batch, workspace, workspace_bytes, stream, err).
type PreparePaged<R> =
    unsafe extern "C" fn(*mut R, *const i32, *const i32, i64, *mut c_void, usize, *mut c_void, *mut sys::kvs_error)
        -> sys::kvs_status_code;

fn prepare_paged<O: Op>(
    plan: &mut Plan<O>,
    prepare: PreparePaged<O::Raw>,
    stream: &Stream,
    ws: &mut Workspace,
    indptr: &[i32],
    last_page_len: &[i32],
) -> Result<()> {
    let batch = rows_of("indptr", indptr)?;
    check_len("last_page_len", last_page_len, batch)?;
    let (w, n) = ws.raw_for(plan.device())?;
    let raw = plan.raw_mut();
    // SAFETY: live handle; the slices hold batch + 1 and batch entries.
    check(|err| unsafe {
        prepare(raw, indptr.as_ptr(), last_page_len.as_ptr(), batch, w, n, stream.as_raw(), err)
    })
}

impl BatchPagedDecodePlan {
    /// indptr `[B + 1]` and last_page_len `[B]`: the host copy of the page table's lengths.
    pub fn prepare(&mut self, stream: &Stream, ws: &mut Workspace, indptr: &[i32], last_page_len: &[i32]) -> Result<()> {
        prepare_paged(self, sys::kvs_batch_paged_decode_prepare, stream, ws, indptr, last_page_len)
    }
}

impl BatchPagedMlaDecodePlan {
    /// indptr `[B + 1]` and last_page_len `[B]`: the host copy of the page table's lengths.
    pub fn prepare(&mut self, stream: &Stream, ws: &mut Workspace, indptr: &[i32], last_page_len: &[i32]) -> Result<()> {
        prepare_paged(self, sys::kvs_batch_paged_mla_decode_prepare, stream, ws, indptr, last_page_len)
    }
}

impl BatchRaggedPrefillPlan {
    /// qo_indptr and kv_indptr: host arrays of B + 1 entries.
    pub fn prepare(&mut self, stream: &Stream, ws: &mut Workspace, qo_indptr: &[i32], kv_indptr: &[i32]) -> Result<()> {
        let batch = rows_of("qo_indptr", qo_indptr)?;
        check_len("kv_indptr", kv_indptr, batch + 1)?;
        let (w, n) = ws.raw_for(self.device())?;
        let plan = self.raw_mut();
        // SAFETY: live handle; both slices hold batch + 1 entries.
        check(|err| unsafe {
            sys::kvs_batch_ragged_prefill_prepare(
                plan,
                qo_indptr.as_ptr(),
                kv_indptr.as_ptr(),
                batch,
                w,
                n,
                stream.as_raw(),
                err,
            )
        })
    }
}

impl BatchPagedPrefillPlan {
    /// qo_indptr and kv_indptr `[B + 1]`, kv_last_page_len `[B]`: host arrays.
    pub fn prepare(
        &mut self,
        stream: &Stream,
        ws: &mut Workspace,
        qo_indptr: &[i32],
        kv_indptr: &[i32],
        kv_last_page_len: &[i32],
    ) -> Result<()> {
        let batch = rows_of("qo_indptr", qo_indptr)?;
        check_len("kv_indptr", kv_indptr, batch + 1)?;
        check_len("kv_last_page_len", kv_last_page_len, batch)?;
        let (w, n) = ws.raw_for(self.device())?;
        let plan = self.raw_mut();
        // SAFETY: live handle; the slices hold the lengths checked above.
        check(|err| unsafe {
            sys::kvs_batch_paged_prefill_prepare(
                plan,
                qo_indptr.as_ptr(),
                kv_indptr.as_ptr(),
                kv_last_page_len.as_ptr(),
                batch,
                w,
                n,
                stream.as_raw(),
                err,
            )
        })
    }
}

/// The host lengths of CascadeAttention's tables (BlockManager::cascade_tables gives them).
pub struct CascadeLengths<'a> {
    /// `[G + 1]`
    pub group_indptr: &'a [i32],
    /// `[G + 1]` and `[G]`
    pub prefix_indptr: &'a [i32],
    pub prefix_last_page_len: &'a [i32],
    /// `[B + 1]` and `[B]`
    pub suffix_indptr: &'a [i32],
    pub suffix_last_page_len: &'a [i32],
}

impl CascadeAttentionPlan {
    pub fn prepare(&mut self, stream: &Stream, ws: &mut Workspace, lengths: &CascadeLengths<'_>) -> Result<()> {
        let groups = rows_of("group_indptr", lengths.group_indptr)?;
        let batch = rows_of("suffix_indptr", lengths.suffix_indptr)?;
        check_len("prefix_indptr", lengths.prefix_indptr, groups + 1)?;
        check_len("prefix_last_page_len", lengths.prefix_last_page_len, groups)?;
        check_len("suffix_last_page_len", lengths.suffix_last_page_len, batch)?;
        let (w, n) = ws.raw_for(self.device())?;
        let plan = self.raw_mut();
        // SAFETY: live handle; the slices hold the lengths checked above.
        check(|err| unsafe {
            sys::kvs_cascade_attention_prepare(
                plan,
                lengths.group_indptr.as_ptr(),
                groups,
                lengths.prefix_indptr.as_ptr(),
                lengths.prefix_last_page_len.as_ptr(),
                lengths.suffix_indptr.as_ptr(),
                lengths.suffix_last_page_len.as_ptr(),
                batch,
                w,
                n,
                stream.as_raw(),
                err,
            )
        })
    }
}
