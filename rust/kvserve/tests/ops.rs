//! Every plan through the Rust API on the CPU backend, against a small
//! reference written here, on fresh random inputs with poisoned outputs.
mod common;
use common::*;
use kvserve::*;

const PAGE: usize = 4;
const HQ: usize = 4; // query heads
const HK: usize = 2; // KV heads (GQA group of 2)
const D: usize = 16;

/// A paged cache of `pages` pages (NHD, f32) and a random page table for `lens`.
struct Paged {
    k: Vec<f32>,
    v: Vec<f32>,
    indptr: Vec<i32>,
    indices: Vec<i32>,
    last: Vec<i32>,
    pages: usize,
}

impl Paged {
    fn new(rng: &mut Rng, lens: &[usize]) -> Paged {
        let counts: Vec<usize> = lens.iter().map(|l| l.div_ceil(PAGE)).collect();
        let pages = counts.iter().sum::<usize>() + 2; // two pages nobody owns
        let ids = rng.perm(pages);
        let mut indptr = vec![0i32];
        for c in &counts {
            indptr.push(indptr.last().unwrap() + *c as i32);
        }
        let last = lens.iter().map(|&l| if l == 0 { 0 } else { (l - 1) % PAGE + 1 } as i32).collect();
        let n = pages * PAGE * HK * D;
        Paged { k: rng.vec(n), v: rng.vec(n), indptr, indices: ids[..counts.iter().sum()].to_vec(), last, pages }
    }
    fn desc(&self) -> PagedKvDesc {
        PagedKvDesc { page_size: PAGE as i32, num_pages: self.pages as i64, num_kv_heads: HK as i32, head_dim: D as i32,
                      dtype: DType::F32, ..Default::default() }
    }
    fn view(&self) -> PagedKv<'_> {
        let shape = [self.pages, PAGE, HK, D];
        PagedKv {
            k_pages: TensorRef::new(&self.k, shape).unwrap().into(),
            v_pages: TensorRef::new(&self.v, shape).unwrap().into(),
            indptr: TensorRef::new(&self.indptr, [self.indptr.len()]).unwrap(),
            indices: TensorRef::new(&self.indices, [self.indices.len()]).unwrap(),
            last_page_len: TensorRef::new(&self.last, [self.last.len()]).unwrap(),
        }
    }
    fn row((page, slot): (usize, usize), h: usize) -> std::ops::Range<usize> {
        let start = ((page * PAGE + slot) * HK + h) * D;
        start..start + D
    }
    /// Keys and values of request b, KV head h.
    fn kv(&self, b: usize, h: usize) -> (Vec<&[f32]>, Vec<&[f32]>) {
        paged_slots(&self.indptr, &self.indices, &self.last, PAGE, b)
            .into_iter()
            .map(|s| (&self.k[Self::row(s, h)], &self.v[Self::row(s, h)]))
            .unzip()
    }
}

fn scale() -> f64 {
    1.0 / (D as f64).sqrt()
}

/// Reference decode/prefill rows: for query token i of request b (q_len
/// queries against its keys), causal, over `keys(b, h)`.
fn reference_rows(
    q: &[f32],
    q_lens: &[usize],
    kv: impl Fn(usize, usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>),
) -> (Vec<f64>, Vec<f64>) {
    let (mut out, mut lse) = (vec![], vec![]);
    let mut row = 0;
    for (b, &q_len) in q_lens.iter().enumerate() {
        for i in 0..q_len {
            for h in 0..HQ {
                let (keys, vals) = kv(b, h / (HQ / HK));
                let visible = (i + keys.len() + 1).saturating_sub(q_len).min(keys.len());
                let k: Vec<&[f32]> = keys[..visible].iter().map(Vec::as_slice).collect();
                let v: Vec<&[f32]> = vals[..visible].iter().map(Vec::as_slice).collect();
                let (o, l) = attend(&q[(row * HQ + h) * D..][..D], &k, &v, scale());
                out.extend(if k.is_empty() { vec![0.0; D] } else { o }); // a row that sees no key writes 0
                lse.push(l);
            }
            row += 1;
        }
    }
    (out, lse)
}

fn owned(p: &Paged) -> impl Fn(usize, usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) + '_ {
    move |b, h| {
        let (k, v) = p.kv(b, h);
        (k.iter().map(|r| r.to_vec()).collect(), v.iter().map(|r| r.to_vec()).collect())
    }
}

