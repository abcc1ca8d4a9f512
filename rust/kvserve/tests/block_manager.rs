//! The BlockManager from Rust: a serving loop's bookkeeping, its page tables
//! and queries, and the cascade tables CascadeAttention takes.
use kvserve::*;

#[test]
fn fork_append_and_cascade_tables() {
    let mut bm = BlockManager::new(16, 4).unwrap();
    assert_eq!((bm.num_pages(), bm.page_size(), bm.free_pages()), (16, 4, 16));
    let system = bm.add_sequence(8).unwrap(); // two full pages
    let (a, b) = (bm.fork(system, None).unwrap(), bm.fork(system, Some(4)).unwrap());
    assert_eq!(bm.num_sequences(), 3);
    assert_eq!(bm.sequence(a).unwrap(), SequenceInfo { length: 8, prefix_pages: 2, num_pages: 2 });
    assert_eq!(bm.sequence(b).unwrap(), SequenceInfo { length: 4, prefix_pages: 1, num_pages: 1 });
    assert_eq!(bm.pages_needed(a, 5).unwrap(), 2);
    bm.append_tokens_batch(&[a, b], 5).unwrap();
    assert_eq!(bm.free_pages(), 16 - 2 - 2 - 2);

    let all = bm.page_table(&[system, a, b], TablePart::All).unwrap();
    assert_eq!(all.indptr, [0, 2, 6, 9]); // a: 13 tokens, b: 9
    assert_eq!(all.last_page_len, [4, 1, 1]);
    let shared = &all.indices[..2];
    assert_eq!(&all.indices[2..4], shared);
    assert_eq!(all.indices[6], shared[0]);
    assert_eq!(bm.refcount(shared[0] as i64).unwrap(), 3);
    assert_eq!(bm.refcount(shared[1] as i64).unwrap(), 2);
    let suffix = bm.page_table(&[a], TablePart::Suffix).unwrap();
    assert_eq!(suffix.indices, all.indices[4..6]);

    let tables = bm.cascade_tables(&[vec![a]]).unwrap();
    assert_eq!(tables.group_indptr, [0, 1]);
    assert_eq!(tables.prefix.indices, shared);
    assert_eq!(tables.suffix.indices, suffix.indices);
    let lengths = tables.lengths();
    assert_eq!((lengths.prefix_last_page_len, lengths.suffix_last_page_len), (&[4][..], &[1][..]));

    bm.truncate(a, 8).unwrap();
    bm.release(b).unwrap();
    assert_eq!(bm.num_sequences(), 2);
    assert_eq!(bm.refcount(all.indices[8] as i64).unwrap(), 0); // b's own page
    assert_eq!(bm.refcount(all.indices[5] as i64).unwrap(), 0); // cut from a
    assert_eq!(bm.refcount(shared[0] as i64).unwrap(), 2);
    assert!(matches!(bm.sequence(b), Err(Error::InvalidArgument { .. })));
}
