//! The host-side page allocator: which pool pages hold which sequence's
//! tokens, with reference-counted shared prefixes, producing the page tables
//! the paged ops take. Every call succeeds or leaves the manager unchanged.
use crate::error::{check, Result};
use kvserve_sys as sys;
use std::ptr::NonNull;

/// A sequence's handle; ids are never reused.
pub type SeqId = i64;

/// Which of a sequence's pages a table row lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(i32)]
pub enum TablePart {
    #[default]
    All = sys::KVS_TABLE_ALL,
    /// The pages it got from fork().
    Prefix = sys::KVS_TABLE_PREFIX,
    /// The pages after its shared prefix.
    Suffix = sys::KVS_TABLE_SUFFIX,
}

/// What a sequence holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceInfo {
    /// Tokens reserved.
    pub length: i64,
    /// Leading pages obtained from fork().
    pub prefix_pages: i64,
    pub num_pages: i64,
}

/// A CSR page table over a list of sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageTable {
    /// `[B + 1]`
    pub indptr: Vec<i32>,
    /// `[indptr[B]]` page ids
    pub indices: Vec<i32>,
    /// `[B]`; 0 for a row without pages
    pub last_page_len: Vec<i32>,
}

/// CascadeAttention's tables: group g's members are rows
/// `group_indptr[g]..group_indptr[g+1]` of suffix; prefix has one row per group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CascadeTables {
    pub group_indptr: Vec<i32>,
    pub prefix: PageTable,
    pub suffix: PageTable,
}

impl CascadeTables {
    pub fn lengths(&self) -> crate::CascadeLengths<'_> {
        crate::CascadeLengths {
            group_indptr: &self.group_indptr,
            prefix_indptr: &self.prefix.indptr,
            prefix_last_page_len: &self.prefix.last_page_len,
            suffix_indptr: &self.suffix.indptr,
            suffix_last_page_len: &self.suffix.last_page_len,
        }
    }
}

/// Not thread-safe on the C++ side (one scheduler owns it): Send, not Sync,
/// and every change takes `&mut self`.
pub struct BlockManager {
    raw: NonNull<sys::kvs_block_manager>,
}

unsafe impl Send for BlockManager {}

impl Drop for BlockManager {
    fn drop(&mut self) {
        // SAFETY: created by kvs_block_manager_create, destroyed once.
        unsafe { sys::kvs_block_manager_destroy(self.raw.as_ptr()) }
    }
}

/// A table read in the C ABI's two calls: the size query, then the copy.
fn read_table(rows: usize, mut call: impl FnMut(&mut sys::kvs_page_table) -> Result<()>) -> Result<PageTable> {
    let mut query = sys::kvs_page_table::default();
    call(&mut query)?;
    let mut t = PageTable::zeroed(rows, query.num_indices);
    call(&mut t.as_c())?;
    Ok(t)
}

impl PageTable {
    fn zeroed(rows: usize, indices: i64) -> PageTable {
        PageTable { indptr: vec![0; rows + 1], indices: vec![0; indices as usize], last_page_len: vec![0; rows] }
    }
    /// The C ABI's output buffers over this table's vectors.
    fn as_c(&mut self) -> sys::kvs_page_table {
        sys::kvs_page_table {
            indptr: self.indptr.as_mut_ptr(),
            indices: self.indices.as_mut_ptr(),
            indices_capacity: self.indices.len() as i64,
            last_page_len: self.last_page_len.as_mut_ptr(),
            num_indices: 0,
        }
    }
}