#[test]
fn batch_paged_decode() {
    let mut rng = Rng::new();
    let lens = [5, 0, 8, 1];
    let p = Paged::new(&mut rng, &lens);
    let b = lens.len();
    let desc = BatchPagedDecodeDesc { max_batch: 8, num_qo_heads: HQ as i32, kv: p.desc(), q_dtype: DType::F32,
                                      ..Default::default() };
    let mut plan = BatchPagedDecodePlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(b * HQ * D);
    let (mut out, mut lse) = (poisoned(b * HQ * D), poisoned(b * HQ));
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &p.indptr, &p.last).unwrap();
    plan.run(&Stream::default(), &mut ws, BatchPagedDecodeArgs {
        q: TensorRef::new(&q, [b, HQ, D]).unwrap().into(),
        kv: p.view(),
        out: TensorMut::new(&mut out, [b, HQ, D]).unwrap().into(),
        lse: Some(TensorMut::new(&mut lse, [b, HQ]).unwrap()),
    }).unwrap();
    let (want, want_lse) = reference_rows(&q, &[1; 4], owned(&p));
    assert_close(&out, &want, 1e-5, "out");
    assert_close(&lse, &want_lse, 1e-5, "lse");
}

#[test]
fn batch_paged_prefill() {
    let mut rng = Rng::new();
    let lens = [6, 3, 9];
    let q_lens = [2usize, 3, 4];
    let p = Paged::new(&mut rng, &lens);
    let total: usize = q_lens.iter().sum();
    let qo: Vec<i32> = std::iter::once(0).chain(q_lens.iter().scan(0, |s, &n| { *s += n as i32; Some(*s) })).collect();
    let desc = BatchPagedPrefillDesc { max_batch: 4, num_qo_heads: HQ as i32, kv: p.desc(), q_dtype: DType::F32,
                                       causal: true, ..Default::default() };
    let mut plan = BatchPagedPrefillPlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(total * HQ * D);
    let mut out = poisoned(total * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &qo, &p.indptr, &p.last).unwrap();
    plan.run(&Stream::default(), &mut ws, BatchPagedPrefillArgs {
        q: TensorRef::new(&q, [total, HQ, D]).unwrap().into(),
        qo_indptr: TensorRef::new(&qo, [4]).unwrap(),
        kv: p.view(),
        out: TensorMut::new(&mut out, [total, HQ, D]).unwrap().into(),
        lse: None,
    }).unwrap();
    assert_close(&out, &reference_rows(&q, &q_lens, owned(&p)).0, 1e-5, "out");
}

/// Contiguous K/V of `n` tokens [n, HK, D] and its rows for reference_rows.
fn contiguous_kv(k: &[f32], v: &[f32], range: std::ops::Range<usize>, h: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    range.map(|t| (k[(t * HK + h) * D..][..D].to_vec(), v[(t * HK + h) * D..][..D].to_vec())).unzip()
}

#[test]
fn single_prefill_and_ragged_prefill() {
    let mut rng = Rng::new();
    let (lq, lkv) = (3, 5);
    let (q, k, v) = (rng.vec(lq * HQ * D), rng.vec(lkv * HK * D), rng.vec(lkv * HK * D));
    let desc = SinglePrefillDesc { num_qo_heads: HQ as i32, num_kv_heads: HK as i32, head_dim: D as i32,
                                   dtype: DType::F32, causal: true, ..Default::default() };
    let plan = SinglePrefillPlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(lq * HQ * D);
    plan.run(&Stream::default(), &mut plan.host_workspace(), SinglePrefillArgs {
        q: TensorRef::new(&q, [lq, HQ, D]).unwrap().into(),
        k: TensorRef::new(&k, [lkv, HK, D]).unwrap().into(),
        v: TensorRef::new(&v, [lkv, HK, D]).unwrap().into(),
        out: TensorMut::new(&mut out, [lq, HQ, D]).unwrap().into(),
        lse: None,
    }).unwrap();
    assert_close(&out, &reference_rows(&q, &[lq], |_, h| contiguous_kv(&k, &v, 0..lkv, h)).0, 1e-5, "single");

    // Two requests packed: (q 1, kv 2) and (q 2, kv 3), sharing the K/V rows above.
    let (qo, kvp) = ([0, 1, 3], [0, 2, 5]);
    let desc = BatchRaggedPrefillDesc { max_batch: 2, num_qo_heads: HQ as i32, num_kv_heads: HK as i32,
                                        head_dim: D as i32, dtype: DType::F32, causal: true, ..Default::default() };
    let mut plan = BatchRaggedPrefillPlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(lq * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &qo, &kvp).unwrap();
    plan.run(&Stream::default(), &mut ws, BatchRaggedPrefillArgs {
        q: TensorRef::new(&q, [lq, HQ, D]).unwrap().into(),
        k: TensorRef::new(&k, [lkv, HK, D]).unwrap().into(),
        v: TensorRef::new(&v, [lkv, HK, D]).unwrap().into(),
        qo_indptr: TensorRef::new(&qo, [3]).unwrap(),
        kv_indptr: TensorRef::new(&kvp, [3]).unwrap(),
        out: TensorMut::new(&mut out, [lq, HQ, D]).unwrap().into(),
        lse: None,
    }).unwrap();
    let want = reference_rows(&q, &[1, 2], |b, h| contiguous_kv(&k, &v, kvp[b] as usize..kvp[b + 1] as usize, h)).0;
    assert_close(&out, &want, 1e-5, "ragged");
}

