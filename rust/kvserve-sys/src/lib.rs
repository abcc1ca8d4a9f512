//! Raw declarations of kvserve's C ABI, `include/kvserve/kvserve.h`, one for
//! one: the same names, `#[repr(C)]` structs with the same fields in the same
//! order, C enums as `i32` aliases with their constants (a C caller may store
//! any value in an enum field, so a Rust `enum` would be unsound here).
//!
//! Every struct's size and field offsets are compared with the C compiler's in
//! `tests/layout.rs`, which also checks the field lists against the header.
//! The safe API is the `kvserve` crate.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void};
use std::marker::{PhantomData, PhantomPinned};

/// The directory holding `kvserve/kvserve.h` of the library this crate links.
pub const INCLUDE_DIR: &str = env!("KVSERVE_INCLUDE_DIR");

/// A C enum: an `i32` alias and its constants (a C caller may store any value
/// in an enum field, so a Rust `enum` would be unsound here).
macro_rules! c_enum {
    ($name:ident { $($constant:ident = $value:expr),* $(,)? }) => {
        pub type $name = i32;
        $(pub const $constant: $name = $value;)*
    };
}

// ------------------------------------------------------------------ status --

c_enum!(kvs_status_code {
    KVS_OK = 0, KVS_INVALID_ARGUMENT = 1, KVS_UNSUPPORTED = 2, KVS_WORKSPACE_TOO_SMALL = 3, KVS_CUDA_ERROR = 4,
    KVS_INTERNAL = 5, KVS_RESOURCE_EXHAUSTED = 6,
});

#[repr(C)]
#[derive(Clone, Copy)]
pub struct kvs_error {
    pub code: kvs_status_code,
    pub workspace_needed: usize,
    pub workspace_got: usize,
    pub message: [c_char; 512],
}

impl Default for kvs_error {
    fn default() -> Self {
        kvs_error { code: KVS_OK, workspace_needed: 0, workspace_got: 0, message: [0; 512] }
    }
}

c_enum!(kvs_dtype { KVS_F16 = 0, KVS_BF16 = 1, KVS_F32 = 2, KVS_FP8_E4M3 = 3, KVS_FP8_E5M2 = 4, KVS_INT32 = 5 });

c_enum!(kvs_device_kind { KVS_DEVICE_CPU = 0, KVS_DEVICE_CUDA = 1 });

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct kvs_device {
    pub kind: kvs_device_kind,
    pub ordinal: i32,
}

pub const KVS_MAX_BATCH: i64 = 1048576;
pub const KVS_MAX_HEADS: i64 = 1024;
pub const KVS_MAX_HEAD_DIM: i64 = 256;
pub const KVS_MAX_ROW_WIDTH: i64 = 65536;
pub const KVS_MAX_PAGE_SIZE: i64 = 1024;
pub const KVS_MAX_PAGES: i64 = 2147483647;
pub const KVS_MAX_TOKENS: i64 = 2147483647;
pub const KVS_MAX_SEQUENCE_LENGTH: i64 = 1073741824;
pub const KVS_MAX_VOCAB: i64 = 4194304;
pub const KVS_MAX_DRAFT_TOKENS: i64 = 256;
pub const KVS_MAX_RANK: usize = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvs_tensor {
    pub data: *mut c_void,
    pub dtype: kvs_dtype,
    pub rank: i32,
    pub shape: [i64; KVS_MAX_RANK],
    pub strides: [i64; KVS_MAX_RANK],
    pub device: kvs_device,
}

