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
        PagedKvDesc {
            page_size: PAGE as i32,
            num_pages: self.pages as i64,
            num_kv_heads: HK as i32,
            head_dim: D as i32,
            dtype: DType::F32,
            ..Default::default()
        }
    }
    fn view(&self) -> PagedKv<'_> {
        let shape = [self.pages, PAGE, HK, D];
        PagedKv {
            k_pages: any(&self.k, shape),
            v_pages: any(&self.v, shape),
            indptr: view(&self.indptr, [self.indptr.len()]),
            indices: view(&self.indices, [self.indices.len()]),
            last_page_len: view(&self.last, [self.last.len()]),
        }
    }
    /// The pools writable, for the append ops.
    fn view_mut(&mut self) -> PagedKvCacheMut<'_> {
        let shape = [self.pages, PAGE, HK, D];
        PagedKvCacheMut {
            k_pages: any_mut(&mut self.k, shape),
            v_pages: any_mut(&mut self.v, shape),
            indptr: view(&self.indptr, [self.indptr.len()]),
            indices: view(&self.indices, [self.indices.len()]),
            last_page_len: view(&self.last, [self.last.len()]),
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
    let desc = BatchPagedDecodeDesc {
        max_batch: 8,
        num_qo_heads: HQ as i32,
        kv: p.desc(),
        q_dtype: DType::F32,
        ..Default::default()
    };
    let mut plan = BatchPagedDecodePlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(b * HQ * D);
    let (mut out, mut lse) = (poisoned(b * HQ * D), poisoned(b * HQ));
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &p.indptr, &p.last).unwrap();
    plan.run(
        &Stream::default(),
        &mut ws,
        BatchPagedDecodeArgs {
            q: any(&q, [b, HQ, D]),
            kv: p.view(),
            out: any_mut(&mut out, [b, HQ, D]),
            lse: Some(view_mut(&mut lse, [b, HQ])),
        },
    )
    .unwrap();
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
    let qo: Vec<i32> = std::iter::once(0)
        .chain(q_lens.iter().scan(0, |s, &n| {
            *s += n as i32;
            Some(*s)
        }))
        .collect();
    let desc = BatchPagedPrefillDesc {
        max_batch: 4,
        num_qo_heads: HQ as i32,
        kv: p.desc(),
        q_dtype: DType::F32,
        causal: true,
        ..Default::default()
    };
    let mut plan = BatchPagedPrefillPlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(total * HQ * D);
    let mut out = poisoned(total * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &qo, &p.indptr, &p.last).unwrap();
    plan.run(
        &Stream::default(),
        &mut ws,
        BatchPagedPrefillArgs {
            q: any(&q, [total, HQ, D]),
            qo_indptr: view(&qo, [4]),
            kv: p.view(),
            out: any_mut(&mut out, [total, HQ, D]),
            lse: None,
        },
    )
    .unwrap();
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
    let desc = SinglePrefillDesc {
        num_qo_heads: HQ as i32,
        num_kv_heads: HK as i32,
        head_dim: D as i32,
        dtype: DType::F32,
        causal: true,
        ..Default::default()
    };
    let plan = SinglePrefillPlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(lq * HQ * D);
    run_cpu(
        &plan,
        SinglePrefillArgs {
            q: any(&q, [lq, HQ, D]),
            k: any(&k, [lkv, HK, D]),
            v: any(&v, [lkv, HK, D]),
            out: any_mut(&mut out, [lq, HQ, D]),
            lse: None,
        },
    )
    .unwrap();
    assert_close(&out, &reference_rows(&q, &[lq], |_, h| contiguous_kv(&k, &v, 0..lkv, h)).0, 1e-5, "single");

    // Two requests packed: (q 1, kv 2) and (q 2, kv 3), sharing the K/V rows above.
    let (qo, kvp) = ([0, 1, 3], [0, 2, 5]);
    let desc = BatchRaggedPrefillDesc {
        max_batch: 2,
        num_qo_heads: HQ as i32,
        num_kv_heads: HK as i32,
        head_dim: D as i32,
        dtype: DType::F32,
        causal: true,
        ..Default::default()
    };
    let mut plan = BatchRaggedPrefillPlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(lq * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(&Stream::default(), &mut ws, &qo, &kvp).unwrap();
    plan.run(
        &Stream::default(),
        &mut ws,
        BatchRaggedPrefillArgs {
            q: any(&q, [lq, HQ, D]),
            k: any(&k, [lkv, HK, D]),
            v: any(&v, [lkv, HK, D]),
            qo_indptr: view(&qo, [3]),
            kv_indptr: view(&kvp, [3]),
            out: any_mut(&mut out, [lq, HQ, D]),
            lse: None,
        },
    )
    .unwrap();
    let want = reference_rows(&q, &[1, 2], |b, h| contiguous_kv(&k, &v, kvp[b] as usize..kvp[b + 1] as usize, h)).0;
    assert_close(&out, &want, 1e-5, "ragged");
}

