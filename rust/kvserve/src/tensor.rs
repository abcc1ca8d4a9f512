//! Devices, streams, workspaces and typed tensor views.
//!
//! A view borrows its buffer for its lifetime: `TensorRef<'a, T, N>` shares a
//! `&'a [T]`, `TensorMut<'a, T, N>` holds a `&'a mut [T]`, so Rust's borrow
//! rules keep an output from aliasing an input. Host views check their shape
//! and strides against the slice they borrow; device memory comes in through
//! `unsafe` constructors (the caller vouches for the pointer).
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use kvserve_sys as sys;
use std::ffi::c_void;
use std::marker::PhantomData;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    #[default]
    Cpu,
    /// A CUDA device ordinal.
    Cuda(i32),
}

impl Device {
    pub(crate) fn to_c(self) -> sys::kvs_device {
        match self {
            Device::Cpu => sys::kvs_device { kind: sys::KVS_DEVICE_CPU, ordinal: 0 },
            Device::Cuda(n) => sys::kvs_device { kind: sys::KVS_DEVICE_CUDA, ordinal: n },
        }
    }
}

/// Whether the linked library has the CUDA backend, and the devices it sees.
pub fn cuda_backend_built() -> bool {
    // SAFETY: no arguments; never fails.
    unsafe { sys::kvs_cuda_backend_built() != 0 }
}
pub fn cuda_device_count() -> i32 {
    // SAFETY: as above.
    unsafe { sys::kvs_cuda_device_count() }
}

/// A CUDA stream handle (`cudaStream_t`); the default is the legacy default
/// stream, which is also what the CPU backend (synchronous) ignores.
#[derive(Debug, Default)]
pub struct Stream {
    raw: *mut c_void,
}

impl Stream {
    /// # Safety
    /// `raw` is a live `cudaStream_t` (or null) for as long as the Stream is used.
    pub unsafe fn from_raw(raw: *mut c_void) -> Stream {
        Stream { raw }
    }
    pub fn as_raw(&self) -> *mut c_void {
        self.raw
    }
}

// A stream handle may be used from any thread (CUDA streams are thread-safe);
// the handle itself is only an address.
unsafe impl Send for Stream {}
unsafe impl Sync for Stream {}

/// Scratch memory a plan needs (`workspace_size()` bytes, 256-byte aligned),
/// owned by the caller: a plan never allocates.
pub struct Workspace {
    _host: Vec<u8>,
    ptr: *mut c_void,
    bytes: usize,
    /// Where the memory lives (None: empty, usable anywhere).
    device: Option<Device>,
}