/// The "not given" view of an optional argument (data NULL).
impl Default for kvs_tensor {
    fn default() -> Self {
        kvs_tensor {
            data: std::ptr::null_mut(),
            dtype: KVS_F32,
            rank: 0,
            shape: [0; KVS_MAX_RANK],
            strides: [0; KVS_MAX_RANK],
            device: kvs_device::default(),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kvs_precision {
    pub math: kvs_dtype,
    pub accumulator: kvs_dtype,
    pub deterministic: i32,
    pub batch_invariant: i32,
}

extern "C" {
    pub fn kvs_cuda_backend_built() -> i32;
    pub fn kvs_cuda_device_count() -> i32;
}

/// The C entry points of one plan kind, so that generic code (the safe
/// crate's `Plan<Op>`) reaches them through one trait.
pub trait RawPlan {
    type Desc;
    type Args;
    /// The `X` of `kvs_X_create` (e.g. "batch_paged_decode").
    const KIND: &'static str;
    unsafe fn create(
        desc: *const Self::Desc,
        device: kvs_device,
        plan: *mut *mut Self,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    unsafe fn run(
        plan: *const Self,
        args: *const Self::Args,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    unsafe fn can_implement(plan: *const Self, args: *const Self::Args, err: *mut kvs_error) -> kvs_status_code;
    unsafe fn workspace_bytes(plan: *const Self) -> usize;
    unsafe fn kernel(plan: *const Self, buf: *mut c_char, size: usize) -> usize;
    unsafe fn precision(plan: *const Self, out: *mut kvs_precision, err: *mut kvs_error) -> kvs_status_code;
    unsafe fn destroy(plan: *mut Self);
}

/// Declares an opaque plan handle, the entry points every plan has (create,
/// run, can_implement, workspace_bytes, kernel, precision, destroy) and its
/// RawPlan impl.
macro_rules! plan {
    ($kind:ident, $plan:ident, $desc:ident, $args:ident:
     $create:ident, $run:ident, $can:ident, $ws:ident, $kernel:ident, $prec:ident, $destroy:ident) => {
        #[repr(C)]
        pub struct $plan {
            _opaque: [u8; 0],
            _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
        }
        extern "C" {
            pub fn $create(
                desc: *const $desc,
                device: kvs_device,
                plan: *mut *mut $plan,
                err: *mut kvs_error,
            ) -> kvs_status_code;
            pub fn $run(
                plan: *const $plan,
                args: *const $args,
                workspace: *mut c_void,
                workspace_bytes: usize,
                stream: *mut c_void,
                err: *mut kvs_error,
            ) -> kvs_status_code;
            pub fn $can(plan: *const $plan, args: *const $args, err: *mut kvs_error) -> kvs_status_code;
            pub fn $ws(plan: *const $plan) -> usize;
            pub fn $kernel(plan: *const $plan, buf: *mut c_char, size: usize) -> usize;
            pub fn $prec(plan: *const $plan, out: *mut kvs_precision, err: *mut kvs_error) -> kvs_status_code;
            pub fn $destroy(plan: *mut $plan);
        }
        impl RawPlan for $plan {
            type Desc = $desc;
            type Args = $args;
            const KIND: &'static str = stringify!($kind);
            unsafe fn create(
                d: *const $desc,
                dev: kvs_device,
                p: *mut *mut $plan,
                e: *mut kvs_error,
            ) -> kvs_status_code {
                $create(d, dev, p, e)
            }
            unsafe fn run(
                p: *const $plan,
                a: *const $args,
                w: *mut c_void,
                n: usize,
                s: *mut c_void,
                e: *mut kvs_error,
            ) -> kvs_status_code {
                $run(p, a, w, n, s, e)
            }
            unsafe fn can_implement(p: *const $plan, a: *const $args, e: *mut kvs_error) -> kvs_status_code {
                $can(p, a, e)
            }
            unsafe fn workspace_bytes(p: *const $plan) -> usize {
                $ws(p)
            }
            unsafe fn kernel(p: *const $plan, b: *mut c_char, n: usize) -> usize {
                $kernel(p, b, n)
            }
            unsafe fn precision(p: *const $plan, o: *mut kvs_precision, e: *mut kvs_error) -> kvs_status_code {
                $prec(p, o, e)
            }
            unsafe fn destroy(p: *mut $plan) {
                $destroy(p)
            }
        }
    };
}

/// `#[repr(C)]` structs of plain fields, zero-initialised by Default (the C
/// callers' memset), which the safe crate then fills.
macro_rules! c_structs {
    ($($(#[$m:meta])* pub struct $name:ident { $(pub $field:ident: $ty:ty,)* })*) => {
        $(
            $(#[$m])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug)]
            pub struct $name { $(pub $field: $ty,)* }
            impl Default for $name {
                fn default() -> Self {
                    // SAFETY: every field is an integer, float, raw pointer or a
                    // struct of those, for which all-zero bits are valid.
                    unsafe { std::mem::zeroed() }
                }
            }
        )*
    };
}

// ----------------------------------------------------------------- attention --

c_enum!(kvs_kv_layout { KVS_NHD = 0, KVS_HND = 1 });

c_structs! {
    pub struct kvs_attention_params {
        pub sm_scale: f32,
        pub logits_soft_cap: f32,
        pub window_left: i32,
    }
    pub struct kvs_paged_kv_desc {
        pub page_size: i32,
        pub num_pages: i64,
        pub num_kv_heads: i32,
        pub head_dim: i32,
        pub dtype: kvs_dtype,
        pub layout: kvs_kv_layout,
        pub k_scale: *const f32,
        pub num_k_scale: i32,
        pub v_scale: *const f32,
        pub num_v_scale: i32,
    }
    pub struct kvs_paged_kv {
        pub k_pages: kvs_tensor,
        pub v_pages: kvs_tensor,
        pub indptr: kvs_tensor,
        pub indices: kvs_tensor,
        pub last_page_len: kvs_tensor,
    }
    pub struct kvs_batch_paged_decode_desc {
        pub max_batch: i32,
        pub num_qo_heads: i32,
        pub kv: kvs_paged_kv_desc,
        pub q_dtype: kvs_dtype,
        pub attn: kvs_attention_params,
        pub kv_split_tokens: i32,
    }
    pub struct kvs_batch_paged_decode_args {
        pub q: kvs_tensor,
        pub kv: kvs_paged_kv,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_single_decode_desc {
        pub max_batch: i32,
        pub num_qo_heads: i32,
        pub num_kv_heads: i32,
        pub head_dim: i32,
        pub dtype: kvs_dtype,
        pub attn: kvs_attention_params,
        pub kv_split_tokens: i32,
    }
    pub struct kvs_single_decode_args {
        pub q: kvs_tensor,
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub kv_len: kvs_tensor,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_single_prefill_desc {
        pub num_qo_heads: i32,
        pub num_kv_heads: i32,
        pub head_dim: i32,
        pub head_dim_v: i32,
        pub dtype: kvs_dtype,
        pub layout: kvs_kv_layout,
        pub causal: i32,
        pub attn: kvs_attention_params,
    }
    pub struct kvs_single_prefill_args {
        pub q: kvs_tensor,
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_batch_ragged_prefill_desc {
        pub max_batch: i32,
        pub num_qo_heads: i32,
        pub num_kv_heads: i32,
        pub head_dim: i32,
        pub head_dim_v: i32,
        pub dtype: kvs_dtype,
        pub causal: i32,
        pub attn: kvs_attention_params,
    }
    pub struct kvs_batch_ragged_prefill_args {
        pub q: kvs_tensor,
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub qo_indptr: kvs_tensor,
        pub kv_indptr: kvs_tensor,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_batch_paged_prefill_desc {
        pub max_batch: i32,
        pub num_qo_heads: i32,
        pub kv: kvs_paged_kv_desc,
        pub q_dtype: kvs_dtype,
        pub causal: i32,
        pub attn: kvs_attention_params,
    }
    pub struct kvs_batch_paged_prefill_args {
        pub q: kvs_tensor,
        pub qo_indptr: kvs_tensor,
        pub kv: kvs_paged_kv,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_cascade_attention_desc {
        pub max_batch: i32,
        pub max_groups: i32,
        pub num_qo_heads: i32,
        pub kv: kvs_paged_kv_desc,
        pub q_dtype: kvs_dtype,
        pub attn: kvs_attention_params,
    }
    pub struct kvs_cascade_attention_args {
        pub q: kvs_tensor,
        pub group_indptr: kvs_tensor,
        pub prefix: kvs_paged_kv,
        pub suffix: kvs_paged_kv,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
}

extern "C" {
    pub fn kvs_validate_page_table(
        desc: *const kvs_paged_kv_desc,
        kv: *const kvs_paged_kv,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;

    pub fn kvs_batch_paged_decode_prepare(
        plan: *mut kvs_batch_paged_decode_plan,
        indptr: *const i32,
        last_page_len: *const i32,
        batch: i64,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;

    pub fn kvs_batch_paged_mla_decode_prepare(
        plan: *mut kvs_batch_paged_mla_decode_plan,
        indptr: *const i32,
        last_page_len: *const i32,
        batch: i64,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;

    pub fn kvs_batch_ragged_prefill_prepare(
        plan: *mut kvs_batch_ragged_prefill_plan,
        qo_indptr: *const i32,
        kv_indptr: *const i32,
        batch: i64,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;

    pub fn kvs_batch_paged_prefill_prepare(
        plan: *mut kvs_batch_paged_prefill_plan,
        qo_indptr: *const i32,
        kv_indptr: *const i32,
        kv_last_page_len: *const i32,
        batch: i64,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;

    pub fn kvs_cascade_attention_prepare(
        plan: *mut kvs_cascade_attention_plan,
        group_indptr: *const i32,
        num_groups: i64,
        prefix_indptr: *const i32,
        prefix_last_page_len: *const i32,
        suffix_indptr: *const i32,
        suffix_last_page_len: *const i32,
        batch: i64,
        workspace: *mut c_void,
        workspace_bytes: usize,
        stream: *mut c_void,
        err: *mut kvs_error,
    ) -> kvs_status_code;
}

plan!(batch_paged_decode, kvs_batch_paged_decode_plan, kvs_batch_paged_decode_desc, kvs_batch_paged_decode_args:
    kvs_batch_paged_decode_create, kvs_batch_paged_decode_run, kvs_batch_paged_decode_can_implement,
    kvs_batch_paged_decode_workspace_bytes, kvs_batch_paged_decode_kernel, kvs_batch_paged_decode_precision,
    kvs_batch_paged_decode_destroy);
plan!(single_decode, kvs_single_decode_plan, kvs_single_decode_desc, kvs_single_decode_args:
    kvs_single_decode_create, kvs_single_decode_run, kvs_single_decode_can_implement,
    kvs_single_decode_workspace_bytes, kvs_single_decode_kernel, kvs_single_decode_precision,
    kvs_single_decode_destroy);
plan!(single_prefill, kvs_single_prefill_plan, kvs_single_prefill_desc, kvs_single_prefill_args:
    kvs_single_prefill_create, kvs_single_prefill_run, kvs_single_prefill_can_implement,
    kvs_single_prefill_workspace_bytes, kvs_single_prefill_kernel, kvs_single_prefill_precision,
    kvs_single_prefill_destroy);
plan!(batch_ragged_prefill, kvs_batch_ragged_prefill_plan, kvs_batch_ragged_prefill_desc, kvs_batch_ragged_prefill_args:
    kvs_batch_ragged_prefill_create, kvs_batch_ragged_prefill_run, kvs_batch_ragged_prefill_can_implement,
    kvs_batch_ragged_prefill_workspace_bytes, kvs_batch_ragged_prefill_kernel, kvs_batch_ragged_prefill_precision,
    kvs_batch_ragged_prefill_destroy);
plan!(batch_paged_prefill, kvs_batch_paged_prefill_plan, kvs_batch_paged_prefill_desc, kvs_batch_paged_prefill_args:
    kvs_batch_paged_prefill_create, kvs_batch_paged_prefill_run, kvs_batch_paged_prefill_can_implement,
    kvs_batch_paged_prefill_workspace_bytes, kvs_batch_paged_prefill_kernel, kvs_batch_paged_prefill_precision,
    kvs_batch_paged_prefill_destroy);
plan!(cascade_attention, kvs_cascade_attention_plan, kvs_cascade_attention_desc, kvs_cascade_attention_args:
    kvs_cascade_attention_create, kvs_cascade_attention_run, kvs_cascade_attention_can_implement,
    kvs_cascade_attention_workspace_bytes, kvs_cascade_attention_kernel, kvs_cascade_attention_precision,
    kvs_cascade_attention_destroy);

// --------------------------------------------------------------------- merge --

c_structs! {
    pub struct kvs_merge_state_desc {
        pub num_heads: i32,
        pub head_dim: i32,
        pub dtype: kvs_dtype,
    }
    pub struct kvs_merge_state_args {
        pub v_a: kvs_tensor,
        pub lse_a: kvs_tensor,
        pub v_b: kvs_tensor,
        pub lse_b: kvs_tensor,
        pub v_out: kvs_tensor,
        pub lse_out: kvs_tensor,
    }
    pub struct kvs_merge_states_desc {
        pub num_heads: i32,
        pub head_dim: i32,
        pub dtype: kvs_dtype,
    }
    pub struct kvs_merge_states_args {
        pub v: kvs_tensor,
        pub lse: kvs_tensor,
        pub v_out: kvs_tensor,
        pub lse_out: kvs_tensor,
    }
}

plan!(merge_state, kvs_merge_state_plan, kvs_merge_state_desc, kvs_merge_state_args:
    kvs_merge_state_create, kvs_merge_state_run, kvs_merge_state_can_implement, kvs_merge_state_workspace_bytes,
    kvs_merge_state_kernel, kvs_merge_state_precision, kvs_merge_state_destroy);
plan!(merge_states, kvs_merge_states_plan, kvs_merge_states_desc, kvs_merge_states_args:
    kvs_merge_states_create, kvs_merge_states_run, kvs_merge_states_can_implement,
    kvs_merge_states_workspace_bytes, kvs_merge_states_kernel, kvs_merge_states_precision,
    kvs_merge_states_destroy);

// ------------------------------------------------------------------ KV cache --

c_enum!(kvs_append_mode { KVS_APPEND_DECODE = 0, KVS_APPEND_RAGGED = 1 });

c_structs! {
    pub struct kvs_paged_kv_append_desc {
        pub kv: kvs_paged_kv_desc,
        pub dtype: kvs_dtype,
        pub mode: kvs_append_mode,
    }
    pub struct kvs_paged_kv_append_args {
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub batch_indices: kvs_tensor,
        pub positions: kvs_tensor,
        pub kv: kvs_paged_kv,
    }
    pub struct kvs_paged_mla_desc {
        pub page_size: i32,
        pub num_pages: i64,
        pub ckv_dim: i32,
        pub kpe_dim: i32,
        pub dtype: kvs_dtype,
    }
    pub struct kvs_paged_mla_cache {
        pub ckv_pages: kvs_tensor,
        pub kpe_pages: kvs_tensor,
        pub indptr: kvs_tensor,
        pub indices: kvs_tensor,
        pub last_page_len: kvs_tensor,
    }
    pub struct kvs_paged_mla_append_args {
        pub ckv: kvs_tensor,
        pub kpe: kvs_tensor,
        pub batch_indices: kvs_tensor,
        pub positions: kvs_tensor,
        pub cache: kvs_paged_mla_cache,
    }
    pub struct kvs_batch_paged_mla_decode_desc {
        pub max_batch: i32,
        pub num_heads: i32,
        pub cache: kvs_paged_mla_desc,
        pub sm_scale: f32,
        pub kv_split_tokens: i32,
    }
    pub struct kvs_batch_paged_mla_decode_args {
        pub q_nope: kvs_tensor,
        pub q_pe: kvs_tensor,
        pub cache: kvs_paged_mla_cache,
        pub out: kvs_tensor,
        pub lse: kvs_tensor,
    }
    pub struct kvs_kv_cache_append_desc {
        pub num_kv_heads: i32,
        pub head_dim: i32,
        pub dtype: kvs_dtype,
    }
    pub struct kvs_kv_cache_append_args {
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub batch_indices: kvs_tensor,
        pub positions: kvs_tensor,
        pub k_cache: kvs_tensor,
        pub v_cache: kvs_tensor,
    }
}

plan!(paged_kv_append, kvs_paged_kv_append_plan, kvs_paged_kv_append_desc, kvs_paged_kv_append_args:
    kvs_paged_kv_append_create, kvs_paged_kv_append_run, kvs_paged_kv_append_can_implement,
    kvs_paged_kv_append_workspace_bytes, kvs_paged_kv_append_kernel, kvs_paged_kv_append_precision,
    kvs_paged_kv_append_destroy);
plan!(paged_mla_append, kvs_paged_mla_append_plan, kvs_paged_mla_desc, kvs_paged_mla_append_args:
    kvs_paged_mla_append_create, kvs_paged_mla_append_run, kvs_paged_mla_append_can_implement,
    kvs_paged_mla_append_workspace_bytes, kvs_paged_mla_append_kernel, kvs_paged_mla_append_precision,
    kvs_paged_mla_append_destroy);
plan!(batch_paged_mla_decode, kvs_batch_paged_mla_decode_plan, kvs_batch_paged_mla_decode_desc,
    kvs_batch_paged_mla_decode_args:
    kvs_batch_paged_mla_decode_create, kvs_batch_paged_mla_decode_run, kvs_batch_paged_mla_decode_can_implement,
    kvs_batch_paged_mla_decode_workspace_bytes, kvs_batch_paged_mla_decode_kernel,
    kvs_batch_paged_mla_decode_precision, kvs_batch_paged_mla_decode_destroy);
plan!(kv_cache_append, kvs_kv_cache_append_plan, kvs_kv_cache_append_desc, kvs_kv_cache_append_args:
    kvs_kv_cache_append_create, kvs_kv_cache_append_run, kvs_kv_cache_append_can_implement,
    kvs_kv_cache_append_workspace_bytes, kvs_kv_cache_append_kernel, kvs_kv_cache_append_precision,
    kvs_kv_cache_append_destroy);

// -------------------------------------------------------------- BlockManager --

#[repr(C)]
pub struct kvs_block_manager {
    _opaque: [u8; 0],
    _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}
pub type kvs_seq_id = i64;

c_enum!(kvs_table_part { KVS_TABLE_ALL = 0, KVS_TABLE_PREFIX = 1, KVS_TABLE_SUFFIX = 2 });

c_structs! {
    pub struct kvs_sequence_info {
        pub length: i64,
        pub prefix_pages: i64,
        pub num_pages: i64,
    }
    pub struct kvs_page_table {
        pub indptr: *mut i32,
        pub indices: *mut i32,
        pub indices_capacity: i64,
        pub last_page_len: *mut i32,
        pub num_indices: i64,
    }
}

extern "C" {
    pub fn kvs_block_manager_create(
        num_pages: i64,
        page_size: i32,
        manager: *mut *mut kvs_block_manager,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_destroy(manager: *mut kvs_block_manager);
    pub fn kvs_block_manager_free_pages(manager: *const kvs_block_manager) -> i64;
    pub fn kvs_block_manager_num_pages(manager: *const kvs_block_manager) -> i64;
    pub fn kvs_block_manager_page_size(manager: *const kvs_block_manager) -> i32;
    pub fn kvs_block_manager_num_sequences(manager: *const kvs_block_manager) -> i64;
    pub fn kvs_block_manager_refcount(
        manager: *const kvs_block_manager,
        page: i64,
        refcount: *mut i32,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_pages_needed(
        manager: *const kvs_block_manager,
        seq: kvs_seq_id,
        tokens: i64,
        pages: *mut i64,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_sequence(
        manager: *const kvs_block_manager,
        seq: kvs_seq_id,
        info: *mut kvs_sequence_info,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_add_sequence(
        manager: *mut kvs_block_manager,
        tokens: i64,
        seq: *mut kvs_seq_id,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_fork(
        manager: *mut kvs_block_manager,
        parent: kvs_seq_id,
        tokens: i64,
        child: *mut kvs_seq_id,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_append_tokens(
        manager: *mut kvs_block_manager,
        seq: kvs_seq_id,
        tokens: i64,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_append_tokens_batch(
        manager: *mut kvs_block_manager,
        seqs: *const kvs_seq_id,
        num_seqs: i64,
        tokens: i64,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_truncate(
        manager: *mut kvs_block_manager,
        seq: kvs_seq_id,
        length: i64,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_release(
        manager: *mut kvs_block_manager,
        seq: kvs_seq_id,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_page_table(
        manager: *const kvs_block_manager,
        seqs: *const kvs_seq_id,
        num_seqs: i64,
        part: kvs_table_part,
        table: *mut kvs_page_table,
        err: *mut kvs_error,
    ) -> kvs_status_code;
    pub fn kvs_block_manager_cascade_tables(
        manager: *const kvs_block_manager,
        members: *const kvs_seq_id,
        group_sizes: *const i64,
        num_groups: i64,
        group_indptr: *mut i32,
        prefix: *mut kvs_page_table,
        suffix: *mut kvs_page_table,
        err: *mut kvs_error,
    ) -> kvs_status_code;
}

// ------------------------------------------------------------------ sampling --

c_enum!(kvs_sampling_input { KVS_SAMPLING_INPUT_PROBS = 0, KVS_SAMPLING_INPUT_LOGITS = 1 });

c_enum!(kvs_sampling_filter {
    KVS_FILTER_NONE = 0, KVS_FILTER_TOP_K = 1, KVS_FILTER_TOP_P = 2, KVS_FILTER_MIN_P = 3,
    KVS_FILTER_TOP_K_TOP_P = 4, KVS_FILTER_GREEDY = 5,
});

c_enum!(kvs_top_k_top_p_order { KVS_ORDER_K_THEN_P = 0, KVS_ORDER_JOINT = 1 });

c_enum!(kvs_param_source { KVS_PARAMS_SCALAR = 0, KVS_PARAMS_PER_ROW = 1 });

c_enum!(kvs_random_source { KVS_RANDOM_HOST = 0, KVS_RANDOM_PER_ROW = 1 });

c_enum!(kvs_renorm_kind { KVS_TOP_K_RENORM_PROBS = 0, KVS_TOP_P_RENORM_PROBS = 1, KVS_TOP_K_MASK_LOGITS = 2 });

c_enum!(kvs_penalty_history { KVS_HISTORY_TOKEN_COUNTS = 0, KVS_HISTORY_TOKEN_IDS = 1 });

c_structs! {
    pub struct kvs_sampling_desc {
        pub vocab: i32,
        pub max_batch: i32,
        pub input: kvs_sampling_input,
        pub filter: kvs_sampling_filter,
        pub order: kvs_top_k_top_p_order,
        pub temperature: f32,
        pub top_k: i32,
        pub top_p: f32,
        pub min_p: f32,
        pub params: kvs_param_source,
        pub random: kvs_random_source,
    }
    pub struct kvs_sampling_args {
        pub input: kvs_tensor,
        pub out: kvs_tensor,
        pub temperature: kvs_tensor,
        pub top_k: kvs_tensor,
        pub top_p: kvs_tensor,
        pub min_p: kvs_tensor,
        pub seed: u64,
        pub offset: u64,
        pub seeds: kvs_tensor,
        pub offsets: kvs_tensor,
    }
    pub struct kvs_sampling_renorm_desc {
        pub vocab: i32,
        pub max_batch: i32,
        pub kind: kvs_renorm_kind,
        pub top_k: i32,
        pub top_p: f32,
        pub params: kvs_param_source,
    }
    pub struct kvs_sampling_renorm_args {
        pub input: kvs_tensor,
        pub out: kvs_tensor,
        pub top_k: kvs_tensor,
        pub top_p: kvs_tensor,
    }
    pub struct kvs_chain_speculative_sampling_desc {
        pub vocab: i32,
        pub max_batch: i32,
        pub num_draft_tokens: i32,
        pub random: kvs_random_source,
    }
    pub struct kvs_chain_speculative_sampling_args {
        pub draft_token_ids: kvs_tensor,
        pub draft_probs: kvs_tensor,
        pub target_probs: kvs_tensor,
        pub out: kvs_tensor,
        pub accepted: kvs_tensor,
        pub emitted: kvs_tensor,
        pub seed: u64,
        pub offset: u64,
        pub seeds: kvs_tensor,
        pub offsets: kvs_tensor,
    }
    pub struct kvs_token_penalty_desc {
        pub vocab: i32,
        pub max_batch: i32,
        pub history: kvs_penalty_history,
        pub repetition: f32,
        pub frequency: f32,
        pub presence: f32,
        pub params: kvs_param_source,
    }
    pub struct kvs_token_penalty_args {
        pub logits: kvs_tensor,
        pub counts: kvs_tensor,
        pub token_ids: kvs_tensor,
        pub repetition: kvs_tensor,
        pub frequency: kvs_tensor,
        pub presence: kvs_tensor,
    }
}

plan!(sampling, kvs_sampling_plan, kvs_sampling_desc, kvs_sampling_args:
    kvs_sampling_create, kvs_sampling_run, kvs_sampling_can_implement, kvs_sampling_workspace_bytes,
    kvs_sampling_kernel, kvs_sampling_precision, kvs_sampling_destroy);
plan!(sampling_renorm, kvs_sampling_renorm_plan, kvs_sampling_renorm_desc, kvs_sampling_renorm_args:
    kvs_sampling_renorm_create, kvs_sampling_renorm_run, kvs_sampling_renorm_can_implement,
    kvs_sampling_renorm_workspace_bytes, kvs_sampling_renorm_kernel, kvs_sampling_renorm_precision,
    kvs_sampling_renorm_destroy);
plan!(chain_speculative_sampling, kvs_chain_speculative_sampling_plan, kvs_chain_speculative_sampling_desc,
      kvs_chain_speculative_sampling_args:
    kvs_chain_speculative_sampling_create, kvs_chain_speculative_sampling_run,
    kvs_chain_speculative_sampling_can_implement, kvs_chain_speculative_sampling_workspace_bytes,
    kvs_chain_speculative_sampling_kernel, kvs_chain_speculative_sampling_precision,
    kvs_chain_speculative_sampling_destroy);
plan!(token_penalty, kvs_token_penalty_plan, kvs_token_penalty_desc, kvs_token_penalty_args:
    kvs_token_penalty_create, kvs_token_penalty_run, kvs_token_penalty_can_implement,
    kvs_token_penalty_workspace_bytes, kvs_token_penalty_kernel, kvs_token_penalty_precision,
    kvs_token_penalty_destroy);

// ----------------------------------------------------------- norm and GDN --

c_structs! {
    pub struct kvs_rms_norm_desc {
        pub hidden_size: i32,
        pub dtype: kvs_dtype,
        pub eps: f32,
        pub weight_offset: f32,
        pub fused_add: i32,
    }
    pub struct kvs_rms_norm_args {
        pub x: kvs_tensor,
        pub weight: kvs_tensor,
        pub residual: kvs_tensor,
        pub out: kvs_tensor,
    }
    pub struct kvs_gdn_prefill_desc {
        pub max_batch: i32,
        pub max_tokens: i64,
        pub num_qk_heads: i32,
        pub num_v_heads: i32,
        pub head_dim_k: i32,
        pub head_dim_v: i32,
        pub dtype: kvs_dtype,
        pub scale: f32,
        pub use_qk_l2norm: i32,
        pub l2norm_eps: f32,
    }
    pub struct kvs_gdn_prefill_args {
        pub q: kvs_tensor,
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub alpha: kvs_tensor,
        pub beta: kvs_tensor,
        pub cu_seqlens: kvs_tensor,
        pub initial_state: kvs_tensor,
        pub out: kvs_tensor,
        pub final_state: kvs_tensor,
    }
    pub struct kvs_gdn_decode_desc {
        pub max_batch: i32,
        pub num_state_slots: i32,
        pub num_qk_heads: i32,
        pub num_v_heads: i32,
        pub head_dim_k: i32,
        pub head_dim_v: i32,
        pub dtype: kvs_dtype,
        pub scale: f32,
        pub use_qk_l2norm: i32,
        pub l2norm_eps: f32,
    }
    pub struct kvs_gdn_decode_args {
        pub q: kvs_tensor,
        pub k: kvs_tensor,
        pub v: kvs_tensor,
        pub alpha: kvs_tensor,
        pub beta: kvs_tensor,
        pub state_indices: kvs_tensor,
        pub state: kvs_tensor,
        pub out: kvs_tensor,
    }
}

plan!(rms_norm, kvs_rms_norm_plan, kvs_rms_norm_desc, kvs_rms_norm_args:
    kvs_rms_norm_create, kvs_rms_norm_run, kvs_rms_norm_can_implement, kvs_rms_norm_workspace_bytes,
    kvs_rms_norm_kernel, kvs_rms_norm_precision, kvs_rms_norm_destroy);
plan!(gdn_prefill, kvs_gdn_prefill_plan, kvs_gdn_prefill_desc, kvs_gdn_prefill_args:
    kvs_gdn_prefill_create, kvs_gdn_prefill_run, kvs_gdn_prefill_can_implement, kvs_gdn_prefill_workspace_bytes,
    kvs_gdn_prefill_kernel, kvs_gdn_prefill_precision, kvs_gdn_prefill_destroy);
plan!(gdn_decode, kvs_gdn_decode_plan, kvs_gdn_decode_desc, kvs_gdn_decode_args:
    kvs_gdn_decode_create, kvs_gdn_decode_run, kvs_gdn_decode_can_implement, kvs_gdn_decode_workspace_bytes,
    kvs_gdn_decode_kernel, kvs_gdn_decode_precision, kvs_gdn_decode_destroy);
