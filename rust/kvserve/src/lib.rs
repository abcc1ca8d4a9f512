//! kvserve from Rust: the serving kernels (paged attention, KV cache writes,
//! state merges, sampling, penalties, speculative verification, RMSNorm, the
//! gated delta rule) as typed plans over kvserve's C ABI.
//!
//! Every op follows one lifecycle, `Plan<Op>`:
//! `select(&desc, device)` validates the descriptor and picks a kernel,
//! `workspace_size()` says how much scratch the caller must provide,
//! `prepare(..)` (ops scheduled from lengths) builds the step's schedule,
//! `run(&stream, &mut workspace, args)` runs, any number of times;
//! `can_implement(&args)` checks arguments without running, `sku()` and
//! `precision()` say what was selected and what it promises. Errors are
//! [`Error`] values naming the field or argument, what was expected and given.
//!
//! The CPU backend runs every op on host slices, so an engine's tests need no GPU.
#![doc = include_str!("../README.md")]

mod block_manager;
mod dtype;
mod error;
mod ops;
mod plan;
mod tensor;

pub use block_manager::{BlockManager, CascadeTables, PageTable, SeqId, SequenceInfo, TablePart};
pub use dtype::{DType, Element, Fp8E4m3, Fp8E5m2, BF16, F16};
pub use error::{Error, Result};
pub use ops::*;
pub use plan::{KernelInfo, Op, Plan, Precision};
pub use tensor::{
    cuda_backend_built, cuda_device_count, AnyMut, AnyRef, Device, Stream, TensorMut, TensorRef, ToC, Workspace,
};
