//! The Rust declarations against kvserve.h as the C compiler sees it: every
//! struct's size, alignment and field offsets, every enum's size, and every
//! constant's value, from a C program generated here and compiled against the
//! header. The lists below must also name exactly the header's structs, fields,
//! enums and constants (parsed from its text), so a field or constant added on
//! one side only fails this test too.
use kvserve_sys::*;
use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

struct Layout {
    name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
}

macro_rules! structs {
    ($($name:ident { $($field:ident),* $(,)? })*) => {
        vec![$(Layout {
            name: stringify!($name),
            size: size_of::<$name>(),
            align: align_of::<$name>(),
            fields: vec![$((stringify!($field), offset_of!($name, $field))),*],
        }),*]
    };
}

macro_rules! named {
    ($($name:ident),* $(,)?) => { vec![$((stringify!($name), $name as i64)),*] };
}

macro_rules! enum_sizes {
    ($($name:ident),* $(,)?) => { vec![$((stringify!($name), size_of::<$name>())),*] };
}

fn rust_structs() -> Vec<Layout> {
    structs! {
        kvs_error { code, workspace_needed, workspace_got, message }
        kvs_device { kind, ordinal }
        kvs_tensor { data, dtype, rank, shape, strides, device }
        kvs_precision { math, accumulator, deterministic, batch_invariant }
        kvs_attention_params { sm_scale, logits_soft_cap, window_left }
        kvs_paged_kv_desc { page_size, num_pages, num_kv_heads, head_dim, dtype, layout, k_scale, num_k_scale,
                            v_scale, num_v_scale }
        kvs_paged_kv { k_pages, v_pages, indptr, indices, last_page_len }
        kvs_batch_paged_decode_desc { max_batch, num_qo_heads, kv, q_dtype, attn, kv_split_tokens }
        kvs_batch_paged_decode_args { q, kv, out, lse }
        kvs_single_decode_desc { max_batch, num_qo_heads, num_kv_heads, head_dim, dtype, attn, kv_split_tokens }
        kvs_single_decode_args { q, k, v, kv_len, out, lse }
        kvs_single_prefill_desc { num_qo_heads, num_kv_heads, head_dim, head_dim_v, dtype, layout, causal, attn }
        kvs_single_prefill_args { q, k, v, out, lse }
        kvs_batch_ragged_prefill_desc { max_batch, num_qo_heads, num_kv_heads, head_dim, head_dim_v, dtype, causal,
                                        attn }
        kvs_batch_ragged_prefill_args { q, k, v, qo_indptr, kv_indptr, out, lse }
        kvs_batch_paged_prefill_desc { max_batch, num_qo_heads, kv, q_dtype, causal, attn }
        kvs_batch_paged_prefill_args { q, qo_indptr, kv, out, lse }
        kvs_cascade_attention_desc { max_batch, max_groups, num_qo_heads, kv, q_dtype, attn }
        kvs_cascade_attention_args { q, group_indptr, prefix, suffix, out, lse }
        kvs_merge_state_desc { num_heads, head_dim, dtype }
        kvs_merge_state_args { v_a, lse_a, v_b, lse_b, v_out, lse_out }
        kvs_merge_states_desc { num_heads, head_dim, dtype }
        kvs_merge_states_args { v, lse, v_out, lse_out }
        kvs_paged_kv_append_desc { kv, dtype, mode }
        kvs_paged_kv_append_args { k, v, batch_indices, positions, kv }
        kvs_paged_mla_desc { page_size, num_pages, ckv_dim, kpe_dim, dtype }
        kvs_paged_mla_cache { ckv_pages, kpe_pages, indptr, indices, last_page_len }
        kvs_paged_mla_append_args { ckv, kpe, batch_indices, positions, cache }
        kvs_batch_paged_mla_decode_desc { max_batch, num_heads, cache, sm_scale, kv_split_tokens }
        kvs_batch_paged_mla_decode_args { q_nope, q_pe, cache, out, lse }
        kvs_kv_cache_append_desc { num_kv_heads, head_dim, dtype }
        kvs_kv_cache_append_args { k, v, batch_indices, positions, k_cache, v_cache }
        kvs_sequence_info { length, prefix_pages, num_pages }
        kvs_page_table { indptr, indices, indices_capacity, last_page_len, num_indices }
        kvs_sampling_desc { vocab, max_batch, input, filter, order, temperature, top_k, top_p, min_p, params, random }
        kvs_sampling_args { input, out, temperature, top_k, top_p, min_p, seed, offset, seeds, offsets }
        kvs_sampling_renorm_desc { vocab, max_batch, kind, top_k, top_p, params }
        kvs_sampling_renorm_args { input, out, top_k, top_p }
        kvs_chain_speculative_sampling_desc { vocab, max_batch, num_draft_tokens, random }
        kvs_chain_speculative_sampling_args { draft_token_ids, draft_probs, target_probs, out, accepted, emitted,
                                              seed, offset, seeds, offsets }
        kvs_token_penalty_desc { vocab, max_batch, history, repetition, frequency, presence, params }
        kvs_token_penalty_args { logits, counts, token_ids, repetition, frequency, presence }
        kvs_rms_norm_desc { hidden_size, dtype, eps, weight_offset, fused_add }
        kvs_rms_norm_args { x, weight, residual, out }
        kvs_gdn_prefill_desc { max_batch, max_tokens, num_qk_heads, num_v_heads, head_dim_k, head_dim_v, dtype,
                               scale, use_qk_l2norm, l2norm_eps }
        kvs_gdn_prefill_args { q, k, v, alpha, beta, cu_seqlens, initial_state, out, final_state }
        kvs_gdn_decode_desc { max_batch, num_state_slots, num_qk_heads, num_v_heads, head_dim_k, head_dim_v, dtype,
                              scale, use_qk_l2norm, l2norm_eps }
        kvs_gdn_decode_args { q, k, v, alpha, beta, state_indices, state, out }
    }
}