impl Workspace {
    /// Host memory for a CPU plan.
    pub fn host(bytes: usize) -> Workspace {
        let mut buf = vec![0u8; bytes + 256];
        let offset = buf.as_ptr().align_offset(256);
        // SAFETY: offset < 256 <= buf.len() - bytes.
        let ptr = unsafe { buf.as_mut_ptr().add(offset) } as *mut c_void;
        Workspace { _host: buf, ptr, bytes, device: Some(Device::Cpu) }
    }
    /// A workspace that is empty (for plans whose workspace_size() is 0).
    pub fn none() -> Workspace {
        Workspace { _host: Vec::new(), ptr: std::ptr::null_mut(), bytes: 0, device: None }
    }
    /// # Safety
    /// `ptr` points at `bytes` bytes of memory on `device`, 256-byte aligned,
    /// alive and unused by anything else while runs use it.
    pub unsafe fn from_device_ptr(ptr: *mut c_void, bytes: usize, device: Device) -> Workspace {
        Workspace { _host: Vec::new(), ptr, bytes, device: Some(device) }
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// The pointer and size for a plan on `device`: memory elsewhere (a host
    /// workspace for a CUDA plan) is refused, as the library cannot tell.
    pub(crate) fn raw_for(&mut self, device: Device) -> Result<(*mut c_void, usize)> {
        match self.device {
            Some(d) if d != device => Err(Error::argument(
                "workspace",
                format!("memory on the plan's device ({device:?})"),
                format!("memory on {d:?}"),
            )),
            _ => Ok((self.ptr, self.bytes)),
        }
    }
}

// Owned memory or a device address handed over by the caller.
unsafe impl Send for Workspace {}

fn contiguous_strides<const N: usize>(shape: &[usize; N]) -> [isize; N] {
    let mut strides = [0isize; N];
    let mut stride = 1isize;
    for i in (0..N).rev() {
        strides[i] = stride;
        stride *= shape[i] as isize;
    }
    strides
}

/// The elements a view with these shape and strides reaches past its first:
/// None for a negative stride or an overflow.
fn span(shape: &[usize], strides: &[isize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    let mut last = 0usize;
    for (&n, &s) in shape.iter().zip(strides) {
        let s = usize::try_from(s).ok()?;
        last = last.checked_add((n - 1).checked_mul(s)?)?;
    }
    last.checked_add(1)
}

fn raw_view<const N: usize>(
    data: *mut c_void,
    dtype: DType,
    shape: [usize; N],
    strides: [isize; N],
    device: Device,
) -> sys::kvs_tensor {
    assert!(N <= sys::KVS_MAX_RANK, "kvserve views have rank <= {}", sys::KVS_MAX_RANK);
    let mut t =
        sys::kvs_tensor { data, dtype: dtype as i32, rank: N as i32, device: device.to_c(), ..Default::default() };
    for i in 0..N {
        t.shape[i] = shape[i] as i64;
        t.strides[i] = strides[i] as i64;
    }
    t
}

/// A host view over `len` elements: the shape and strides must stay inside.
fn host_view<const N: usize>(
    data: *mut c_void,
    len: usize,
    dtype: DType,
    shape: [usize; N],
    strides: [isize; N],
) -> Result<sys::kvs_tensor> {
    match span(&shape, &strides) {
        Some(n) if n <= len => Ok(raw_view(data, dtype, shape, strides, Device::Cpu)),
        _ => Err(Error::argument(
            "view",
            format!("shape {shape:?} with strides {strides:?} inside its slice"),
            format!("a slice of {len} elements"),
        )),
    }
}

macro_rules! views {
    ($($(#[$m:meta])* $name:ident, $borrow:ty, $ptr:ident;)*) => {$(
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name<'a, T: Element, const N: usize> {
            raw: sys::kvs_tensor,
            _borrow: PhantomData<$borrow>,
        }

        impl<'a, T: Element, const N: usize> $name<'a, T, N> {
            /// A row-major contiguous view of `data` (its length must be at least the shape's product).
            pub fn new(data: $borrow, shape: [usize; N]) -> Result<Self> {
                Self::strided(data, shape, contiguous_strides(&shape))
            }
            /// A view with strides in elements (0 broadcasts; negative strides are refused).
            pub fn strided(data: $borrow, shape: [usize; N], strides: [isize; N]) -> Result<Self> {
                let raw = host_view(data.$ptr() as *mut c_void, data.len(), T::DTYPE, shape, strides)?;
                Ok($name { raw, _borrow: PhantomData })
            }
            /// A view of device memory.
            ///
            /// # Safety
            /// `ptr` points at memory of `device` holding every element the
            /// shape and strides (contiguous when None) reach, valid for `'a`
            /// and, for a mutable view, not accessed otherwise meanwhile.
            pub unsafe fn from_device_ptr(
                ptr: *const T,
                shape: [usize; N],
                strides: Option<[isize; N]>,
                device: Device,
            ) -> Self {
                let strides = strides.unwrap_or_else(|| contiguous_strides(&shape));
                $name { raw: raw_view(ptr as *mut c_void, T::DTYPE, shape, strides, device), _borrow: PhantomData }
            }
            pub fn shape(&self) -> [usize; N] {
                std::array::from_fn(|i| self.raw.shape[i] as usize)
            }
            pub fn strides(&self) -> [isize; N] {
                std::array::from_fn(|i| self.raw.strides[i] as isize)
            }
        }
    )*};
}

views! {
    /// A read-only typed view of rank N.
    TensorRef, &'a [T], as_ptr;
    /// A writable typed view of rank N.
    TensorMut, &'a mut [T], as_mut_ptr;
}

// A shared view can be copied; a mutable one cannot (it is an exclusive borrow).
impl<T: Element, const N: usize> Clone for TensorRef<'_, T, N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element, const N: usize> Copy for TensorRef<'_, T, N> {}

/// A read-only view whose element type and rank are checked by the plan at
/// run time (fields whose dtype the descriptor chooses). Made from a TensorRef.
#[derive(Clone, Copy, Debug)]
pub struct AnyRef<'a> {
    raw: sys::kvs_tensor,
    _borrow: PhantomData<&'a [u8]>,
}
/// The writable counterpart of AnyRef, made from a TensorMut.
#[derive(Debug)]
pub struct AnyMut<'a> {
    raw: sys::kvs_tensor,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a, T: Element, const N: usize> From<TensorRef<'a, T, N>> for AnyRef<'a> {
    fn from(t: TensorRef<'a, T, N>) -> Self {
        AnyRef { raw: t.raw, _borrow: PhantomData }
    }
}
impl<'a, T: Element, const N: usize> From<TensorMut<'a, T, N>> for AnyMut<'a> {
    fn from(t: TensorMut<'a, T, N>) -> Self {
        AnyMut { raw: t.raw, _borrow: PhantomData }
    }
}

