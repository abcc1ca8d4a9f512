//! Paged decode and sampling on cuda:0 through the Rust API, checked against
//! the same plans on the CPU backend (the C++ reference): decode to bf16
//! rounding, sampling token for token (the backends agree bit for bit).
//! Device memory comes from the CUDA runtime the library links, declared here.
//! Exits 0 when both match, 1 on a mismatch or error, 77 when there is no GPU.
use kvserve::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    if !cuda_backend_built() || cuda_device_count() == 0 {
        println!("skip: the linked kvserve has no CUDA backend or sees no GPU");
        return ExitCode::from(77);
    }
    match gpu::check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            println!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(kvserve_cuda))]
mod gpu {
    pub fn check() -> Result<bool, Box<dyn std::error::Error>> {
        Err("this build of the crate has no CUDA runtime to allocate device memory with".into())
    }
}

#[cfg(kvserve_cuda)]
mod gpu {
    use kvserve::*;
    use std::ffi::{c_char, c_void, CStr};

    /// Inputs from a fixed-seed xorshift, the same on both backends.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    extern "C" {
        fn cudaMalloc(ptr: *mut *mut c_void, bytes: usize) -> i32;
        fn cudaFree(ptr: *mut c_void) -> i32;
        fn cudaMemcpy(dst: *mut c_void, src: *const c_void, bytes: usize, kind: i32) -> i32;
        fn cudaDeviceSynchronize() -> i32;
        fn cudaGetErrorString(code: i32) -> *const c_char;
    }
    type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;
    const HOST_TO_DEVICE: i32 = 1;
    const DEVICE_TO_HOST: i32 = 2;

    fn cuda(code: i32, what: &str) -> Res<()> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: the runtime returns a static NUL-terminated string for any code.
        let text = unsafe { CStr::from_ptr(cudaGetErrorString(code)) }.to_string_lossy();
        Err(format!("{what}: {text}").into())
    }

    /// Device memory holding a copy of a host slice.
    struct DeviceBuf<T> {
        ptr: *mut T,
        len: usize,
    }
    impl<T: Element + Default> DeviceBuf<T> {
        fn from_host(host: &[T]) -> Res<Self> {
            let mut ptr = std::ptr::null_mut();
            let bytes = std::mem::size_of_val(host).max(1);
            // SAFETY: plain runtime calls with valid pointers and sizes.
            unsafe {
                cuda(cudaMalloc(&mut ptr, bytes), "cudaMalloc")?;
                cuda(
                    cudaMemcpy(ptr, host.as_ptr() as *const c_void, std::mem::size_of_val(host), HOST_TO_DEVICE),
                    "cudaMemcpy to the device",
                )?;
            }
            Ok(DeviceBuf { ptr: ptr as *mut T, len: host.len() })
        }
        fn to_host(&self) -> Res<Vec<T>> {
            let mut host = vec![T::default(); self.len];
            // SAFETY: self holds len elements.
            unsafe {
                cuda(
                    cudaMemcpy(
                        host.as_mut_ptr() as *mut c_void,
                        self.ptr as *const c_void,
                        self.len * std::mem::size_of::<T>(),
                        DEVICE_TO_HOST,
                    ),
                    "cudaMemcpy to the host",
                )?;
            }
            Ok(host)
        }
        fn view<const N: usize>(&self, shape: [usize; N]) -> TensorRef<'_, T, N> {
            assert_eq!(shape.iter().product::<usize>(), self.len);
            // SAFETY: self holds the shape's elements on cuda:0 and outlives the view.
            unsafe { TensorRef::from_device_ptr(self.ptr, shape, None, Device::Cuda(0)) }
        }
        fn view_mut<const N: usize>(&mut self, shape: [usize; N]) -> TensorMut<'_, T, N> {
            assert_eq!(shape.iter().product::<usize>(), self.len);
            // SAFETY: as above, and the &mut borrow makes the view exclusive.
            unsafe { TensorMut::from_device_ptr(self.ptr, shape, None, Device::Cuda(0)) }
        }
    }
    impl<T> Drop for DeviceBuf<T> {
        fn drop(&mut self) {
            // SAFETY: allocated by cudaMalloc.
            unsafe { cudaFree(self.ptr as *mut c_void) };
        }
    }

    fn device_workspace(bytes: usize) -> Res<(DeviceBuf<i32>, Workspace)> {
        let buf = DeviceBuf::from_host(&vec![0i32; bytes.div_ceil(4)])?;
        // SAFETY: cudaMalloc memory is 256-byte aligned; the buffer outlives the runs below.
        let ws = unsafe { Workspace::from_device_ptr(buf.ptr as *mut c_void, bytes, Device::Cuda(0)) };
        Ok((buf, ws))
    }

    pub fn check() -> Res<bool> {
        let decode_ok = decode()?;
        Ok(sampling()? && decode_ok)
    }

    fn decode() -> Res<bool> {
        let (page, hq, hk, d) = (16usize, 8usize, 2usize, 128usize);
        let lens = [1usize, 17, 300, 64];
        let b = lens.len();
        let mut indptr = vec![0i32];
        for l in lens {
            indptr.push(indptr.last().unwrap() + l.div_ceil(page) as i32);
        }
        let pages = *indptr.last().unwrap() as usize;
        let indices: Vec<i32> = (0..pages as i32).rev().collect();
        let last: Vec<i32> = lens.iter().map(|l| ((l - 1) % page + 1) as i32).collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut bf16 = |n: usize| -> Vec<BF16> { (0..n).map(|_| BF16::from_f32(rng.unit() * 2.0 - 1.0)).collect() };
        let (q, k, v) = (bf16(b * hq * d), bf16(pages * page * hk * d), bf16(pages * page * hk * d));
        let desc = BatchPagedDecodeDesc {
            max_batch: b as i32,
            num_qo_heads: hq as i32,
            kv: PagedKvDesc {
                page_size: page as i32,
                num_pages: pages as i64,
                num_kv_heads: hk as i32,
                head_dim: d as i32,
                dtype: DType::BF16,
                ..Default::default()
            },
            q_dtype: DType::BF16,
            ..Default::default()
        };
        let pool = [pages, page, hk, d];
        let stream = Stream::default();

        let mut cpu_plan = BatchPagedDecodePlan::select(&desc, Device::Cpu)?;
        let mut cpu_out = vec![BF16(0x7fc0); b * hq * d];
        let mut ws = cpu_plan.host_workspace();
        cpu_plan.prepare(&stream, &mut ws, &indptr, &last)?;
        cpu_plan.run(
            &stream,
            &mut ws,
            BatchPagedDecodeArgs {
                q: TensorRef::new(&q, [b, hq, d])?.into(),
                kv: PagedKv {
                    k_pages: TensorRef::new(&k, pool)?.into(),
                    v_pages: TensorRef::new(&v, pool)?.into(),
                    indptr: TensorRef::new(&indptr, [b + 1])?,
                    indices: TensorRef::new(&indices, [pages])?,
                    last_page_len: TensorRef::new(&last, [b])?,
                },
                out: TensorMut::new(&mut cpu_out, [b, hq, d])?.into(),
                lse: None,
            },
        )?;

        let mut plan = BatchPagedDecodePlan::select(&desc, Device::Cuda(0))?;
        println!("decode: {} ({:?})", plan.sku(), plan.precision());
        let (dq, dk, dv) = (DeviceBuf::from_host(&q)?, DeviceBuf::from_host(&k)?, DeviceBuf::from_host(&v)?);
        let (di, dx, dl) =
            (DeviceBuf::from_host(&indptr)?, DeviceBuf::from_host(&indices)?, DeviceBuf::from_host(&last)?);
        let mut dout = DeviceBuf::from_host(&vec![BF16(0x7fc0); b * hq * d])?;
        let (_ws_buf, mut ws) = device_workspace(plan.workspace_size())?;
        plan.prepare(&stream, &mut ws, &indptr, &last)?;
        plan.run(
            &stream,
            &mut ws,
            BatchPagedDecodeArgs {
                q: dq.view([b, hq, d]).into(),
                kv: PagedKv {
                    k_pages: dk.view(pool).into(),
                    v_pages: dv.view(pool).into(),
                    indptr: di.view([b + 1]),
                    indices: dx.view([pages]),
                    last_page_len: dl.view([b]),
                },
                out: dout.view_mut([b, hq, d]).into(),
                lse: None,
            },
        )?;
        // SAFETY: no arguments.
        cuda(unsafe { cudaDeviceSynchronize() }, "cudaDeviceSynchronize")?;
        let gpu_out = dout.to_host()?;
        let worst = cpu_out.iter().zip(&gpu_out).map(|(c, g)| (c.to_f32() - g.to_f32()).abs()).fold(0f32, f32::max);
        let finite = gpu_out.iter().all(|x| x.to_f32().is_finite());
        // Two bf16 roundings of values below 1 in magnitude: 2^-7 covers them.
        let ok = finite && worst <= 1.0 / 128.0;
        println!(
            "decode cuda vs cpu: max |diff| {worst:.2e} over {} values: {}",
            gpu_out.len(),
            if ok { "ok" } else { "MISMATCH" }
        );
        Ok(ok)
    }

    fn sampling() -> Res<bool> {
        let (b, vocab) = (16usize, 32000usize);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut probs: Vec<f32> = (0..b * vocab).map(|_| rng.unit().powi(8)).collect();
        for row in probs.chunks_mut(vocab) {
            let s: f32 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
        }
        let mut all_ok = true;
        for (name, filter) in [
            ("greedy", SamplingFilter::Greedy),
            ("top_p", SamplingFilter::TopP),
            ("top_k_top_p", SamplingFilter::TopKTopP),
        ] {
            let desc = SamplingDesc {
                vocab: vocab as i32,
                max_batch: b as i32,
                filter,
                top_k: 50,
                top_p: 0.9,
                ..Default::default()
            };
            let run = |device: Device,
                       input: TensorRef<'_, f32, 2>,
                       out: TensorMut<'_, i32, 1>,
                       ws: &mut Workspace|
             -> Result<String> {
                let plan = SamplingPlan::select(&desc, device)?;
                plan.run(
                    &Stream::default(),
                    ws,
                    SamplingArgs {
                        input,
                        out,
                        temperature: None,
                        top_k: None,
                        top_p: None,
                        min_p: None,
                        seed: 1234,
                        offset: 7,
                        seeds: None,
                        offsets: None,
                    },
                )?;
                Ok(plan.sku())
            };
            let mut cpu_tokens = vec![-7i32; b];
            let cpu_ws_size = SamplingPlan::select(&desc, Device::Cpu)?.workspace_size();
            run(
                Device::Cpu,
                TensorRef::new(&probs, [b, vocab])?,
                TensorMut::new(&mut cpu_tokens, [b])?,
                &mut Workspace::host(cpu_ws_size),
            )?;
            let dprobs = DeviceBuf::from_host(&probs)?;
            let mut dtokens = DeviceBuf::from_host(&vec![-7i32; b])?;
            let (_ws_buf, mut ws) = device_workspace(SamplingPlan::select(&desc, Device::Cuda(0))?.workspace_size())?;
            let sku = run(Device::Cuda(0), dprobs.view([b, vocab]), dtokens.view_mut([b]), &mut ws)?;
            // SAFETY: no arguments.
            cuda(unsafe { cudaDeviceSynchronize() }, "cudaDeviceSynchronize")?;
            let gpu_tokens = dtokens.to_host()?;
            let ok = gpu_tokens == cpu_tokens && cpu_tokens.iter().all(|t| (0..vocab as i32).contains(t));
            println!(
                "sampling {name} ({sku}): cuda {:?}... vs cpu {:?}...: {}",
                &gpu_tokens[..4],
                &cpu_tokens[..4],
                if ok { "ok" } else { "MISMATCH" }
            );
            all_ok &= ok;
        }
        Ok(all_ok)
    }
}
