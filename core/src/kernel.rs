//! The exact sign-sum kernels behind `integer_forward`.
//!
//! Every kernel computes, for each token t and output row o,
//! S[t][o] = Σ over the set sign bits of row o of lane[t][k]
//! (the reference then forms Σ_k s_k·lane_k = T − 2·S). Integer adds in any
//! order give the same sum, so every kernel equals the one-add-at-a-time
//! definition bit for bit; the proptests in core/tests/reference_props.rs
//! check each one against it.
//!
//! * [`SignKernel::NibbleAvx2`] and [`SignKernel::NibbleAvx512`] (x86-64 with
//!   AVX2, or AVX-512BW, and lane_bits ≤ 12): the T-MAC scheme. Per token, each group of 4 inputs gets a table of its 16
//!   possible partial sums, split into a low-byte and a high-byte table of 16
//!   bytes, so one `vpshufb` looks up 32 rows (AVX2) or 64 rows (AVX-512BW)
//!   at once. The signs are re-laid
//!   out once per layer ([`BlockedSigns`]): blocks of 64 rows, one byte per row
//!   per 8 inputs, so one load holds the nibble indices of 32 or 64 rows.
//! * [`SignKernel::ByteTable`] (portable; any lane width): a 256-entry table of
//!   the sums of every byte of signs (8 inputs), built per token or per block of
//!   16 tokens, then one lookup per byte per row.

use std::ops::Range;

/// Rows per block of the nibble kernel's sign layout: one AVX-512 register of
/// bytes, or two AVX2 registers.
pub const BLOCK_ROWS: usize = 64;

/// Which sign-sum kernel `integer_forward` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignKernel {
    /// The fastest kernel this CPU and configuration allow.
    Auto,
    /// The portable 256-entry byte-table kernel.
    ByteTable,
    /// The nibble-table (`vpshufb`) kernel on 32-row AVX2 registers; needs AVX2
    /// and lane_bits ≤ 12.
    NibbleAvx2,
    /// The same on 64-row AVX-512 registers; needs AVX-512BW and lane_bits ≤ 12.
    NibbleAvx512,
}

impl SignKernel {
    /// Every kernel but `Auto`, for tests and benchmarks.
    pub const ALL: [SignKernel; 3] = [SignKernel::ByteTable, SignKernel::NibbleAvx2, SignKernel::NibbleAvx512];
}

/// Why a requested kernel cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {kernel:?} kernel cannot run here: {why}")]
pub struct KernelUnavailable {
    pub kernel: SignKernel,
    pub why: &'static str,
}

/// Largest lane width the nibble kernel handles: 4 groups of 4 lanes of at most
/// 2^11 − 1 sum to at most 32,752, so two bytes of signs accumulate in i16.
pub const NIBBLE_MAX_LANE_BITS: u32 = 12;

/// The kernel `Auto` picks, or why `kernel` cannot run.
pub fn resolve(kernel: SignKernel, lane_bits: u32) -> Result<SignKernel, KernelUnavailable> {
    let check = |k: SignKernel| -> Result<SignKernel, &'static str> {
        let feature = match k {
            SignKernel::ByteTable | SignKernel::Auto => return Ok(SignKernel::ByteTable),
            SignKernel::NibbleAvx2 => "avx2",
            SignKernel::NibbleAvx512 => "avx512bw",
        };
        if lane_bits > NIBBLE_MAX_LANE_BITS {
            return Err("lane_bits > 12: four lanes' sums could overflow its 16-bit accumulators");
        }
        if !cpu_has(feature) {
            return Err(if feature == "avx2" { "this CPU has no AVX2" } else { "this CPU has no AVX-512BW" });
        }
        Ok(k)
    };
    match kernel {
        SignKernel::Auto => Ok([SignKernel::NibbleAvx512, SignKernel::NibbleAvx2]
            .into_iter()
            .find_map(|k| check(k).ok())
            .unwrap_or(SignKernel::ByteTable)),
        k => check(k).map_err(|why| KernelUnavailable { kernel, why }),
    }
}

fn cpu_has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// Threads the kernel may use: `ONEBIT_THREADS` if set, else every core.
pub fn kernel_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("ONEBIT_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1))
    })
}