// Views point at memory the borrow owns (host) or that the caller vouched for (device).
unsafe impl<T: Element + Sync, const N: usize> Send for TensorRef<'_, T, N> {}
unsafe impl<T: Element + Sync, const N: usize> Sync for TensorRef<'_, T, N> {}
unsafe impl<T: Element + Send, const N: usize> Send for TensorMut<'_, T, N> {}
unsafe impl Send for AnyRef<'_> {}
unsafe impl Sync for AnyRef<'_> {}
unsafe impl Send for AnyMut<'_> {}

/// A Rust value as its C ABI struct (descriptors, arguments and their parts).
pub trait ToC {
    type C;
    fn to_c(&self) -> Self::C;
}

macro_rules! tensor_to_c {
    ($($t:ty),*) => {$(
        impl ToC for $t {
            type C = sys::kvs_tensor;
            fn to_c(&self) -> sys::kvs_tensor { self.raw }
        }
    )*};
}
tensor_to_c!(AnyRef<'_>, AnyMut<'_>);
impl<T: Element, const N: usize> ToC for TensorRef<'_, T, N> {
    type C = sys::kvs_tensor;
    fn to_c(&self) -> sys::kvs_tensor {
        self.raw
    }
}
impl<T: Element, const N: usize> ToC for TensorMut<'_, T, N> {
    type C = sys::kvs_tensor;
    fn to_c(&self) -> sys::kvs_tensor {
        self.raw
    }
}
/// An optional argument: None is the C ABI's "not given" view.
impl<V: ToC<C = sys::kvs_tensor>> ToC for Option<V> {
    type C = sys::kvs_tensor;
    fn to_c(&self) -> sys::kvs_tensor {
        self.as_ref().map_or_else(sys::kvs_tensor::default, ToC::to_c)
    }
}

macro_rules! plain_to_c {
    ($($t:ty),*) => {$(
        impl ToC for $t {
            type C = $t;
            fn to_c(&self) -> $t { *self }
        }
    )*};
}
plain_to_c!(i32, i64, u64, f32);
impl ToC for bool {
    type C = i32;
    fn to_c(&self) -> i32 {
        *self as i32
    }
}
impl ToC for DType {
    type C = sys::kvs_dtype;
    fn to_c(&self) -> sys::kvs_dtype {
        *self as i32
    }
}