#[test]
fn single_decode() {
    let mut rng = Rng::new();
    let (b, l) = (2, 6);
    let (q, k, v) = (rng.vec(b * HQ * D), rng.vec(b * HK * l * D), rng.vec(b * HK * l * D));
    let kv_len = [6, 3];
    let desc = SingleDecodeDesc { max_batch: 2, num_qo_heads: HQ as i32, num_kv_heads: HK as i32, head_dim: D as i32,
                                  dtype: DType::F32, ..Default::default() };
    let plan = SingleDecodePlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(b * HQ * D);
    plan.run(&Stream::default(), &mut plan.host_workspace(), SingleDecodeArgs {
        q: TensorRef::new(&q, [b, HQ, D]).unwrap().into(),
        k: TensorRef::new(&k, [b, HK, l, D]).unwrap().into(),
        v: TensorRef::new(&v, [b, HK, l, D]).unwrap().into(),
        kv_len: Some(TensorRef::new(&kv_len, [2]).unwrap()),
        out: TensorMut::new(&mut out, [b, HQ, D]).unwrap().into(),
        lse: None,
    }).unwrap();
    let row = |x: &[f32], r: usize, h: usize, t: usize| x[((r * HK + h) * l + t) * D..][..D].to_vec();
    let want = reference_rows(&q, &[1, 1], |r, h| {
        (0..kv_len[r] as usize).map(|t| (row(&k, r, h, t), row(&v, r, h, t))).unzip()
    }).0;
    assert_close(&out, &want, 1e-5, "out");
}

#[test]
fn cascade_attention_equals_decode_over_prefix_and_suffix() {
    let mut rng = Rng::new();
    // Pages: group prefix (2 full pages) then each of 2 requests' suffix.
    let p = Paged::new(&mut rng, &[8, 3, 5]);
    let pre = &p.indices[0..2];
    let (s0, s1) = (&p.indices[2..3], &p.indices[3..5]);
    let prefix_indptr = [0, 2];
    let prefix_last = [PAGE as i32];
    let suffix_indices: Vec<i32> = s0.iter().chain(s1).copied().collect();
    let (suffix_indptr, suffix_last) = ([0, 1, 3], [p.last[1], p.last[2]]);
    let group_indptr = [0, 2];
    let desc = CascadeAttentionDesc { max_batch: 2, max_groups: 1, num_qo_heads: HQ as i32, kv: p.desc(),
                                      q_dtype: DType::F32, ..Default::default() };
    let mut plan = CascadeAttentionPlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(2 * HQ * D);
    let mut out = poisoned(2 * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &CascadeLengths {
        group_indptr: &group_indptr, prefix_indptr: &prefix_indptr, prefix_last_page_len: &prefix_last,
        suffix_indptr: &suffix_indptr, suffix_last_page_len: &suffix_last,
    }).unwrap();
    let shape = [p.pages, PAGE, HK, D];
    plan.run(&Stream::default(), &mut ws, CascadeAttentionArgs {
        q: TensorRef::new(&q, [2, HQ, D]).unwrap().into(),
        group_indptr: TensorRef::new(&group_indptr, [2]).unwrap(),
        prefix: PagedKv {
            k_pages: TensorRef::new(&p.k, shape).unwrap().into(),
            v_pages: TensorRef::new(&p.v, shape).unwrap().into(),
            indptr: TensorRef::new(&prefix_indptr, [2]).unwrap(),
            indices: TensorRef::new(pre, [2]).unwrap(),
            last_page_len: TensorRef::new(&prefix_last, [1]).unwrap(),
        },
        suffix: PagedKv {
            k_pages: TensorRef::new(&p.k, shape).unwrap().into(),
            v_pages: TensorRef::new(&p.v, shape).unwrap().into(),
            indptr: TensorRef::new(&suffix_indptr, [3]).unwrap(),
            indices: TensorRef::new(&suffix_indices, [3]).unwrap(),
            last_page_len: TensorRef::new(&suffix_last, [2]).unwrap(),
        },
        out: TensorMut::new(&mut out, [2, HQ, D]).unwrap().into(),
        lse: None,
    }).unwrap();
    // Request r sees the prefix (request 0 of p) and then its own pages (request r + 1).
    let want = reference_rows(&q, &[1, 1], |r, h| {
        let (mut k, mut v) = owned(&p)(0, h);
        let (k2, v2) = owned(&p)(r + 1, h);
        k.extend(k2);
        v.extend(v2);
        (k, v)
    }).0;
    assert_close(&out, &want, 1e-5, "out");
}