#[test]
fn single_decode() {
    let mut rng = Rng::new();
    let (b, l) = (2, 6);
    let (q, k, v) = (rng.vec(b * HQ * D), rng.vec(b * HK * l * D), rng.vec(b * HK * l * D));
    let kv_len = [6, 3];
    let desc = SingleDecodeDesc {
        max_batch: 2,
        num_qo_heads: HQ as i32,
        num_kv_heads: HK as i32,
        head_dim: D as i32,
        dtype: DType::F32,
        ..Default::default()
    };
    let plan = SingleDecodePlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(b * HQ * D);
    run_cpu(
        &plan,
        SingleDecodeArgs {
            q: any(&q, [b, HQ, D]),
            k: any(&k, [b, HK, l, D]),
            v: any(&v, [b, HK, l, D]),
            kv_len: Some(view(&kv_len, [2])),
            out: any_mut(&mut out, [b, HQ, D]),
            lse: None,
        },
    )
    .unwrap();
    let row = |x: &[f32], r: usize, h: usize, t: usize| x[((r * HK + h) * l + t) * D..][..D].to_vec();
    let want = reference_rows(&q, &[1, 1], |r, h| {
        (0..kv_len[r] as usize).map(|t| (row(&k, r, h, t), row(&v, r, h, t))).unzip()
    })
    .0;
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
    let desc = CascadeAttentionDesc {
        max_batch: 2,
        max_groups: 1,
        num_qo_heads: HQ as i32,
        kv: p.desc(),
        q_dtype: DType::F32,
        ..Default::default()
    };
    let mut plan = CascadeAttentionPlan::select(&desc, Device::Cpu).unwrap();
    let q = rng.vec(2 * HQ * D);
    let mut out = poisoned(2 * HQ * D);
    let mut ws = plan.host_workspace();
    plan.prepare(
        &Stream::default(),
        &mut ws,
        &CascadeLengths {
            group_indptr: &group_indptr,
            prefix_indptr: &prefix_indptr,
            prefix_last_page_len: &prefix_last,
            suffix_indptr: &suffix_indptr,
            suffix_last_page_len: &suffix_last,
        },
    )
    .unwrap();
    let shape = [p.pages, PAGE, HK, D];
    plan.run(
        &Stream::default(),
        &mut ws,
        CascadeAttentionArgs {
            q: any(&q, [2, HQ, D]),
            group_indptr: view(&group_indptr, [2]),
            prefix: PagedKv {
                k_pages: any(&p.k, shape),
                v_pages: any(&p.v, shape),
                indptr: view(&prefix_indptr, [2]),
                indices: view(pre, [2]),
                last_page_len: view(&prefix_last, [1]),
            },
            suffix: PagedKv {
                k_pages: any(&p.k, shape),
                v_pages: any(&p.v, shape),
                indptr: view(&suffix_indptr, [3]),
                indices: view(&suffix_indices, [3]),
                last_page_len: view(&suffix_last, [2]),
            },
            out: any_mut(&mut out, [2, HQ, D]),
            lse: None,
        },
    )
    .unwrap();
    // Request r sees the prefix (request 0 of p) and then its own pages (request r + 1).
    let want = reference_rows(&q, &[1, 1], |r, h| {
        let (mut k, mut v) = owned(&p)(0, h);
        let (k2, v2) = owned(&p)(r + 1, h);
        k.extend(k2);
        v.extend(v2);
        (k, v)
    })
    .0;
    assert_close(&out, &want, 1e-5, "out");
}

