//! Errors as values: each variant produced through the API and checked field
//! by field, can_implement, and the C ABI's plan kinds against the crate's.
use kvserve::*;

fn paged_kv() -> PagedKvDesc {
    PagedKvDesc { page_size: 4, num_pages: 8, num_kv_heads: 2, head_dim: 16, dtype: DType::F32, ..Default::default() }
}

fn decode_desc() -> BatchPagedDecodeDesc {
    BatchPagedDecodeDesc { max_batch: 2, num_qo_heads: 4, kv: paged_kv(), q_dtype: DType::F32, ..Default::default() }
}

fn expect_problem<T>(result: Result<T>, op: &str, field: &str, got: &str) {
    match result {
        Err(Error::InvalidProblem { op: o, field: f, expected, got: g }) => {
            assert_eq!((o.as_str(), f.as_str(), g.as_str()), (op, field, got), "expected: {expected}");
            assert!(!expected.is_empty());
        }
        Err(other) => panic!("{field}: expected InvalidProblem, got {other:?}"),
        Ok(_) => panic!("{field}: expected InvalidProblem, got a plan"),
    }
}

#[test]
fn bad_descriptors_name_the_field_and_the_value() {
    let op = "BatchPagedDecode";
    let d = decode_desc();
    let select = |desc: BatchPagedDecodeDesc| BatchPagedDecodePlan::select(&desc, Device::Cpu);
    expect_problem(select(BatchPagedDecodeDesc { max_batch: 0, ..d.clone() }), op, "max_batch", "0");
    expect_problem(select(BatchPagedDecodeDesc { max_batch: 1 << 21, ..d.clone() }), op, "max_batch", "2097152");
    expect_problem(select(BatchPagedDecodeDesc { num_qo_heads: 3, ..d.clone() }), op, "num_qo_heads", "3");
    expect_problem(
        select(BatchPagedDecodeDesc { kv: PagedKvDesc { page_size: 0, ..paged_kv() }, ..d.clone() }),
        op,
        "kv.page_size",
        "0",
    );
    expect_problem(
        select(BatchPagedDecodeDesc { kv: PagedKvDesc { k_scale: vec![2.0], ..paged_kv() }, ..d.clone() }),
        op,
        "kv.k_scale",
        "1 scales",
    );
    let window = AttentionParams { window_left: Some(-5), ..Default::default() };
    expect_problem(select(BatchPagedDecodeDesc { attn: window, ..d.clone() }), op, "attn.window_left", "-5");

    expect_problem(
        SamplingPlan::select(&SamplingDesc { vocab: 0, max_batch: 1, ..Default::default() }, Device::Cpu),
        "Sampling",
        "vocab",
        "0",
    );
    let penalty = TokenPenaltyDesc { vocab: 8, max_batch: 1, repetition: -1.0, ..Default::default() };
    match TokenPenaltyPlan::select(&penalty, Device::Cpu) {
        Err(Error::InvalidProblem { field, .. }) => assert_eq!(field, "repetition"),
        other => panic!("expected InvalidProblem on repetition, got {:?}", other.err()),
    }
    let spec = ChainSpeculativeSamplingDesc { vocab: 8, max_batch: 1, num_draft_tokens: 0, ..Default::default() };
    match ChainSpeculativeSamplingPlan::select(&spec, Device::Cpu) {
        Err(Error::InvalidProblem { field, got, .. }) => {
            assert_eq!((field.as_str(), got.as_str()), ("num_draft_tokens", "0"))
        }
        other => panic!("expected InvalidProblem on num_draft_tokens, got {:?}", other.err()),
    }
    match RmsNormPlan::select(&RmsNormDesc { hidden_size: 8, eps: 0.0, ..Default::default() }, Device::Cpu) {
        Err(Error::InvalidProblem { field, .. }) => assert_eq!(field, "eps"),
        other => panic!("expected InvalidProblem on eps, got {:?}", other.err()),
    }
}

