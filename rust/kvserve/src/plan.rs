//! `Plan<Op>`: the one generic implementation of every plan's lifecycle over
//! the C ABI (select, workspace_size, can_implement, run, sku, precision),
//! and the Op trait each op's tag type implements (ops.rs).
use crate::dtype::DType;
use crate::error::{check, Error, Result};
use crate::tensor::{Device, Stream, ToC, Workspace};
use kvserve_sys::{self as sys, RawPlan};
use std::ffi::c_char;
use std::ptr::NonNull;

/// An op: its descriptor, its run arguments and the C plan behind them.
pub trait Op {
    type Desc: ToC<C = <Self::Raw as RawPlan>::Desc> + Clone;
    type Args<'a>: ToC<C = <Self::Raw as RawPlan>::Args>;
    type Raw: RawPlan;
}

/// What a plan promises about its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision {
    /// Type the products are formed in.
    pub math: DType,
    /// Type sums and softmax state are kept in.
    pub accumulator: DType,
    /// Same inputs, same plan: same bits, run to run.
    pub deterministic: bool,
    /// A row's result does not depend on the rest of the batch.
    pub batch_invariant: bool,
}

/// The kernel a plan selected, split from its key
/// ("cpu/host/BatchPagedDecode/q=f32 kv=f32 d=64 ...").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    pub backend: String,
    pub arch: String,
    pub op: String,
    pub config: String,
}

/// A validated op with its selected kernel. Immutable after select except for
/// prepare (which takes `&mut self`); `run` takes `&self` and may be called
/// from several threads, each with its own workspace and stream.
pub struct Plan<O: Op> {
    raw: NonNull<O::Raw>,
    desc: O::Desc,
    device: Device,
}

// The C++ plan is immutable after create and its run is const and thread-safe
// (kvserve/plan.hpp); prepare needs &mut, so Rust's rules keep it exclusive.
unsafe impl<O: Op> Send for Plan<O> {}
unsafe impl<O: Op> Sync for Plan<O> {}

impl<O: Op> Drop for Plan<O> {
    fn drop(&mut self) {
        // SAFETY: the handle came from create and is destroyed once.
        unsafe { O::Raw::destroy(self.raw.as_ptr()) }
    }
}

impl<O: Op> Plan<O> {
    /// Validates `desc` and selects a kernel for `device`; touches no data.
    pub fn select(desc: &O::Desc, device: Device) -> Result<Self> {
        let c_desc = desc.to_c();
        let mut raw: *mut O::Raw = std::ptr::null_mut();
        // SAFETY: c_desc (and what it points at, borrowed from desc) outlives the call.
        check(|err| unsafe { O::Raw::create(&c_desc, device.to_c(), &mut raw, err) })?;
        let raw = NonNull::new(raw).expect("kvs_*_create returned OK without a plan");
        Ok(Plan { raw, desc: desc.clone(), device })
    }

    /// Ok when select would succeed for `desc` on `device` (the same selection).
    pub fn supports(desc: &O::Desc, device: Device) -> Result<()> {
        Self::select(desc, device).map(drop)
    }

    pub fn desc(&self) -> &O::Desc {
        &self.desc
    }
    pub fn device(&self) -> Device {
        self.device
    }

    /// Bytes of workspace run (and prepare) need; a pure function of the descriptor.
    pub fn workspace_size(&self) -> usize {
        // SAFETY: live handle.
        unsafe { O::Raw::workspace_bytes(self.raw.as_ptr()) }
    }

    /// A host workspace of workspace_size() bytes, for a CPU plan.
    pub fn host_workspace(&self) -> Workspace {
        Workspace::host(self.workspace_size())
    }

    /// Ok when run would accept `args` (every tensor against the descriptor,
    /// the device and the last prepare); launches nothing.
    pub fn can_implement(&self, args: &O::Args<'_>) -> Result<()> {
        let c_args = args.to_c();
        // SAFETY: live handle; c_args' views borrow from args, alive here.
        check(|err| unsafe { O::Raw::can_implement(self.raw.as_ptr(), &c_args, err) })
    }

    /// Runs the op: synchronous on the CPU, asynchronous on `stream` on CUDA
    /// (the borrows in `args` then end before the device is done: synchronise
    /// the stream before touching the buffers again).
    pub fn run(&self, stream: &Stream, workspace: &mut Workspace, args: O::Args<'_>) -> Result<()> {
        let c_args = args.to_c();
        let (ws, ws_bytes) = workspace.raw_for(self.device)?;
        // SAFETY: live handle; views borrow from args; the workspace is exclusively ours.
        check(|err| unsafe { O::Raw::run(self.raw.as_ptr(), &c_args, ws, ws_bytes, stream.as_raw(), err) })
    }

    /// The selected kernel's key: a telemetry or autotuning key.
    pub fn sku(&self) -> String {
        // SAFETY: live handle; the first call asks for the length, the second fills a buffer of it.
        let len = unsafe { O::Raw::kernel(self.raw.as_ptr(), std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; len + 1];
        unsafe { O::Raw::kernel(self.raw.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) };
        buf.truncate(len);
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub fn kernel(&self) -> KernelInfo {
        let sku = self.sku();
        let mut parts = sku.splitn(4, '/').map(str::to_string);
        let mut next = || parts.next().unwrap_or_default();
        KernelInfo { backend: next(), arch: next(), op: next(), config: next() }
    }

    pub fn precision(&self) -> Precision {
        let mut p = sys::kvs_precision::default();
        // SAFETY: live handle and a valid out pointer: cannot fail.
        check(|err| unsafe { O::Raw::precision(self.raw.as_ptr(), &mut p, err) }).expect("kvs_*_precision");
        Precision {
            math: DType::from_c(p.math).expect("precision.math"),
            accumulator: DType::from_c(p.accumulator).expect("precision.accumulator"),
            deterministic: p.deterministic != 0,
            batch_invariant: p.batch_invariant != 0,
        }
    }

    pub(crate) fn raw_mut(&mut self) -> *mut O::Raw {
        self.raw.as_ptr()
    }
}

/// The batch size of a host indptr array (B + 1 entries, so at least one).
pub(crate) fn rows_of(name: &str, indptr: &[i32]) -> Result<i64> {
    if indptr.is_empty() {
        return Err(Error::argument(name, "B + 1 >= 1 entries".into(), "0".into()));
    }
    Ok(indptr.len() as i64 - 1)
}

/// A host array that must hold `rows` entries (the rows its indptr says).
pub(crate) fn check_len(name: &str, got: &[i32], rows: i64) -> Result<()> {
    if got.len() as i64 == rows {
        return Ok(());
    }
    Err(Error::argument(name, format!("{rows} entries"), format!("{}", got.len())))
}