fn merge_reference(states: &[(&[f32], f32)]) -> (Vec<f64>, f64) {
    let m = states.iter().map(|s| s.1 as f64).fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = states.iter().map(|s| (s.1 as f64 - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let out = (0..states[0].0.len()).map(|d| states.iter().zip(&w).map(|(s, w)| w * s.0[d] as f64).sum::<f64>() / total);
    (out.collect(), m + total.ln())
}

#[test]
fn merge_state_and_merge_states() {
    let mut rng = Rng::new();
    let (t, h, n) = (3, 2, 3);
    let (va, vb) = (rng.vec(t * h * D), rng.vec(t * h * D));
    let (la, lb) = (rng.vec(t * h), rng.vec(t * h));
    let plan = MergeStatePlan::select(&MergeStateDesc { num_heads: h as i32, head_dim: D as i32, dtype: DType::F32 },
                                      Device::Cpu).unwrap();
    let (mut out, mut lse) = (poisoned(t * h * D), poisoned(t * h));
    plan.run(&Stream::default(), &mut Workspace::none(), MergeStateArgs {
        v_a: TensorRef::new(&va, [t, h, D]).unwrap().into(),
        lse_a: TensorRef::new(&la, [t, h]).unwrap(),
        v_b: TensorRef::new(&vb, [t, h, D]).unwrap().into(),
        lse_b: TensorRef::new(&lb, [t, h]).unwrap(),
        v_out: TensorMut::new(&mut out, [t, h, D]).unwrap().into(),
        lse_out: Some(TensorMut::new(&mut lse, [t, h]).unwrap()),
    }).unwrap();
    let (mut want, mut want_lse) = (vec![], vec![]);
    for r in 0..t * h {
        let (o, l) = merge_reference(&[(&va[r * D..][..D], la[r]), (&vb[r * D..][..D], lb[r])]);
        want.extend(o);
        want_lse.push(l);
    }
    assert_close(&out, &want, 1e-5, "merge_state out");
    assert_close(&lse, &want_lse, 1e-5, "merge_state lse");

    let (v, l) = (rng.vec(t * n * h * D), rng.vec(t * n * h));
    let plan = MergeStatesPlan::select(&MergeStatesDesc { num_heads: h as i32, head_dim: D as i32, dtype: DType::F32 },
                                       Device::Cpu).unwrap();
    let mut out = poisoned(t * h * D);
    plan.run(&Stream::default(), &mut Workspace::none(), MergeStatesArgs {
        v: TensorRef::new(&v, [t, n, h, D]).unwrap().into(),
        lse: TensorRef::new(&l, [t, n, h]).unwrap(),
        v_out: TensorMut::new(&mut out, [t, h, D]).unwrap().into(),
        lse_out: None,
    }).unwrap();
    let mut want = vec![];
    for tok in 0..t {
        for head in 0..h {
            let states: Vec<(&[f32], f32)> =
                (0..n).map(|i| (&v[((tok * n + i) * h + head) * D..][..D], l[(tok * n + i) * h + head])).collect();
            want.extend(merge_reference(&states).0);
        }
    }
    assert_close(&out, &want, 1e-5, "merge_states");
}