#[test]
fn a_cuda_plan_without_the_backend_is_unsupported() {
    if cuda_backend_built() {
        return; // this build serves cuda: the refusal under test cannot happen
    }
    match BatchPagedDecodePlan::select(&decode_desc(), Device::Cuda(0)) {
        Err(Error::Unsupported { config }) => assert!(config.contains("cuda:0"), "{config}"),
        other => panic!("expected Unsupported, got {:?}", other.err()),
    }
}

#[test]
fn bad_arguments_name_the_argument_and_write_nothing() {
    let plan =
        RmsNormPlan::select(&RmsNormDesc { hidden_size: 8, dtype: DType::F32, ..Default::default() }, Device::Cpu)
            .unwrap();
    let (x, w) = (vec![1f32; 16], vec![1f32; 8]);
    let mut out = vec![-3f32; 16];
    fn norm_args<'a>(x: &'a [f32], w: &'a [f32], out: &'a mut [f32], rows: usize) -> RmsNormArgs<'a> {
        RmsNormArgs {
            x: TensorRef::new(x, [2, 8]).unwrap().into(),
            weight: TensorRef::new(w, [8]).unwrap().into(),
            residual: None,
            out: TensorMut::new(&mut out[..rows * 8], [rows, 8]).unwrap().into(),
        }
    }
    plan.can_implement(&norm_args(&x, &w, &mut out, 2)).unwrap();
    assert_eq!(out, vec![-3f32; 16], "can_implement ran the op");
    let bad = plan.can_implement(&norm_args(&x, &w, &mut out, 1));
    let ran = plan.run(&Stream::default(), &mut Workspace::none(), norm_args(&x, &w, &mut out, 1));
    for result in [bad, ran] {
        match result {
            Err(Error::InvalidArgument { op, argument, expected, got }) => {
                assert_eq!((op.as_str(), argument.as_str()), ("RmsNorm", "out"));
                assert!(expected.contains("[2, 8]") && got.contains("[1, 8]"), "{expected} / {got}");
            }
            other => panic!("expected InvalidArgument on out, got {other:?}"),
        }
    }
    assert_eq!(out, vec![-3f32; 16], "a refused run wrote");

    // A host view larger than its slice is refused before the C ABI sees it.
    assert!(matches!(TensorRef::new(&w, [2, 8]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(TensorRef::strided(&w, [2, 4], [-4, 1]), Err(Error::InvalidArgument { .. })));
    // prepare's host arrays must agree in length.
    let mut decode = BatchPagedDecodePlan::select(&decode_desc(), Device::Cpu).unwrap();
    match decode.prepare(&Stream::default(), &mut Workspace::none(), &[0, 1, 2], &[1]) {
        Err(Error::InvalidArgument { argument, expected, got, .. }) => {
            assert_eq!((argument.as_str(), expected.as_str(), got.as_str()), ("last_page_len", "2 entries", "1"))
        }
        other => panic!("expected InvalidArgument on last_page_len, got {other:?}"),
    }
}

#[test]
fn prepare_refuses_an_empty_indptr_and_a_workspace_elsewhere() {
    let mut decode = BatchPagedDecodePlan::select(&decode_desc(), Device::Cpu).unwrap();
    match decode.prepare(&Stream::default(), &mut Workspace::none(), &[], &[]) {
        Err(Error::InvalidArgument { argument, got, .. }) => {
            assert_eq!((argument.as_str(), got.as_str()), ("indptr", "0"))
        }
        other => panic!("expected InvalidArgument on indptr, got {other:?}"),
    }
    // SAFETY: never dereferenced: the plan refuses memory on another device first.
    let mut elsewhere = unsafe { Workspace::from_device_ptr(std::ptr::null_mut(), 0, Device::Cuda(0)) };
    match decode.prepare(&Stream::default(), &mut elsewhere, &[0, 1], &[1]) {
        Err(Error::InvalidArgument { argument, expected, got, .. }) => {
            assert_eq!(argument, "workspace");
            assert!(expected.contains("Cpu") && got.contains("Cuda(0)"), "{expected} / {got}");
        }
        other => panic!("expected InvalidArgument on workspace, got {other:?}"),
    }
}

#[test]
fn page_table_validation_reports_the_entry() {
    let (indptr, indices, last) = ([0, 2], [0, 9], [1]);
    let pool = [0f32];
    let table = PagedKv {
        k_pages: TensorRef::new(&pool, [1]).unwrap().into(),
        v_pages: TensorRef::new(&pool, [1]).unwrap().into(),
        indptr: TensorRef::new(&indptr, [2]).unwrap(),
        indices: TensorRef::new(&indices, [2]).unwrap(),
        last_page_len: TensorRef::new(&last, [1]).unwrap(),
    };
    match validate_page_table(&paged_kv(), &table, &Stream::default()) {
        Err(Error::InvalidArgument { argument, expected, got, .. }) => {
            assert_eq!(argument, "kv.indices");
            assert_eq!(expected, "page ids in [0, 8)");
            assert_eq!(got, "9 (request 0, position 1)");
        }
        other => panic!("expected InvalidArgument on kv.indices, got {other:?}"),
    }
}

#[test]
fn block_manager_errors() {
    let mut bm = BlockManager::new(2, 4).unwrap();
    match bm.add_sequence(100) {
        Err(Error::ResourceExhausted { message }) => assert!(message.contains("25 more pages"), "{message}"),
        other => panic!("expected ResourceExhausted, got {other:?}"),
    }
    assert_eq!(bm.free_pages(), 2, "a failed call changed the manager");
    match bm.release(77) {
        Err(Error::InvalidArgument { argument, .. }) => assert_eq!(argument, "seq"),
        other => panic!("expected InvalidArgument on seq, got {other:?}"),
    }
    assert!(BlockManager::new(0, 4).is_err());
}

#[test]
fn errors_display_their_parts() {
    let e = Error::InvalidProblem { op: "X".into(), field: "f".into(), expected: "1".into(), got: "2".into() };
    assert_eq!(e.to_string(), "X: descriptor field 'f': expected 1, got 2");
    let boxed: Box<dyn std::error::Error> = Box::new(Error::WorkspaceTooSmall { needed: 512, given: 0 });
    assert_eq!(boxed.to_string(), "workspace too small: 512 bytes needed, 0 given");
}

#[test]
fn a_plan_reports_its_kernel_and_precision() {
    let plan = BatchPagedDecodePlan::select(&decode_desc(), Device::Cpu).unwrap();
    let kernel = plan.kernel();
    assert_eq!(
        (kernel.backend.as_str(), kernel.arch.as_str(), kernel.op.as_str()),
        ("cpu", "host", "BatchPagedDecode")
    );
    assert!(kernel.config.contains("d=16"), "{}", kernel.config);
    assert_eq!(plan.sku(), format!("cpu/host/BatchPagedDecode/{}", kernel.config));
    let p = plan.precision();
    assert_eq!((p.math, p.accumulator, p.deterministic), (DType::F32, DType::F32, true));
    assert_eq!(plan.desc(), &decode_desc());
    assert_eq!(plan.device(), Device::Cpu);
    assert!(BatchPagedDecodePlan::supports(&decode_desc(), Device::Cpu).is_ok());
}

/// Every `KVS_DECLARE_PLAN_COMMON(x)` of kvserve.h must be a plan this crate wraps.
#[test]
fn every_c_abi_plan_kind_is_wrapped() {
    let path = format!("{}/kvserve/kvserve.h", kvserve_sys::INCLUDE_DIR);
    let header = std::fs::read_to_string(&path).unwrap();
    let kinds: Vec<&str> =
        header.lines().filter_map(|l| l.strip_prefix("KVS_DECLARE_PLAN_COMMON(")?.strip_suffix(')')).collect();
    assert!(kinds.len() >= 17, "found only {kinds:?} in {path}");
    let missing: Vec<&&str> = kinds.iter().filter(|k| !PLAN_KINDS.contains(k)).collect();
    assert!(missing.is_empty(), "C ABI plan kinds without a Rust plan: {missing:?}");
    let extra: Vec<&&str> = PLAN_KINDS.iter().filter(|k| !kinds.contains(k)).collect();
    assert!(extra.is_empty(), "Rust plans the header does not declare: {extra:?}");
}