fn rust_enums() -> Vec<(&'static str, usize)> {
    enum_sizes!(
        kvs_status_code,
        kvs_dtype,
        kvs_device_kind,
        kvs_kv_layout,
        kvs_append_mode,
        kvs_table_part,
        kvs_sampling_input,
        kvs_sampling_filter,
        kvs_top_k_top_p_order,
        kvs_param_source,
        kvs_random_source,
        kvs_renorm_kind,
        kvs_penalty_history
    )
}

fn rust_constants() -> Vec<(&'static str, i64)> {
    named!(
        KVS_OK,
        KVS_INVALID_ARGUMENT,
        KVS_UNSUPPORTED,
        KVS_WORKSPACE_TOO_SMALL,
        KVS_CUDA_ERROR,
        KVS_INTERNAL,
        KVS_RESOURCE_EXHAUSTED,
        KVS_F16,
        KVS_BF16,
        KVS_F32,
        KVS_FP8_E4M3,
        KVS_FP8_E5M2,
        KVS_INT32,
        KVS_DEVICE_CPU,
        KVS_DEVICE_CUDA,
        KVS_MAX_BATCH,
        KVS_MAX_HEADS,
        KVS_MAX_HEAD_DIM,
        KVS_MAX_ROW_WIDTH,
        KVS_MAX_PAGE_SIZE,
        KVS_MAX_PAGES,
        KVS_MAX_TOKENS,
        KVS_MAX_SEQUENCE_LENGTH,
        KVS_MAX_VOCAB,
        KVS_MAX_DRAFT_TOKENS,
        KVS_MAX_RANK,
        KVS_NHD,
        KVS_HND,
        KVS_APPEND_DECODE,
        KVS_APPEND_RAGGED,
        KVS_TABLE_ALL,
        KVS_TABLE_PREFIX,
        KVS_TABLE_SUFFIX,
        KVS_SAMPLING_INPUT_PROBS,
        KVS_SAMPLING_INPUT_LOGITS,
        KVS_FILTER_NONE,
        KVS_FILTER_TOP_K,
        KVS_FILTER_TOP_P,
        KVS_FILTER_MIN_P,
        KVS_FILTER_TOP_K_TOP_P,
        KVS_FILTER_GREEDY,
        KVS_ORDER_K_THEN_P,
        KVS_ORDER_JOINT,
        KVS_PARAMS_SCALAR,
        KVS_PARAMS_PER_ROW,
        KVS_RANDOM_HOST,
        KVS_RANDOM_PER_ROW,
        KVS_TOP_K_RENORM_PROBS,
        KVS_TOP_P_RENORM_PROBS,
        KVS_TOP_K_MASK_LOGITS,
        KVS_HISTORY_TOKEN_COUNTS,
        KVS_HISTORY_TOKEN_IDS,
    )
}

fn header() -> String {
    let path = format!("{INCLUDE_DIR}/kvserve/kvserve.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out
}

/// The bodies of `typedef <kind> <tag> { body } name;` in the header, by name.
fn typedef_bodies(text: &str, kind: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let opener = format!("typedef {kind} ");
    let mut rest = text;
    while let Some(start) = rest.find(&opener) {
        rest = &rest[start + opener.len()..];
        let (Some(open), Some(semi)) = (rest.find('{'), rest.find(';')) else { break };
        if semi < open {
            continue; // a forward declaration: typedef struct x x;
        }
        let close = rest.find('}').expect("typedef without }");
        let name_end = close + rest[close..].find(';').unwrap();
        let name = rest[close + 1..name_end].trim().to_string();
        found.insert(name, rest[open + 1..close].to_string());
        rest = &rest[name_end..];
    }
    found
}

/// Field names of a struct body, in order ("kvs_tensor k_pages, v_pages;" has two).
fn field_names(body: &str) -> Vec<String> {
    let mut names = vec![];
    for decl in body.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        for declarator in decl.split(',') {
            let without_array = declarator.split('[').next().unwrap();
            let name = without_array.rsplit(|c: char| c.is_whitespace() || c == '*').next().unwrap();
            names.push(name.trim().to_string());
        }
    }
    names
}

