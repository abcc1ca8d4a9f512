//! What the op tests share: a small PRNG, poisoned outputs, closeness checks
//! and the plain attention every attention op is compared against.
#![allow(dead_code)]
use kvserve::{AnyMut, AnyRef, Element, Op, Plan, Stream, TensorMut, TensorRef};

/// One run of a CPU plan with a fresh host workspace.
pub fn run_cpu<O: Op>(plan: &Plan<O>, args: O::Args<'_>) -> kvserve::Result<()> {
    plan.run(&Stream::default(), &mut plan.host_workspace(), args)
}

/// Host views of test buffers (a bad shape is a bug in the test: it panics).
pub fn view<T: Element, const N: usize>(data: &[T], shape: [usize; N]) -> TensorRef<'_, T, N> {
    TensorRef::new(data, shape).unwrap()
}
pub fn view_mut<T: Element, const N: usize>(data: &mut [T], shape: [usize; N]) -> TensorMut<'_, T, N> {
    TensorMut::new(data, shape).unwrap()
}
pub fn any<T: Element, const N: usize>(data: &[T], shape: [usize; N]) -> AnyRef<'_> {
    view(data, shape).into()
}
pub fn any_mut<T: Element, const N: usize>(data: &mut [T], shape: [usize; N]) -> AnyMut<'_> {
    view_mut(data, shape).into()
}

/// xorshift64*: fresh inputs per run from a seed printed on failure.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("KVSERVE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("KVSERVE_TEST_SEED={seed}");
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }
    /// Rows of a probability distribution, all entries positive.
    pub fn probs(&mut self, rows: usize, vocab: usize) -> Vec<f32> {
        let mut p: Vec<f32> = (0..rows * vocab).map(|_| self.unit() + 1.5).collect();
        for row in p.chunks_mut(vocab) {
            let s: f32 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
        }
        p
    }
    /// A permutation of 0..n.
    pub fn perm(&mut self, n: usize) -> Vec<i32> {
        let mut v: Vec<i32> = (0..n as i32).collect();
        for i in (1..n).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

/// An output buffer of NaNs, so an unwritten element fails the comparison.
pub fn poisoned(n: usize) -> Vec<f32> {
    vec![f32::NAN; n]
}

pub fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert!(want.iter().any(|w| w.abs() > 1e-3), "{what}: the expectation is all zero; the test would prove nothing");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (*g as f64 - w).abs() <= tol * (1.0 + w.abs()) || (w.is_infinite() && *g as f64 == *w);
        assert!(ok, "{what}[{i}]: got {g}, want {w}");
    }
}

/// Softmax attention of one query over keys/values (rows), in f64; (out, lse).
pub fn attend(q: &[f32], keys: &[&[f32]], vals: &[&[f32]], scale: f64) -> (Vec<f64>, f64) {
    let dv = vals.first().map_or(0, |v| v.len());
    if keys.is_empty() {
        return (vec![0.0; dv], f64::NEG_INFINITY);
    }
    let s: Vec<f64> =
        keys.iter().map(|k| scale * k.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()).collect();
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let out = (0..dv).map(|d| w.iter().zip(vals).map(|(w, v)| w * v[d] as f64).sum::<f64>() / total).collect();
    (out, m + total.ln())
}

/// Token positions of a paged request: (page id, slot) for each of its tokens.
pub fn paged_slots(indptr: &[i32], indices: &[i32], last: &[i32], page: usize, b: usize) -> Vec<(usize, usize)> {
    let pages = &indices[indptr[b] as usize..indptr[b + 1] as usize];
    let mut slots = vec![];
    for (i, &p) in pages.iter().enumerate() {
        let n = if i + 1 == pages.len() { last[b] as usize } else { page };
        slots.extend((0..n).map(|s| (p as usize, s)));
    }
    slots
}
