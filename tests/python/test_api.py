"""The Python API's own promises: descriptors, errors' text, plan identity,
zero-copy outputs, no reference leaks, the GIL released, stubs up to date."""

import gc
import pathlib
import sys
import threading

import numpy as np
import pytest

import kvserve as K
from conftest import poisoned
from reference import rmsnorm

F32 = K.DType.f32


def small_decode(max_batch=2, heads=2, dim=64, page_size=4, num_pages=4):
    kv = K.PagedKvDesc(page_size=page_size, num_pages=num_pages, num_kv_heads=heads, head_dim=dim, dtype=F32)
    return K.BatchPagedDecodeDesc(max_batch=max_batch, num_qo_heads=heads, q_dtype=F32, kv=kv)


def test_every_cpp_plan_is_bound():
    # The C++ catalogue lists every op (its CPU rows): each has a binding.
    assert set(K.PLANS) == {e.op for e in K.list() if e.backend == K.Backend.cpu}
    with_prepare = {n for n, p in K.PLANS.items() if hasattr(p, "prepare")}
    assert with_prepare == {"BatchPagedDecode", "BatchRaggedPrefill", "BatchPagedPrefill", "CascadeAttention",
                            "BatchPagedMlaDecode"}


def test_descriptors_take_keywords_and_refuse_unknown_fields_and_wrong_types():
    d = small_decode()
    assert d.kv.page_size == 4 and d.attn.sm_scale is None
    d.kv.page_size = 8  # nested descriptors are attributes, not copies
    assert d.kv.page_size == 8
    assert "page_size=8" in repr(d)
    assert d == small_decode(page_size=8) and d != small_decode()
    with pytest.raises(TypeError, match="no field 'pagesize'.*page_size"):
        K.PagedKvDesc(pagesize=4)
    with pytest.raises(TypeError, match=r"PagedKvDesc.page_size: expected int, got str"):
        K.PagedKvDesc(page_size="4")
    with pytest.raises(TypeError, match="sm_scale: expected float or None"):
        K.AttentionParams(sm_scale="x")


def test_descriptor_errors_carry_field_expected_given():
    with pytest.raises(K.InvalidProblem) as e:
        K.BatchPagedDecodePlan.create(small_decode(max_batch=0))
    err = e.value
    assert isinstance(err, ValueError) and isinstance(err, K.Error)
    assert (err.op, err.field, err.expected, err.given) == ("BatchPagedDecode", "max_batch", "in [1, 1048576]", "0")
    assert str(err) == "BatchPagedDecode: descriptor field 'max_batch': expected in [1, 1048576], got 0"
    assert not K.BatchPagedDecodePlan.supports(small_decode(max_batch=0))


def test_argument_errors_name_the_argument_and_write_nothing(rng):
    plan = K.BatchPagedDecodePlan.create(small_decode())
    kv = dict(k_pages=np.zeros((4, 4, 2, 64), np.float32), v_pages=np.zeros((4, 4, 2, 64), np.float32),
              indptr=np.array([0, 1, 2], np.int32), indices=np.array([0, 1], np.int32),
              last_page_len=np.array([4, 4], np.int32))
    plan.prepare(indptr=kv["indptr"], last_page_len=kv["last_page_len"])
    out = poisoned((2, 2, 64))
    with pytest.raises(K.InvalidProblem) as e:
        plan.run(q=np.zeros((2, 2, 32), np.float32), kv=kv, out=out)
    assert (e.value.field, e.value.expected, e.value.given) == ("q", "shape [*, 2, 64]", "[2, 2, 32]")
    assert np.isnan(out).all()
    with pytest.raises(K.InvalidProblem, match="argument 'q': expected dtype f32, got f16"):
        plan.run(q=np.zeros((2, 2, 64), np.float16), kv=kv, out=out)
    with pytest.raises(K.InvalidProblem, match="argument 'q': expected a DLPack array .*got list"):
        plan.run(q=[[0.0]], kv=kv, out=out)
    with pytest.raises(K.InvalidProblem, match="argument 'kv.indptr': expected dtype .*int32.*, got int64"):
        plan.run(q=np.zeros((2, 2, 64), np.float32), kv=dict(kv, indptr=np.array([0, 1, 2])), out=out)
    with pytest.raises(TypeError, match="no field 'kv.kpages'"):
        plan.run(q=np.zeros((2, 2, 64), np.float32), kv=dict(kpages=1), out=out)
    with pytest.raises(TypeError, match="no field 'query'"):
        plan.run(query=1)
    with pytest.raises(K.InvalidProblem, match="argument 'device'"):
        K.BatchPagedDecodePlan.create(small_decode(), "tpu")


def test_unsupported_names_what_is_missing():
    if K.cuda_backend_built():
        pytest.skip("this build has the CUDA backend")
    with pytest.raises(K.Unsupported, match="no CUDA backend") as e:
        K.BatchPagedDecodePlan.create(small_decode(), "cuda:0")
    assert isinstance(e.value, NotImplementedError)


def test_workspace_too_small_carries_both_sizes():
    err = K._errors.from_status("WorkspaceTooSmall", "workspace too small: needed 512 bytes, got 100", 512, 100)
    assert isinstance(err, K.WorkspaceTooSmall) and (err.needed, err.given, err.field) == (512, 100, "workspace")


def test_plan_identity_and_precision():
    plan = K.BatchPagedDecodePlan.create(small_decode())
    assert plan.device == "cpu" and plan.desc == small_decode()
    assert plan.key == plan.kernel.key() and plan.key.startswith("cpu/host/BatchPagedDecode/")
    assert plan.kernel.backend == K.Backend.cpu and plan.kernel.op == "BatchPagedDecode"
    p = plan.precision
    assert p.math == F32 and p.accumulator == F32 and p.deterministic is True
    assert plan.key in repr(plan)