/// Below this many sign·lane products a call splits its rows across threads
/// no more. Spawning costs tens of microseconds, and on this project's 2-vCPU
/// machines a second thread made 576×576 at 16 and 64 tokens slower (0.24 vs
/// 0.14 ms, 0.66 vs 0.53 ms) and gained nothing on 4096×4096 at 1 token
/// (`core/examples/kernel_once`). Calls of more than 64 tokens split by
/// chunks of tokens instead (`PreparedLayer::forward_tiled`).
const THREADED_PRODUCTS: usize = 1 << 27;

pub(crate) fn threads_for(m: usize, n: usize, k: usize) -> usize {
    if m * n * k >= THREADED_PRODUCTS {
        kernel_threads()
    } else {
        1
    }
}

/// Packed signs re-laid out for the nibble kernel, once per layer: block b,
/// byte j, row r at `(b·groups + j)·64 + r`; rows past N are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedSigns {
    rows: usize,
    groups: usize,
    bytes: Vec<u8>,
}

impl BlockedSigns {
    /// From row-major packed signs (`rows` rows of `groups` bytes).
    pub fn new(signs: &[u8], rows: usize, groups: usize) -> Self {
        assert_eq!(signs.len(), rows * groups, "BlockedSigns: signs must be rows × groups bytes");
        let blocks = rows.div_ceil(BLOCK_ROWS);
        let mut bytes = vec![0u8; blocks * groups * BLOCK_ROWS];
        for (o, row) in signs.chunks_exact(groups.max(1)).enumerate().take(rows) {
            let (b, r) = (o / BLOCK_ROWS, o % BLOCK_ROWS);
            let base = b * groups * BLOCK_ROWS + r;
            for (j, &byte) in row.iter().enumerate() {
                bytes[base + j * BLOCK_ROWS] = byte;
            }
        }
        BlockedSigns { rows, groups, bytes }
    }

    fn blocks(&self) -> usize {
        self.rows.div_ceil(BLOCK_ROWS)
    }
}

/// The sign sums S of m tokens × n rows, in the order a kernel left them.
pub(crate) struct SignSums {
    m: usize,
    n: usize,
    data: Vec<i32>,
    /// false: row-major m×n. true: [block][token][row within the block] (the
    /// nibble kernels' order).
    blocks: bool,
}

impl SignSums {
    /// Call `f(t, o0, run)` with `run` = S[t][o0..o0 + run.len()], so that
    /// every (t, o) is covered once: one run per token (row-major sums) or per
    /// block and token (block sums, put into row order first).
    #[inline(always)]
    pub(crate) fn for_each_run(&self, mut f: impl FnMut(usize, usize, &[i32])) {
        let (m, n) = (self.m, self.n);
        match self.blocks {
            false => {
                for (t, row) in self.data.chunks_exact(n).enumerate() {
                    f(t, 0, row);
                }
            }
            true => {
                for (b, per_block) in self.data.chunks_exact(m * BLOCK_ROWS).enumerate() {
                    let o0 = b * BLOCK_ROWS;
                    let len = BLOCK_ROWS.min(n - o0);
                    for (t, rows) in per_block.chunks_exact(BLOCK_ROWS).enumerate() {
                        f(t, o0, &rows[..len]);
                    }
                }
            }
        }
    }
}

/// Buffers the kernels reuse from call to call (per-token tables and sums), so
/// that a layer run many times does not allocate and page-fault them afresh:
/// at 768 tokens of a 128×344 layer, fresh buffers cost more than the kernel.
#[derive(Debug, Default)]
pub(crate) struct KernelScratch {
    tables: Vec<u8>,
    sums: Vec<i32>,
}

impl SignSums {
    /// Hand the sums' buffer back for the next call.
    pub(crate) fn recycle(self, scratch: &mut KernelScratch) {
        scratch.sums = self.data;
    }
}

/// S for m tokens. `lanes` holds m rows of `groups·8` lanes (zero past K);
/// `signs` is row-major packed (n rows of `groups` bytes); `blocked` is its
/// [`BlockedSigns`] when the caller prepared it. `kernel` must come from [`resolve`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_sums(
    kernel: SignKernel,
    lanes: &[i16],
    m: usize,
    signs: &[u8],
    blocked: Option<&BlockedSigns>,
    groups: usize,
    n: usize,
    lane_bits: u32,
) -> SignSums {
    let threads = threads_for(m, n, groups * 8);
    sign_sums_on(kernel, lanes, m, signs, blocked, groups, n, lane_bits, threads, &mut KernelScratch::default())
}