impl BlockManager {
    /// num_pages in `[1, 2^31 - 1]`, page_size in `[1, 1024]`.
    pub fn new(num_pages: i64, page_size: i32) -> Result<BlockManager> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: out pointer and error record are valid.
        check(|err| unsafe { sys::kvs_block_manager_create(num_pages, page_size, &mut raw, err) })?;
        Ok(BlockManager { raw: NonNull::new(raw).expect("kvs_block_manager_create returned OK without a handle") })
    }

    pub fn free_pages(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::kvs_block_manager_free_pages(self.raw.as_ptr()) }
    }

    pub fn num_pages(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::kvs_block_manager_num_pages(self.raw.as_ptr()) }
    }

    pub fn page_size(&self) -> i32 {
        // SAFETY: live handle.
        unsafe { sys::kvs_block_manager_page_size(self.raw.as_ptr()) }
    }

    pub fn num_sequences(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::kvs_block_manager_num_sequences(self.raw.as_ptr()) }
    }

    /// How many sequences reference `page` (0: free).
    pub fn refcount(&self, page: i64) -> Result<i32> {
        let mut count = 0;
        // SAFETY: live handle, valid out pointer.
        check(|err| unsafe { sys::kvs_block_manager_refcount(self.raw.as_ptr(), page, &mut count, err) })?;
        Ok(count)
    }

    /// Pages `append_tokens(seq, tokens)` would take.
    pub fn pages_needed(&self, seq: SeqId, tokens: i64) -> Result<i64> {
        let mut pages = 0;
        // SAFETY: as above.
        check(|err| unsafe { sys::kvs_block_manager_pages_needed(self.raw.as_ptr(), seq, tokens, &mut pages, err) })?;
        Ok(pages)
    }

    /// What `seq` holds (its page ids: `page_table(&[seq], TablePart::All)`).
    pub fn sequence(&self, seq: SeqId) -> Result<SequenceInfo> {
        let mut info = sys::kvs_sequence_info::default();
        // SAFETY: as above.
        check(|err| unsafe { sys::kvs_block_manager_sequence(self.raw.as_ptr(), seq, &mut info, err) })?;
        Ok(SequenceInfo { length: info.length, prefix_pages: info.prefix_pages, num_pages: info.num_pages })
    }

    /// A new sequence with `tokens` slots reserved.
    pub fn add_sequence(&mut self, tokens: i64) -> Result<SeqId> {
        let mut id = 0;
        // SAFETY: live handle, valid out pointer.
        check(|err| unsafe { sys::kvs_block_manager_add_sequence(self.raw.as_ptr(), tokens, &mut id, err) })?;
        Ok(id)
    }

    /// A sequence sharing the full pages among the first `tokens` tokens of
    /// `parent` (None: all of them); allocates no page.
    pub fn fork(&mut self, parent: SeqId, tokens: Option<i64>) -> Result<SeqId> {
        let mut id = 0;
        let tokens = tokens.unwrap_or(-1);
        // SAFETY: as above.
        check(|err| unsafe { sys::kvs_block_manager_fork(self.raw.as_ptr(), parent, tokens, &mut id, err) })?;
        Ok(id)
    }

    /// Reserves `tokens` more slots at the end of seq.
    pub fn append_tokens(&mut self, seq: SeqId, tokens: i64) -> Result<()> {
        // SAFETY: live handle.
        check(|err| unsafe { sys::kvs_block_manager_append_tokens(self.raw.as_ptr(), seq, tokens, err) })
    }

    /// The same for every sequence of `seqs` (no duplicates), all or nothing.
    pub fn append_tokens_batch(&mut self, seqs: &[SeqId], tokens: i64) -> Result<()> {
        // SAFETY: the slice holds seqs.len() ids.
        check(|err| unsafe {
            sys::kvs_block_manager_append_tokens_batch(self.raw.as_ptr(), seqs.as_ptr(), seqs.len() as i64, tokens, err)
        })
    }

    /// Shortens seq to `length` tokens, releasing pages it no longer needs.
    pub fn truncate(&mut self, seq: SeqId, length: i64) -> Result<()> {
        // SAFETY: live handle.
        check(|err| unsafe { sys::kvs_block_manager_truncate(self.raw.as_ptr(), seq, length, err) })
    }

    pub fn release(&mut self, seq: SeqId) -> Result<()> {
        // SAFETY: live handle.
        check(|err| unsafe { sys::kvs_block_manager_release(self.raw.as_ptr(), seq, err) })
    }

    /// One row per sequence of `seqs`, in order.
    pub fn page_table(&self, seqs: &[SeqId], part: TablePart) -> Result<PageTable> {
        read_table(seqs.len(), |table| {
            // SAFETY: seqs holds seqs.len() ids; the buffers in `table` are sized as the query said.
            check(|err| unsafe {
                sys::kvs_block_manager_page_table(
                    self.raw.as_ptr(),
                    seqs.as_ptr(),
                    seqs.len() as i64,
                    part as i32,
                    table,
                    err,
                )
            })
        })
    }

    /// Tables for CascadeAttention over groups of sequences that share a prefix.
    pub fn cascade_tables(&self, groups: &[Vec<SeqId>]) -> Result<CascadeTables> {
        let members: Vec<SeqId> = groups.concat();
        let sizes: Vec<i64> = groups.iter().map(|g| g.len() as i64).collect();
        let mut group_indptr = vec![0i32; groups.len() + 1];
        let call = |prefix: &mut sys::kvs_page_table, suffix: &mut sys::kvs_page_table, indptr: *mut i32| {
            // SAFETY: members and sizes match; buffers are sized as the size query said (or NULL).
            check(|err| unsafe {
                sys::kvs_block_manager_cascade_tables(
                    self.raw.as_ptr(),
                    members.as_ptr(),
                    sizes.as_ptr(),
                    sizes.len() as i64,
                    indptr,
                    prefix,
                    suffix,
                    err,
                )
            })
        };
        let (mut prefix_query, mut suffix_query) = (sys::kvs_page_table::default(), sys::kvs_page_table::default());
        call(&mut prefix_query, &mut suffix_query, std::ptr::null_mut())?;
        let mut prefix = PageTable::zeroed(groups.len(), prefix_query.num_indices);
        let mut suffix = PageTable::zeroed(members.len(), suffix_query.num_indices);
        call(&mut prefix.as_c(), &mut suffix.as_c(), group_indptr.as_mut_ptr())?;
        Ok(CascadeTables { group_indptr, prefix, suffix })
    }
}