fn merge_reference(states: &[(&[f32], f32)]) -> (Vec<f64>, f64) {
    let m = states.iter().map(|s| s.1 as f64).fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = states.iter().map(|s| (s.1 as f64 - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let out =
        (0..states[0].0.len()).map(|d| states.iter().zip(&w).map(|(s, w)| w * s.0[d] as f64).sum::<f64>() / total);
    (out.collect(), m + total.ln())
}

#[test]
fn merge_state_and_merge_states() {
    let mut rng = Rng::new();
    let (t, h, n) = (3, 2, 3);
    let (va, vb) = (rng.vec(t * h * D), rng.vec(t * h * D));
    let (la, lb) = (rng.vec(t * h), rng.vec(t * h));
    let plan = MergeStatePlan::select(
        &MergeStateDesc { num_heads: h as i32, head_dim: D as i32, dtype: DType::F32 },
        Device::Cpu,
    )
    .unwrap();
    let (mut out, mut lse) = (poisoned(t * h * D), poisoned(t * h));
    run_cpu(
        &plan,
        MergeStateArgs {
            v_a: any(&va, [t, h, D]),
            lse_a: view(&la, [t, h]),
            v_b: any(&vb, [t, h, D]),
            lse_b: view(&lb, [t, h]),
            v_out: any_mut(&mut out, [t, h, D]),
            lse_out: Some(view_mut(&mut lse, [t, h])),
        },
    )
    .unwrap();
    let (mut want, mut want_lse) = (vec![], vec![]);
    for r in 0..t * h {
        let (o, l) = merge_reference(&[(&va[r * D..][..D], la[r]), (&vb[r * D..][..D], lb[r])]);
        want.extend(o);
        want_lse.push(l);
    }
    assert_close(&out, &want, 1e-5, "merge_state out");
    assert_close(&lse, &want_lse, 1e-5, "merge_state lse");

    let (v, l) = (rng.vec(t * n * h * D), rng.vec(t * n * h));
    let plan = MergeStatesPlan::select(
        &MergeStatesDesc { num_heads: h as i32, head_dim: D as i32, dtype: DType::F32 },
        Device::Cpu,
    )
    .unwrap();
    let mut out = poisoned(t * h * D);
    run_cpu(
        &plan,
        MergeStatesArgs {
            v: any(&v, [t, n, h, D]),
            lse: view(&l, [t, n, h]),
            v_out: any_mut(&mut out, [t, h, D]),
            lse_out: None,
        },
    )
    .unwrap();
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

#[test]
fn paged_kv_append_decode_and_ragged() {
    let mut rng = Rng::new();
    // The page tables already count the new tokens (the slots were reserved).
    let lens = [5, 4, 1];
    let mut p = Paged::new(&mut rng, &lens);
    let (k0, v0) = (p.k.clone(), p.v.clone());
    let (rows_k, rows_v) = (rng.vec(3 * HK * D), rng.vec(3 * HK * D));
    let desc = PagedKvAppendDesc { kv: p.desc(), dtype: DType::F32, mode: AppendMode::Decode };
    let plan = PagedKvAppendPlan::select(&desc, Device::Cpu).unwrap();
    run_cpu(
        &plan,
        PagedKvAppendArgs {
            k: any(&rows_k, [3, HK, D]),
            v: any(&rows_v, [3, HK, D]),
            batch_indices: None,
            positions: None,
            kv: p.view_mut(),
        },
    )
    .unwrap();
    let (mut want_k, mut want_v) = (k0, v0);
    for b in 0..3 {
        let slot = *paged_slots(&p.indptr, &p.indices, &p.last, PAGE, b).last().unwrap();
        for h in 0..HK {
            want_k[Paged::row(slot, h)].copy_from_slice(&rows_k[(b * HK + h) * D..][..D]);
            want_v[Paged::row(slot, h)].copy_from_slice(&rows_v[(b * HK + h) * D..][..D]);
        }
    }
    assert_eq!(p.k, want_k, "decode append: k pool");
    assert_eq!(p.v, want_v, "decode append: v pool");

    // Ragged: two rows into request 0 at positions 0 and 3.
    let (batch, pos) = ([0, 0], [0, 3]);
    let plan = PagedKvAppendPlan::select(&PagedKvAppendDesc { mode: AppendMode::Ragged, ..desc }, Device::Cpu).unwrap();
    run_cpu(
        &plan,
        PagedKvAppendArgs {
            k: any(&rows_k[..2 * HK * D], [2, HK, D]),
            v: any(&rows_v[..2 * HK * D], [2, HK, D]),
            batch_indices: Some(view(&batch, [2])),
            positions: Some(view(&pos, [2])),
            kv: p.view_mut(),
        },
    )
    .unwrap();
    let slots = paged_slots(&p.indptr, &p.indices, &p.last, PAGE, 0);
    for (i, &position) in pos.iter().enumerate() {
        for h in 0..HK {
            want_k[Paged::row(slots[position as usize], h)].copy_from_slice(&rows_k[(i * HK + h) * D..][..D]);
        }
    }
    assert_eq!(p.k, want_k, "ragged append: k pool");
}

#[test]
fn paged_mla_append_and_kv_cache_append() {
    let mut rng = Rng::new();
    let (page, pages, ckv_dim, kpe_dim) = (2usize, 3usize, 32usize, 16usize);
    let (indptr, indices, last) = ([0, 2], [2, 0], [2]); // request 0: pages 2 then 0, 4 tokens
    let (ckv, kpe) = (rng.vec(2 * ckv_dim), rng.vec(2 * kpe_dim));
    let (mut ckv_pool, mut kpe_pool) = (rng.vec(pages * page * ckv_dim), rng.vec(pages * page * kpe_dim));
    let (mut want_ckv, mut want_kpe) = (ckv_pool.clone(), kpe_pool.clone());
    let (batch, pos) = ([0, 0], [1, 2]); // page 2 slot 1, page 0 slot 0
    let desc = PagedMlaDesc {
        page_size: page as i32,
        num_pages: pages as i64,
        ckv_dim: ckv_dim as i32,
        kpe_dim: kpe_dim as i32,
        dtype: DType::F32,
    };
    let plan = PagedMlaAppendPlan::select(&desc, Device::Cpu).unwrap();
    run_cpu(
        &plan,
        PagedMlaAppendArgs {
            ckv: any(&ckv, [2, ckv_dim]),
            kpe: any(&kpe, [2, kpe_dim]),
            batch_indices: view(&batch, [2]),
            positions: view(&pos, [2]),
            cache: PagedMlaCacheMut {
                ckv_pages: any_mut(&mut ckv_pool, [pages, page, ckv_dim]),
                kpe_pages: any_mut(&mut kpe_pool, [pages, page, kpe_dim]),
                indptr: view(&indptr, [2]),
                indices: view(&indices, [2]),
                last_page_len: view(&last, [1]),
            },
        },
    )
    .unwrap();
    for (i, slot) in [(2 * page + 1), 0].into_iter().enumerate() {
        want_ckv[slot * ckv_dim..][..ckv_dim].copy_from_slice(&ckv[i * ckv_dim..][..ckv_dim]);
        want_kpe[slot * kpe_dim..][..kpe_dim].copy_from_slice(&kpe[i * kpe_dim..][..kpe_dim]);
    }
    assert_eq!(ckv_pool, want_ckv, "ckv pool");
    assert_eq!(kpe_pool, want_kpe, "kpe pool");

    let (b, l) = (2usize, 5usize);
    let (k, v) = (rng.vec(b * HK * D), rng.vec(b * HK * D));
    let (mut k_cache, mut v_cache) = (rng.vec(b * HK * l * D), rng.vec(b * HK * l * D));
    let mut want_k = k_cache.clone();
    let positions = [4, 1];
    let plan = KvCacheAppendPlan::select(
        &KvCacheAppendDesc { num_kv_heads: HK as i32, head_dim: D as i32, dtype: DType::F32 },
        Device::Cpu,
    )
    .unwrap();
    run_cpu(
        &plan,
        KvCacheAppendArgs {
            k: any(&k, [b, HK, D]),
            v: any(&v, [b, HK, D]),
            batch_indices: None,
            positions: view(&positions, [2]),
            k_cache: any_mut(&mut k_cache, [b, HK, l, D]),
            v_cache: any_mut(&mut v_cache, [b, HK, l, D]),
        },
    )
    .unwrap();
    for r in 0..b {
        for h in 0..HK {
            want_k[((r * HK + h) * l + positions[r] as usize) * D..][..D].copy_from_slice(&k[(r * HK + h) * D..][..D]);
        }
    }
    assert_eq!(k_cache, want_k, "contiguous k cache");
}

fn argmax(row: &[f32]) -> i32 {
    let mut best = 0;
    for (i, x) in row.iter().enumerate() {
        if *x > row[best] {
            best = i;
        }
    }
    best as i32
}

#[test]
fn sampling_greedy_top_k_one_and_renorm() {
    let mut rng = Rng::new();
    let (b, vocab) = (5usize, 37usize);
    let probs = rng.probs(b, vocab);
    let want: Vec<i32> = probs.chunks(vocab).map(argmax).collect();
    for filter in [SamplingFilter::Greedy, SamplingFilter::TopK] {
        let desc = SamplingDesc { vocab: vocab as i32, max_batch: b as i32, filter, top_k: 1, ..Default::default() };
        let plan = SamplingPlan::select(&desc, Device::Cpu).unwrap();
        let mut out = vec![-7i32; b];
        run_cpu(
            &plan,
            SamplingArgs {
                input: view(&probs, [b, vocab]),
                out: view_mut(&mut out, [b]),
                temperature: None,
                top_k: None,
                top_p: None,
                min_p: None,
                seed: rng.next(),
                offset: 0,
                seeds: None,
                offsets: None,
            },
        )
        .unwrap();
        assert_eq!(out, want, "{filter:?}");
    }

    // Per-row top-k renormalisation: keep each row's k largest, renormalised.
    let ks = [1, 3, 5, 37, 2];
    let desc = SamplingRenormDesc {
        vocab: vocab as i32,
        max_batch: b as i32,
        kind: RenormKind::TopKRenormProbs,
        params: ParamSource::PerRow,
        ..Default::default()
    };
    let plan = SamplingRenormPlan::select(&desc, Device::Cpu).unwrap();
    let mut out = poisoned(b * vocab);
    run_cpu(
        &plan,
        SamplingRenormArgs {
            input: view(&probs, [b, vocab]),
            out: view_mut(&mut out, [b, vocab]),
            top_k: Some(view(&ks, [b])),
            top_p: None,
        },
    )
    .unwrap();
    let mut want = vec![];
    for (row, &k) in probs.chunks(vocab).zip(&ks) {
        let mut sorted = row.to_vec();
        sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let threshold = sorted[k as usize - 1];
        let kept: f64 = row.iter().filter(|x| **x >= threshold).map(|x| *x as f64).sum();
        want.extend(row.iter().map(|x| if *x >= threshold { *x as f64 / kept } else { 0.0 }));
    }
    assert_close(&out, &want, 1e-5, "top_k_renorm_probs");
}

#[test]
fn chain_speculative_sampling_accepts_the_target_and_rejects_to_the_residual() {
    let mut rng = Rng::new();
    let (vocab, n) = (11usize, 3usize);
    // Row 0: drafts drawn from q = p, so every test passes; the bonus row is one-hot.
    // Row 1: the target gives draft 1 no mass and is one-hot at `x` there, so
    // position 1 fails and the residual max(0, p - q) draws x.
    let q = rng.probs(2 * n, vocab);
    let mut p = vec![0f32; 2 * (n + 1) * vocab];
    let drafts: Vec<i32> = (0..2 * n).map(|_| rng.below(vocab) as i32).collect();
    let (bonus, x) = (rng.below(vocab), (drafts[n + 1] as usize + 1) % vocab);
    for t in 0..n {
        p[t * vocab..][..vocab].copy_from_slice(&q[t * vocab..][..vocab]);
    }
    p[n * vocab + bonus] = 1.0;
    p[(n + 1) * vocab..][..vocab].copy_from_slice(&q[n * vocab..][..vocab]); // row 1, t = 0 passes
    p[(n + 2) * vocab + x] = 1.0; // row 1, t = 1
    p[(n + 3) * vocab] = 1.0;
    p[(n + 4) * vocab] = 1.0;
    let desc = ChainSpeculativeSamplingDesc {
        vocab: vocab as i32,
        max_batch: 2,
        num_draft_tokens: n as i32,
        ..Default::default()
    };
    let plan = ChainSpeculativeSamplingPlan::select(&desc, Device::Cpu).unwrap();
    let (mut out, mut accepted, mut emitted) = (vec![-7i32; 2 * (n + 1)], vec![-7i32; 2], vec![-7i32; 2]);
    run_cpu(
        &plan,
        ChainSpeculativeSamplingArgs {
            draft_token_ids: view(&drafts, [2, n]),
            draft_probs: view(&q, [2, n, vocab]),
            target_probs: view(&p, [2, n + 1, vocab]),
            out: view_mut(&mut out, [2, n + 1]),
            accepted: Some(view_mut(&mut accepted, [2])),
            emitted: Some(view_mut(&mut emitted, [2])),
            seed: rng.next(),
            offset: 0,
            seeds: None,
            offsets: None,
        },
    )
    .unwrap();
    let mut want = drafts[..n].to_vec();
    want.push(bonus as i32);
    want.extend([drafts[n], x as i32, -1, -1]);
    assert_eq!(out, want, "out");
    assert_eq!(emitted, [n as i32, 1], "emitted");
    assert_eq!(accepted[0], n as i32, "accepted");
}

#[test]
fn token_penalty_from_counts() {
    let mut rng = Rng::new();
    let (b, vocab) = (3usize, 19usize);
    let logits0 = rng.vec(b * vocab);
    let counts: Vec<i32> = (0..b * vocab).map(|_| rng.below(3) as i32).collect();
    let (rep, freq, pres) = (1.3f32, 0.25f32, 0.5f32);
    let desc = TokenPenaltyDesc {
        vocab: vocab as i32,
        max_batch: b as i32,
        repetition: rep,
        frequency: freq,
        presence: pres,
        ..Default::default()
    };
    let plan = TokenPenaltyPlan::select(&desc, Device::Cpu).unwrap();
    let mut logits = logits0.clone();
    run_cpu(
        &plan,
        TokenPenaltyArgs {
            logits: view_mut(&mut logits, [b, vocab]),
            counts: Some(view(&counts, [b, vocab])),
            token_ids: None,
            repetition: None,
            frequency: None,
            presence: None,
        },
    )
    .unwrap();
    let want: Vec<f64> = logits0
        .iter()
        .zip(&counts)
        .map(|(&l, &c)| {
            let mut l = l as f64;
            if c > 0 {
                l = if l > 0.0 { l / rep as f64 } else { l * rep as f64 };
                l -= freq as f64 * c as f64 + pres as f64;
            }
            l
        })
        .collect();
    assert_close(&logits, &want, 1e-5, "logits");
}

#[test]
fn rms_norm_fused_add() {
    let mut rng = Rng::new();
    let (rows, hidden) = (3usize, 24usize);
    let (x, w, residual0) = (rng.vec(rows * hidden), rng.vec(hidden), rng.vec(rows * hidden));
    let norm = |input: &[f32]| -> Vec<f64> {
        input
            .chunks(hidden)
            .flat_map(|r| {
                let ms = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / hidden as f64;
                let inv = 1.0 / (ms + 1e-6).sqrt();
                r.iter().zip(&w).map(move |(v, w)| *v as f64 * inv * *w as f64).collect::<Vec<_>>()
            })
            .collect()
    };
    let desc = RmsNormDesc { hidden_size: hidden as i32, dtype: DType::F32, fused_add: true, ..Default::default() };
    let plan = RmsNormPlan::select(&desc, Device::Cpu).unwrap();
    let (mut residual, mut out) = (residual0.clone(), poisoned(rows * hidden));
    run_cpu(
        &plan,
        RmsNormArgs {
            x: any(&x, [rows, hidden]),
            weight: any(&w, [hidden]),
            residual: Some(any_mut(&mut residual, [rows, hidden])),
            out: any_mut(&mut out, [rows, hidden]),
        },
    )
    .unwrap();
    let sum: Vec<f32> = x.iter().zip(&residual0).map(|(a, b)| a + b).collect();
    assert_close(&residual, &sum.iter().map(|v| *v as f64).collect::<Vec<_>>(), 1e-6, "residual");
    assert_close(&out, &norm(&sum), 1e-5, "fused rms_norm");
}

#[test]
fn gdn_prefill_recurrence() {
    let mut rng = Rng::new();
    let (t, dk, dv) = (4usize, 16usize, 16usize);
    let cu = [0, 3, 4]; // two sequences
    let (q, k, v) = (rng.vec(t * dk), rng.vec(t * dk), rng.vec(t * dv));
    let alpha: Vec<f32> = (0..t).map(|_| 0.5 + 0.25 * (rng.unit() + 1.0)).collect();
    let beta: Vec<f32> = (0..t).map(|_| 0.1 * (rng.unit() + 1.0)).collect();
    let desc = GdnPrefillDesc {
        max_batch: 2,
        max_tokens: t as i64,
        num_qk_heads: 1,
        num_v_heads: 1,
        head_dim_k: dk as i32,
        head_dim_v: dv as i32,
        dtype: DType::F32,
        ..Default::default()
    };
    let plan = GdnPrefillPlan::select(&desc, Device::Cpu).unwrap();
    let (mut out, mut state) = (poisoned(t * dv), poisoned(2 * dv * dk));
    run_cpu(
        &plan,
        GdnPrefillArgs {
            q: any(&q, [t, 1, dk]),
            k: any(&k, [t, 1, dk]),
            v: any(&v, [t, 1, dv]),
            alpha: view(&alpha, [t, 1]),
            beta: view(&beta, [t, 1]),
            cu_seqlens: view(&cu, [3]),
            initial_state: None,
            out: any_mut(&mut out, [t, 1, dv]),
            final_state: Some(view_mut(&mut state, [2, 1, dv, dk])),
        },
    )
    .unwrap();
    let scale = 1.0 / (dk as f64).sqrt();
    let (mut want, mut want_state) = (vec![], vec![]);
    for s in 0..2 {
        let mut st = vec![0f64; dv * dk];
        for tok in cu[s] as usize..cu[s + 1] as usize {
            let (kt, vt, qt) = (&k[tok * dk..][..dk], &v[tok * dv..][..dv], &q[tok * dk..][..dk]);
            let (a, b) = (alpha[tok] as f64, beta[tok] as f64);
            for i in 0..dv {
                let sk: f64 = (0..dk).map(|j| st[i * dk + j] * kt[j] as f64).sum();
                let delta = b * (a * sk - vt[i] as f64);
                for j in 0..dk {
                    st[i * dk + j] = a * st[i * dk + j] - delta * kt[j] as f64;
                }
            }
            want.extend((0..dv).map(|i| scale * (0..dk).map(|j| st[i * dk + j] * qt[j] as f64).sum::<f64>()));
        }
        want_state.extend(st);
    }
    assert_close(&out, &want, 1e-4, "gdn out");
    assert_close(&state, &want_state, 1e-4, "gdn final state");
}

/// One decode step over a state pool equals GdnPrefill over one-token sequences.
#[test]
fn gdn_decode_step_equals_prefill() {
    let mut rng = Rng::new();
    let (b, dk, dv, slots) = (2usize, 16usize, 16usize, 3usize);
    let (q, k, v) = (rng.vec(b * dk), rng.vec(b * dk), rng.vec(b * dv));
    let alpha: Vec<f32> = (0..b).map(|_| 0.5 + 0.25 * (rng.unit() + 1.0)).collect();
    let beta: Vec<f32> = (0..b).map(|_| 0.1 * (rng.unit() + 1.0)).collect();
    let initial = rng.vec(b * dv * dk);
    let prefill = GdnPrefillPlan::select(
        &GdnPrefillDesc {
            max_batch: b as i32,
            max_tokens: b as i64,
            num_qk_heads: 1,
            num_v_heads: 1,
            head_dim_k: dk as i32,
            head_dim_v: dv as i32,
            dtype: DType::F32,
            ..Default::default()
        },
        Device::Cpu,
    )
    .unwrap();
    let cu = [0, 1, 2];
    let (mut want, mut want_state) = (poisoned(b * dv), poisoned(b * dv * dk));
    run_cpu(
        &prefill,
        GdnPrefillArgs {
            q: any(&q, [b, 1, dk]),
            k: any(&k, [b, 1, dk]),
            v: any(&v, [b, 1, dv]),
            alpha: view(&alpha, [b, 1]),
            beta: view(&beta, [b, 1]),
            cu_seqlens: view(&cu, [3]),
            initial_state: Some(view(&initial, [b, 1, dv, dk])),
            out: any_mut(&mut want, [b, 1, dv]),
            final_state: Some(view_mut(&mut want_state, [b, 1, dv, dk])),
        },
    )
    .unwrap();
    // Sequence 0 in slot 2, sequence 1 in slot 0; slot 1 is spare.
    let mut pool = rng.vec(slots * dv * dk);
    let spare = pool[dv * dk..2 * dv * dk].to_vec();
    pool[2 * dv * dk..].copy_from_slice(&initial[..dv * dk]);
    pool[..dv * dk].copy_from_slice(&initial[dv * dk..]);
    let decode = GdnDecodePlan::select(
        &GdnDecodeDesc {
            max_batch: b as i32,
            num_state_slots: slots as i32,
            num_qk_heads: 1,
            num_v_heads: 1,
            head_dim_k: dk as i32,
            head_dim_v: dv as i32,
            dtype: DType::F32,
            ..Default::default()
        },
        Device::Cpu,
    )
    .unwrap();
    let index = [2, 0];
    let mut out = poisoned(b * dv);
    run_cpu(
        &decode,
        GdnDecodeArgs {
            q: any(&q, [b, 1, dk]),
            k: any(&k, [b, 1, dk]),
            v: any(&v, [b, 1, dv]),
            alpha: view(&alpha, [b, 1]),
            beta: view(&beta, [b, 1]),
            state_indices: view(&index, [b]),
            state: view_mut(&mut pool, [slots, 1, dv, dk]),
            out: any_mut(&mut out, [b, 1, dv]),
        },
    )
    .unwrap();
    assert_eq!(out, want, "decode out");
    assert_eq!(pool[2 * dv * dk..], want_state[..dv * dk], "sequence 0's state");
    assert_eq!(pool[..dv * dk], want_state[dv * dk..], "sequence 1's state");
    assert_eq!(pool[dv * dk..2 * dv * dk], spare[..], "spare slot");
}

/// Plain RMSNorm in each activation type: the element type travels with the views.
fn rms_norm_in<T: Element + Default>(dtype: DType, to: fn(f32) -> T, from: fn(T) -> f32) {
    let mut rng = Rng::new();
    let (rows, hidden) = (4usize, 64usize);
    let x: Vec<T> = rng.vec(rows * hidden).into_iter().map(to).collect();
    let w: Vec<T> = rng.vec(hidden).into_iter().map(to).collect();
    let plan =
        RmsNormPlan::select(&RmsNormDesc { hidden_size: hidden as i32, dtype, ..Default::default() }, Device::Cpu)
            .unwrap();
    let mut out = vec![to(f32::NAN); rows * hidden];
    run_cpu(
        &plan,
        RmsNormArgs {
            x: any(&x, [rows, hidden]),
            weight: any(&w, [hidden]),
            residual: None,
            out: any_mut(&mut out, [rows, hidden]),
        },
    )
    .unwrap();
    let want: Vec<f64> = x
        .chunks(hidden)
        .flat_map(|r| {
            let ms = r.iter().map(|v| (from(*v) as f64).powi(2)).sum::<f64>() / hidden as f64;
            let inv = 1.0 / (ms + 1e-6).sqrt();
            r.iter().zip(&w).map(move |(v, w)| from(*v) as f64 * inv * from(*w) as f64).collect::<Vec<_>>()
        })
        .collect();
    let got: Vec<f32> = out.into_iter().map(from).collect();
    // One rounding of the output (bf16: 2^-8 relative, f16: 2^-11), or fp32 sums.
    let tol = match dtype {
        DType::BF16 => 1.0 / 256.0,
        DType::F16 => 1.0 / 2048.0,
        _ => 1e-5,
    };
    assert_close(&got, &want, tol, &format!("{dtype:?} rms_norm"));
}

#[test]
fn rms_norm_in_f32_bf16_and_f16() {
    rms_norm_in(DType::F32, |x| x, |x| x);
    rms_norm_in(DType::BF16, BF16::from_f32, BF16::to_f32);
    rms_norm_in(DType::F16, F16::from_f32, F16::to_f32);
}

/// A plan is Sync: runs from several threads, each with its own workspace and
/// output, give the same bits.
#[test]
fn one_plan_runs_from_several_threads() {
    let mut rng = Rng::new();
    let p = Paged::new(&mut rng, &[9, 4]);
    let desc = BatchPagedDecodeDesc {
        max_batch: 2,
        num_qo_heads: HQ as i32,
        kv: p.desc(),
        q_dtype: DType::F32,
        ..Default::default()
    };
    let mut plan = BatchPagedDecodePlan::select(&desc, Device::Cpu).unwrap();
    plan.prepare(&Stream::default(), &mut plan.host_workspace(), &p.indptr, &p.last).unwrap();
    let q = rng.vec(2 * HQ * D);
    let outputs: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = poisoned(2 * HQ * D);
                    let args = BatchPagedDecodeArgs {
                        q: any(&q, [2, HQ, D]),
                        kv: p.view(),
                        out: any_mut(&mut out, [2, HQ, D]),
                        lse: None,
                    };
                    run_cpu(&plan, args).unwrap();
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(outputs[0].iter().all(|x| x.is_finite()));
    let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(outputs.iter().all(|o| bits(o) == bits(&outputs[0])));
}