/// [`sign_sums`] on a given number of threads (tests force the split), with
/// buffers from `scratch` (give them back with [`SignSums::recycle`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_sums_on(
    kernel: SignKernel,
    lanes: &[i16],
    m: usize,
    signs: &[u8],
    blocked: Option<&BlockedSigns>,
    groups: usize,
    n: usize,
    lane_bits: u32,
    threads: usize,
    scratch: &mut KernelScratch,
) -> SignSums {
    debug_assert_eq!(lanes.len(), m * groups * 8);
    if m == 0 {
        return SignSums { m, n, data: Vec::new(), blocks: false };
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        SignKernel::NibbleAvx2 | SignKernel::NibbleAvx512 => {
            let owned;
            let blocked = match blocked {
                Some(b) => b,
                None => {
                    owned = BlockedSigns::new(signs, n, groups);
                    &owned
                }
            };
            let wide = kernel == SignKernel::NibbleAvx512;
            let sums = std::mem::take(&mut scratch.sums);
            let data = nibble::block_sums(lanes, m, blocked, wide, threads, &mut scratch.tables, sums);
            SignSums { m, n, data, blocks: true }
        }
        _ => SignSums { m, n, data: byte_table::sign_sums(lanes, m, groups * 8, signs, groups, n, lane_bits <= 12, threads), blocks: false },
    }
}