def test_list_has_every_op_on_the_cpu():
    entries = K.list()
    assert {e.op for e in entries if e.backend == K.Backend.cpu} >= set(K.PLANS)
    assert K.cuda_device_count() >= 0


def rms_plan_and_inputs(rng, rows=4, hidden=64):
    plan = K.RmsNormPlan.create(K.RmsNormDesc(hidden_size=hidden, dtype=F32, eps=1e-6))
    return plan, rng.standard_normal((rows, hidden), np.float32), rng.standard_normal(hidden).astype(np.float32)


def test_outputs_are_written_in_the_callers_buffer(rng):
    plan, x, w = rms_plan_and_inputs(rng)
    big = poisoned((8, 2, 64))
    out = big[::2, 1]  # a strided view into a larger buffer: no copy may stand in for it
    assert not out.flags.c_contiguous
    plan.run(x=x, weight=w, out=out)
    np.testing.assert_allclose(big[::2, 1], rmsnorm(x, w, 1e-6), rtol=1e-5, atol=1e-6)
    assert np.isnan(big[1::2]).all() and np.isnan(big[::2, 0]).all()  # nothing else touched
    plan.run(x=x, weight=w, out=x)  # in place: the very same memory
    np.testing.assert_allclose(x, big[::2, 1], rtol=0, atol=0)


def test_read_only_inputs_are_accepted(rng):
    plan, x, w = rms_plan_and_inputs(rng)
    x.flags.writeable = False
    out = poisoned(x.shape)
    plan.run(x=x, weight=w, out=out)
    assert not np.isnan(out).any()


def test_read_only_outputs_are_refused(rng):
    plan, x, w = rms_plan_and_inputs(rng)
    out = poisoned(x.shape)
    out.flags.writeable = False
    with pytest.raises(K.InvalidProblem, match="argument 'out': expected a writable array"):
        plan.run(x=x, weight=w, out=out)
    assert np.isnan(out).all()
    append = K.KvCacheAppendPlan.create(K.KvCacheAppendDesc(num_kv_heads=1, head_dim=64, dtype=F32))
    cache = np.zeros((1, 1, 4, 64), np.float32)
    cache.flags.writeable = False
    row = np.ones((1, 1, 64), np.float32)
    with pytest.raises(K.InvalidProblem, match="argument 'k_cache': expected a writable array"):
        append.run(k=row, v=row, positions=np.zeros(1, np.int32), k_cache=cache, v_cache=cache.copy())


def test_no_reference_leak_over_10000_runs(rng):
    plan, x, w = rms_plan_and_inputs(rng, rows=2, hidden=16)
    out = poisoned(x.shape)
    dplan = K.BatchPagedDecodePlan.create(small_decode())
    kv = dict(k_pages=np.ones((4, 4, 2, 64), np.float32), v_pages=np.ones((4, 4, 2, 64), np.float32),
              indptr=np.array([0, 1, 2], np.int32), indices=np.array([0, 1], np.int32),
              last_page_len=np.array([4, 4], np.int32))
    q, dout = np.ones((2, 2, 64), np.float32), poisoned((2, 2, 64))
    watched = [x, w, out, q, dout, *kv.values()]

    def run(n):
        for _ in range(n):
            plan.run(x=x, weight=w, out=out)
            dplan.prepare(indptr=kv["indptr"], last_page_len=kv["last_page_len"])
            dplan.run(q=q, kv=kv, out=dout)
            try:
                dplan.run(q=x, kv=kv, out=dout)
            except K.InvalidProblem:
                pass

    run(100)
    gc.collect()
    before = [sys.getrefcount(a) for a in watched]
    objects = len(gc.get_objects())
    run(10_000)
    gc.collect()
    assert [sys.getrefcount(a) for a in watched] == before
    assert len(gc.get_objects()) <= objects + 50


def test_runs_from_several_threads_give_the_same_results(rng):
    # run() releases the GIL; each thread has its own output.
    plan, x, w = rms_plan_and_inputs(rng, rows=256, hidden=1024)
    expect = poisoned(x.shape)
    plan.run(x=x, weight=w, out=expect)
    outs = [poisoned(x.shape) for _ in range(4)]
    threads = [threading.Thread(target=lambda o=o: [plan.run(x=x, weight=w, out=o) for _ in range(20)])
               for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in outs:
        np.testing.assert_array_equal(o, expect)


def test_block_manager_tables_drive_the_plans(rng):
    bm = K.BlockManager(num_pages=16, page_size=4)
    a = bm.add_sequence(6)
    b = bm.fork(a, 4)
    bm.append_tokens(b, 3)
    table = bm.page_table([a, b])
    assert table.indptr.dtype == np.int32 and list(table.last_page_len) == [2, 3]
    assert bm.refcount(bm.pages(a)[0]) == 2
    plan = K.BatchPagedDecodePlan.create(small_decode(num_pages=16))
    plan.prepare(table)  # a PageTable is a PagedKvLengths
    with pytest.raises(K.ResourceExhausted, match="pages"):
        bm.append_tokens(a, 1000)
    with pytest.raises(K.InvalidProblem):
        bm.release(12345)


def test_stubs_are_generated_from_this_build():
    tools = pathlib.Path(__file__).resolve().parents[2] / "python" / "tools"
    stub = pathlib.Path(K.__file__).parent / "_kvserve.pyi"
    assert stub.exists(), "the wheel ships the stubs"
    sys.path.insert(0, str(tools))
    try:
        import gen_stubs
    finally:
        sys.path.pop(0)
    assert stub.read_text() == gen_stubs.generate(), "run python/tools/gen_stubs.py and commit the stubs"
    for name in K.PLANS:
        assert f"class {name}Plan:" in stub.read_text()