/// Every `KVS_` constant: enumerators and #defines (the declaration macro aside).
fn header_constants(text: &str) -> Vec<String> {
    let mut names: Vec<String> = typedef_bodies(text, "enum")
        .values()
        .flat_map(|body| body.split(',').map(|e| e.split('=').next().unwrap().trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#define KVS_") {
            let name = rest.split(|c: char| c.is_whitespace() || c == '(').next().unwrap();
            if !line.contains('(') || !rest.starts_with(name) || !rest[name.len()..].starts_with('(') {
                names.push(format!("KVS_{name}"));
            }
        }
    }
    names.retain(|n| n != "KVS_DECLARE_PLAN_COMMON");
    names
}

#[test]
fn lists_match_the_header_text() {
    let text = strip_comments(&header());
    let structs = typedef_bodies(&text, "struct");
    let rust = rust_structs();
    let header_names: Vec<&String> = structs.keys().collect();
    let mut rust_names: Vec<&str> = rust.iter().map(|l| l.name).collect();
    rust_names.sort();
    assert_eq!(header_names, rust_names, "structs of kvserve.h vs the Rust list");
    for layout in &rust {
        let rust_fields: Vec<&str> = layout.fields.iter().map(|f| f.0).collect();
        assert_eq!(field_names(&structs[layout.name]), rust_fields, "fields of {}", layout.name);
    }
    let enums: Vec<String> = typedef_bodies(&text, "enum").into_keys().collect();
    let mut rust_enums: Vec<&str> = rust_enums().iter().map(|e| e.0).collect();
    rust_enums.sort();
    assert_eq!(enums, rust_enums, "enums of kvserve.h vs the Rust list");
    let mut constants = header_constants(&text);
    constants.sort();
    let mut rust_constants: Vec<&str> = rust_constants().iter().map(|c| c.0).collect();
    rust_constants.sort();
    assert_eq!(constants, rust_constants, "constants of kvserve.h vs the Rust list");
}

#[test]
fn layouts_and_values_match_the_c_compiler() {
    let mut c =
        String::from("#include <stddef.h>\n#include <stdio.h>\n#include \"kvserve/kvserve.h\"\nint main(void) {\n");
    for l in rust_structs() {
        c += &format!("  printf(\"{0} %zu %zu\\n\", sizeof({0}), _Alignof({0}));\n", l.name);
        for (f, _) in &l.fields {
            c += &format!("  printf(\"{0}.{1} %zu\\n\", offsetof({0}, {1}));\n", l.name, f);
        }
    }
    for (e, _) in rust_enums() {
        c += &format!("  printf(\"{e} %zu\\n\", sizeof({e}));\n");
    }
    for (k, _) in rust_constants() {
        c += &format!("  printf(\"{k} %lld\\n\", (long long)({k}));\n");
    }
    c += "  return 0;\n}\n";

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kvserve-layout");
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("layout.c"), dir.join("layout"));
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .arg("-std=c11")
        .arg(format!("-I{INCLUDE_DIR}"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("C compiler {cc}: {e}"));
    assert!(status.success(), "compiling {} failed", src.display());
    let output = Command::new(&exe).output().expect("running the layout program");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let c_values: BTreeMap<&str, Vec<i64>> = stdout
        .lines()
        .map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next().unwrap(), parts.map(|p| p.parse().unwrap()).collect())
        })
        .collect();

    let mut mismatches = vec![];
    let mut expect = |key: String, rust: Vec<i64>| {
        if c_values.get(key.as_str()) != Some(&rust) {
            mismatches.push(format!("{key}: Rust {rust:?}, C {:?}", c_values.get(key.as_str())));
        }
    };
    for l in rust_structs() {
        expect(l.name.to_string(), vec![l.size as i64, l.align as i64]);
        for (f, offset) in &l.fields {
            expect(format!("{}.{f}", l.name), vec![*offset as i64]);
        }
    }
    for (e, size) in rust_enums() {
        expect(e.to_string(), vec![size as i64]);
    }
    for (k, value) in rust_constants() {
        expect(k.to_string(), vec![value]);
    }
    assert!(mismatches.is_empty(), "Rust and C disagree:\n{}", mismatches.join("\n"));
}