/// Run `work(range, out)` over `items` split into one contiguous range per
/// thread; `out` is the matching slice of `per_item` results per item.
fn split_across_threads<T: Send, F>(items: usize, per_item: usize, threads: usize, out: &mut [T], work: F)
where
    F: Fn(Range<usize>, &mut [T]) + Sync,
{
    debug_assert_eq!(out.len(), items * per_item);
    let threads = threads.clamp(1, items.max(1));
    if threads == 1 {
        work(0..items, out);
        return;
    }
    let per = items.div_ceil(threads);
    std::thread::scope(|s| {
        for (c, chunk) in out.chunks_mut(per * per_item).enumerate() {
            let range = c * per..c * per + chunk.len() / per_item;
            let work = &work;
            s.spawn(move || work(range, chunk));
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod nibble {
    use super::{split_across_threads, BlockedSigns, BLOCK_ROWS};
    use std::arch::x86_64::*;

    /// Bytes of per-token tables one pass keeps hot (about half an L2 cache).
    const TABLE_PASS_BYTES: usize = 512 * 1024;

    /// Per token and group of 4 inputs q: 16 low bytes then 16 high bytes of the
    /// 16 sums Σ_{bit i of idx set} lane[4q + i]. |sum| ≤ 4·2047 fits i16.
    fn build_tables(lanes: &[i16], m: usize, groups: usize, tables: &mut Vec<u8>) {
        let quads = groups * 2;
        let len = m * quads * 32;
        assert_eq!(lanes.len(), m * quads * 4);
        // Not zeroed first: zeroing cost as much as building (large M, small K).
        tables.clear();
        tables.reserve(len);
        // SAFETY: the nibble kernels run only where `resolve` found AVX2; the
        // build writes all 32 bytes of each of the m·quads tables, so every
        // byte below `len` is initialised before `set_len`.
        unsafe {
            build_tables_avx2(lanes, tables.as_mut_ptr());
            tables.set_len(len);
        }
    }

    /// The 16 sums of each group of 4 lanes as one vector of i16, (bit i of
    /// idx) & lane_i summed over i, then split into its low and high bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn build_tables_avx2(lanes: &[i16], tables: *mut u8) {
        let bit = |i: i16| {
            let m = |idx: i16| if idx & (1 << i) != 0 { -1i16 } else { 0 };
            _mm256_setr_epi16(m(0), m(1), m(2), m(3), m(4), m(5), m(6), m(7), m(8), m(9), m(10), m(11), m(12), m(13), m(14), m(15))
        };
        let masks = [bit(0), bit(1), bit(2), bit(3)];
        // Per 128-bit lane: its 8 low bytes, then its 8 high bytes.
        let split = _mm256_setr_epi8(
            0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
        );
        for (q, l4) in lanes.chunks_exact(4).enumerate() {
            let mut e = _mm256_setzero_si256();
            for (mask, &l) in masks.iter().zip(l4) {
                e = _mm256_add_epi16(e, _mm256_and_si256(*mask, _mm256_set1_epi16(l)));
            }
            // [lo 0..8, hi 0..8 | lo 8..16, hi 8..16] → [lo 0..16, hi 0..16].
            let bytes = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(e, split));
            _mm256_storeu_si256(tables.add(32 * q) as *mut __m256i, bytes);
        }
    }

    /// S in [block][token][row] order.
    /// `tables` and `block_sums` are buffers to reuse (any contents).
    pub(super) fn block_sums(
        lanes: &[i16],
        m: usize,
        blocked: &BlockedSigns,
        wide: bool,
        threads: usize,
        tables: &mut Vec<u8>,
        mut block_sums: Vec<i32>,
    ) -> Vec<i32> {
        let groups = blocked.groups;
        let blocks = blocked.blocks();
        build_tables(lanes, m, groups, tables);
        let tables = &tables[..];
        // Bytes of signs per pass over K: every token's tables for them stay in
        // cache while each block of signs is run against every token.
        // At least 32 bytes (256 inputs), or per-pass overhead dominates at
        // many tokens (768 tokens of a 128-wide layer made 10-byte passes).
        let pass = ((TABLE_PASS_BYTES / (m * 64)).max(32)) & !1;
        block_sums.clear();
        block_sums.resize(blocks * m * BLOCK_ROWS, 0);
        split_across_threads(blocks, m * BLOCK_ROWS, threads, &mut block_sums, |range, out| {
            // SAFETY: `nibble::block_sums` is reached only through `resolve`,
            // which checks that the CPU has AVX2, and AVX-512BW when `wide`.
            unsafe {
                if wide {
                    blocks_avx512(&tables, m, blocked, range, pass, out)
                } else {
                    blocks_avx2(&tables, m, blocked, range, pass, out)
                }
            }
        });
        block_sums
    }

    /// Blocks `range` for every token, `pass` bytes of signs at a time; `out`
    /// is [block − range.start][token][row]. `block(tbl, sig, bytes, at)` adds
    /// one block's 64 sums for one token (see `block_pass_256`); inlined into
    /// each caller, so it is compiled with that caller's target features.
    #[inline(always)]
    unsafe fn walk_blocks(
        tables: &[u8],
        m: usize,
        blocked: &BlockedSigns,
        range: std::ops::Range<usize>,
        pass: usize,
        out: &mut [i32],
        block: impl Fn(*const u8, *const u8, usize, *mut i32),
    ) {
        let groups = blocked.groups;
        let quads = groups * 2;
        assert!(out.len() >= range.len() * m * BLOCK_ROWS && blocked.bytes.len() >= range.end * groups * BLOCK_ROWS);
        assert!(tables.len() >= m * quads * 32);
        let mut j0 = 0;
        while j0 < groups {
            let j1 = (j0 + pass).min(groups);
            for b in range.clone() {
                let sig = blocked.bytes.as_ptr().add((b * groups + j0) * BLOCK_ROWS);
                for t in 0..m {
                    let tbl = tables.as_ptr().add((t * quads + 2 * j0) * 32);
                    let at = out.as_mut_ptr().add(((b - range.start) * m + t) * BLOCK_ROWS);
                    block(tbl, sig, j1 - j0, at);
                }
            }
            j0 = j1;
        }
    }

    /// [`walk_blocks`] on 32-row AVX2 registers: each block as two halves.
    #[target_feature(enable = "avx2")]
    unsafe fn blocks_avx2(
        tables: &[u8],
        m: usize,
        blocked: &BlockedSigns,
        range: std::ops::Range<usize>,
        pass: usize,
        out: &mut [i32],
    ) {
        walk_blocks(tables, m, blocked, range, pass, out, |tbl, sig, bytes, at| {
            block_pass_256(tbl, sig, bytes, at);
            block_pass_256(tbl, sig.add(32), bytes, at.add(32));
        })
    }

    /// Add 32 rows' sums over `bytes` bytes of signs for one token into `out`
    /// (row order). `tbl` points at the token's tables for the first byte,
    /// `sig` at the rows' first byte (rows of a byte are BLOCK_ROWS apart);
    /// all ranges checked by the caller.
    #[inline(always)]
    unsafe fn block_pass_256(tbl: *const u8, sig: *const u8, bytes: usize, out: *mut i32) {
        let nib = _mm256_set1_epi8(0x0F);
        // Per 16-byte lane, `unpacklo_epi8` leaves rows 0..8 of the lane in
        // acc16[0] and `unpackhi_epi8` rows 8..16 in acc16[1]; each is widened
        // into its even (E) and odd (O) i16 positions: acc32 = E0, O0, E1, O1.
        let mut acc32 = [_mm256_setzero_si256(); 4];
        let mut j = 0;
        while j < bytes {
            let jn = (j + 2).min(bytes);
            // Two bytes (four groups of 4 lanes) fit i16: |sum| ≤ 16·2047.
            let mut acc16 = [_mm256_setzero_si256(); 2];
            while j < jn {
                let t = tbl.add(j * 64);
                let a_lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(t as *const __m128i));
                let a_hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(16) as *const __m128i));
                let b_lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(32) as *const __m128i));
                let b_hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(48) as *const __m128i));
                let v = _mm256_loadu_si256(sig.add(j * BLOCK_ROWS) as *const __m256i);
                let ia = _mm256_and_si256(v, nib);
                let ib = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib);
                let al = _mm256_shuffle_epi8(a_lo, ia);
                let ah = _mm256_shuffle_epi8(a_hi, ia);
                let bl = _mm256_shuffle_epi8(b_lo, ib);
                let bh = _mm256_shuffle_epi8(b_hi, ib);
                let lo = _mm256_add_epi16(_mm256_unpacklo_epi8(al, ah), _mm256_unpacklo_epi8(bl, bh));
                let hi = _mm256_add_epi16(_mm256_unpackhi_epi8(al, ah), _mm256_unpackhi_epi8(bl, bh));
                acc16[0] = _mm256_add_epi16(acc16[0], lo);
                acc16[1] = _mm256_add_epi16(acc16[1], hi);
                j += 1;
            }
            // Widen by shifts (no lane-crossing shuffle): even i16 positions,
            // then odd ones, each as i32.
            for (i, a) in acc16.iter().enumerate() {
                let even = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(*a));
                let odd = _mm256_srai_epi32::<16>(*a);
                acc32[2 * i] = _mm256_add_epi32(acc32[2 * i], even);
                acc32[2 * i + 1] = _mm256_add_epi32(acc32[2 * i + 1], odd);
            }
        }
        // Back to row order: interleaving E and O gives rows [0..4 | 16..20],
        // [4..8 | 20..24] (from E0, O0) and [8..12 | 24..28], [12..16 | 28..32].
        let a = _mm256_unpacklo_epi32(acc32[0], acc32[1]);
        let b = _mm256_unpackhi_epi32(acc32[0], acc32[1]);
        let c = _mm256_unpacklo_epi32(acc32[2], acc32[3]);
        let d = _mm256_unpackhi_epi32(acc32[2], acc32[3]);
        let rows = [
            _mm256_permute2x128_si256::<0x20>(a, b),
            _mm256_permute2x128_si256::<0x20>(c, d),
            _mm256_permute2x128_si256::<0x31>(a, b),
            _mm256_permute2x128_si256::<0x31>(c, d),
        ];
        for (i, r) in rows.iter().enumerate() {
            let p = out.add(8 * i) as *mut __m256i;
            _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), *r));
        }
    }

    /// [`walk_blocks`] on 64-row AVX-512 registers.
    #[target_feature(enable = "avx512bw")]
    unsafe fn blocks_avx512(
        tables: &[u8],
        m: usize,
        blocked: &BlockedSigns,
        range: std::ops::Range<usize>,
        pass: usize,
        out: &mut [i32],
    ) {
        walk_blocks(tables, m, blocked, range, pass, out, |tbl, sig, bytes, at| block_pass_512(tbl, sig, bytes, at))
    }

    /// [`block_pass_256`] for all 64 rows of a block in one register.
    #[inline(always)]
    unsafe fn block_pass_512(tbl: *const u8, sig: *const u8, bytes: usize, out: *mut i32) {
        let nib = _mm512_set1_epi8(0x0F);
        let mut acc32 = [_mm512_setzero_si512(); 4];
        let mut j = 0;
        while j < bytes {
            let jn = (j + 2).min(bytes);
            let mut acc16 = [_mm512_setzero_si512(); 2];
            while j < jn {
                let t = tbl.add(j * 64);
                let a_lo = _mm512_broadcast_i32x4(_mm_loadu_si128(t as *const __m128i));
                let a_hi = _mm512_broadcast_i32x4(_mm_loadu_si128(t.add(16) as *const __m128i));
                let b_lo = _mm512_broadcast_i32x4(_mm_loadu_si128(t.add(32) as *const __m128i));
                let b_hi = _mm512_broadcast_i32x4(_mm_loadu_si128(t.add(48) as *const __m128i));
                let v = _mm512_loadu_si512(sig.add(j * BLOCK_ROWS) as *const _);
                let ia = _mm512_and_si512(v, nib);
                let ib = _mm512_and_si512(_mm512_srli_epi16::<4>(v), nib);
                let al = _mm512_shuffle_epi8(a_lo, ia);
                let ah = _mm512_shuffle_epi8(a_hi, ia);
                let bl = _mm512_shuffle_epi8(b_lo, ib);
                let bh = _mm512_shuffle_epi8(b_hi, ib);
                let lo = _mm512_add_epi16(_mm512_unpacklo_epi8(al, ah), _mm512_unpacklo_epi8(bl, bh));
                let hi = _mm512_add_epi16(_mm512_unpackhi_epi8(al, ah), _mm512_unpackhi_epi8(bl, bh));
                acc16[0] = _mm512_add_epi16(acc16[0], lo);
                acc16[1] = _mm512_add_epi16(acc16[1], hi);
                j += 1;
            }
            for (i, a) in acc16.iter().enumerate() {
                let even = _mm512_srai_epi32::<16>(_mm512_slli_epi32::<16>(*a));
                let odd = _mm512_srai_epi32::<16>(*a);
                acc32[2 * i] = _mm512_add_epi32(acc32[2 * i], even);
                acc32[2 * i + 1] = _mm512_add_epi32(acc32[2 * i + 1], odd);
            }
        }
        // Back to row order: per 128-bit lane L, interleaving E and O gives
        // rows 16L + 0..4, 4..8 (E0, O0) and 8..12, 12..16 (E1, O1).
        let a = _mm512_unpacklo_epi32(acc32[0], acc32[1]);
        let b = _mm512_unpackhi_epi32(acc32[0], acc32[1]);
        let c = _mm512_unpacklo_epi32(acc32[2], acc32[3]);
        let d = _mm512_unpackhi_epi32(acc32[2], acc32[3]);
        let ab01 = _mm512_shuffle_i32x4::<0b01_00_01_00>(a, b);
        let cd01 = _mm512_shuffle_i32x4::<0b01_00_01_00>(c, d);
        let ab23 = _mm512_shuffle_i32x4::<0b11_10_11_10>(a, b);
        let cd23 = _mm512_shuffle_i32x4::<0b11_10_11_10>(c, d);
        let rows = [
            _mm512_shuffle_i32x4::<0b10_00_10_00>(ab01, cd01),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(ab01, cd01),
            _mm512_shuffle_i32x4::<0b10_00_10_00>(ab23, cd23),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(ab23, cd23),
        ];
        for (i, r) in rows.iter().enumerate() {
            let p = out.add(16 * i) as *mut _;
            _mm512_storeu_si512(p, _mm512_add_epi32(_mm512_loadu_si512(p), *r));
        }
    }
}

/// The portable kernel: a 256-entry table per byte of signs.
mod byte_table {
    use super::split_across_threads;

    /// Tokens processed together by the multi-token path (one AVX2 register of i16).
    const TOKEN_BLOCK: usize = 16;
    /// Bytes of lookup table built at a time (kept within a typical L2 cache).
    const TABLE_BYTES: usize = 256 * 1024;

    trait TableEntry: Copy + Default + Send + Sync + std::ops::Add<Output = Self> + Into<i32> {
        /// The sum of two table entries cannot overflow the entry type. True for
        /// i16 tables, which are only used when lane_bits <= 12: 2·8·2047 <= 32767.
        const PAIRS_FIT: bool;
        fn from_lane(l: i16) -> Self;
    }

    /// The TB entries starting at `at`. `at` is always j·256·TB + byte·TB with
    /// j < the chunk's groups and byte < 256, inside the table; checked in debug builds.
    #[inline(always)]
    fn entry<E: TableEntry, const TB: usize>(table: &[E], at: usize) -> &[E; TB] {
        debug_assert!(at + TB <= table.len());
        // SAFETY: see above; the bounds check costs a third of the inner loop.
        unsafe { &*(table.as_ptr().add(at) as *const [E; TB]) }
    }

    impl TableEntry for i16 {
        const PAIRS_FIT: bool = true;
        #[inline(always)]
        fn from_lane(l: i16) -> Self {
            l
        }
    }
    impl TableEntry for i32 {
        const PAIRS_FIT: bool = false;
        #[inline(always)]
        fn from_lane(l: i16) -> Self {
            l as i32
        }
    }

    /// S[t][o] as an m×n row-major i32 matrix; `small` when lane_bits ≤ 12 (i16 tables).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sign_sums(lanes: &[i16], m: usize, kp: usize, signs: &[u8], groups: usize, n: usize, small: bool, threads: usize) -> Vec<i32> {
        if m < 4 {
            bit_sums::<1>(lanes, m, kp, signs, groups, n, small, threads)
        } else {
            bit_sums::<TOKEN_BLOCK>(lanes, m, kp, signs, groups, n, small, threads)
        }
    }

    fn bit_sums<const TB: usize>(
        lanes: &[i16],
        m: usize,
        kp: usize,
        signs: &[u8],
        groups: usize,
        n: usize,
        small: bool,
        threads: usize,
    ) -> Vec<i32> {
        let mut sums = vec![0i32; m * n];
        for t0 in (0..m).step_by(TB) {
            let tb = TB.min(m - t0);
            // Token-interleaved lanes for this block: blk[k*TB + t].
            let mut blk = vec![0i16; kp * TB];
            for t in 0..tb {
                for k in 0..kp {
                    blk[k * TB + t] = lanes[(t0 + t) * kp + k];
                }
            }
            let mut block_out = vec![[0i32; TB]; n];
            split_across_threads(n, 1, threads, &mut block_out, |range, out| {
                if small {
                    dispatch::<i16, TB>(&blk, signs, groups, range, out)
                } else {
                    dispatch::<i32, TB>(&blk, signs, groups, range, out)
                }
            });
            for (o, v) in block_out.iter().enumerate() {
                for t in 0..tb {
                    sums[(t0 + t) * n + o] = v[t];
                }
            }
        }
        sums
    }

    fn dispatch<E: TableEntry, const TB: usize>(
        blk: &[i16],
        signs: &[u8],
        groups: usize,
        rows: std::ops::Range<usize>,
        out: &mut [[i32; TB]],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { table_kernel_avx2::<E, TB>(blk, signs, groups, rows, out) };
                return;
            }
        }
        table_kernel::<E, TB, false>(blk, signs, groups, rows, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn table_kernel_avx2<E: TableEntry, const TB: usize>(
        blk: &[i16],
        signs: &[u8],
        groups: usize,
        rows: std::ops::Range<usize>,
        out: &mut [[i32; TB]],
    ) {
        table_kernel::<E, TB, true>(blk, signs, groups, rows, out)
    }

    /// One output row of the 16-token kernel with i16 tables: two entries are added
    /// in i16 (they fit, see `PAIRS_FIT`), then widened to i32 once per pair.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_sums_tb16_i16_avx2(table: *const i16, row: &[u8], per_group: usize) -> [i32; 16] {
        use std::arch::x86_64::*;
        let mut lo = _mm256_setzero_si256();
        let mut hi = _mm256_setzero_si256();
        let at = |j: usize, byte: u8| table.add(j * per_group + byte as usize * 16) as *const __m256i;
        let mut j = 0;
        while j + 1 < row.len() {
            let s = _mm256_add_epi16(_mm256_loadu_si256(at(j, row[j])), _mm256_loadu_si256(at(j + 1, row[j + 1])));
            lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
            hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(s)));
            j += 2;
        }
        if j < row.len() {
            let s = _mm256_loadu_si256(at(j, row[j]));
            lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
            hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(s)));
        }
        let mut out = [0i32; 16];
        _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, lo);
        _mm256_storeu_si256(out.as_mut_ptr().add(8) as *mut __m256i, hi);
        out
    }

    /// For each byte of signs (8 inputs) a table of the 256 possible sums of its
    /// lanes, one entry per token of the block; then one lookup per byte per row.
    #[inline(always)]
    fn table_kernel<E: TableEntry, const TB: usize, const AVX2: bool>(
        blk: &[i16],
        signs: &[u8],
        groups: usize,
        rows: std::ops::Range<usize>,
        out: &mut [[i32; TB]],
    ) {
        let per_group = 256 * TB;
        let chunk = (TABLE_BYTES / (per_group * std::mem::size_of::<E>())).max(1);
        let mut table = vec![E::default(); chunk.min(groups) * per_group];
        for g0 in (0..groups).step_by(chunk) {
            let gc = chunk.min(groups - g0);
            for j in 0..gc {
                let tbl = &mut table[j * per_group..(j + 1) * per_group];
                let lanes = &blk[(g0 + j) * 8 * TB..(g0 + j + 1) * 8 * TB];
                for b in 1..256usize {
                    let low = b & (b - 1);
                    let bit = b.trailing_zeros() as usize;
                    let (lo, hi) = tbl.split_at_mut(b * TB);
                    let src: &[E; TB] = lo[low * TB..low * TB + TB].try_into().unwrap();
                    let dst: &mut [E; TB] = (&mut hi[..TB]).try_into().unwrap();
                    let add: &[i16; TB] = lanes[bit * TB..bit * TB + TB].try_into().unwrap();
                    for t in 0..TB {
                        dst[t] = src[t] + E::from_lane(add[t]);
                    }
                }
            }
            let table = &table[..gc * per_group];
            for (o, acc_out) in rows.clone().zip(out.iter_mut()) {
                let row = &signs[o * groups + g0..o * groups + g0 + gc];
                #[cfg(target_arch = "x86_64")]
                if AVX2 && TB == 16 && E::PAIRS_FIT {
                    // SAFETY: AVX2 is only set by the dispatcher after detecting it;
                    // PAIRS_FIT holds only for i16 entries, so the table is i16.
                    let sums = unsafe { row_sums_tb16_i16_avx2(table.as_ptr() as *const i16, row, per_group) };
                    for t in 0..TB {
                        acc_out[t] += sums[t];
                    }
                    continue;
                }
                let mut acc = [0i32; TB];
                for (j, &byte) in row.iter().enumerate() {
                    let e = entry::<E, TB>(table, j * per_group + byte as usize * TB);
                    for t in 0..TB {
                        acc[t] += e[t].into();
                    }
                }
                for t in 0..TB {
                    acc_out[t] += acc[t];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::SplitMix64;

    /// Rows split across 2 and 3 threads give the sums of one thread, on every
    /// kernel this CPU runs (one thread is checked against the definition by
    /// core/tests/reference_props.rs; real layers only split above
    /// THREADED_PRODUCTS, too large for a quick test of the definition).
    #[test]
    fn threaded_splits_equal_one_thread() {
        let mut rng = SplitMix64(11);
        for (m, k, n) in [(1usize, 1000usize, 300usize), (5, 203, 129), (20, 77, 64)] {
            let groups = k.div_ceil(8);
            let signs: Vec<u8> = (0..n)
                .flat_map(|_| {
                    let mut row: Vec<u8> = (0..groups).map(|_| rng.range_i64(0, 255) as u8).collect();
                    if k % 8 != 0 {
                        row[groups - 1] &= (1u8 << (k % 8)) - 1;
                    }
                    row
                })
                .collect();
            let mut lanes = vec![0i16; m * groups * 8];
            for t in 0..m {
                for i in 0..k {
                    lanes[t * groups * 8 + i] = rng.range_i64(-2047, 2047) as i16;
                }
            }
            for kernel in SignKernel::ALL {
                let Ok(kernel) = resolve(kernel, 12) else { continue };
                let collect = |threads| {
                    let mut v = Vec::new();
                    sign_sums_on(kernel, &lanes, m, &signs, None, groups, n, 12, threads, &mut KernelScratch::default()).for_each_run(|t, o0, run| v.push((t, o0, run.to_vec())));
                    v.sort();
                    v
                };
                let one = collect(1);
                for threads in [2, 3] {
                    assert_eq!(collect(threads), one, "{kernel:?}, {threads} threads, M {m} K {k} N {n}");
                }
            }
        }
    }
}
