//! Sign packing, exactly as the official OneBit code: 8 weights per byte along
//! the input dimension K, least significant bit first; bit 1 means -1, bit 0 +1.
//! A row of N×K signs occupies `packed_row_bytes(K)` bytes; padding bits past K
//! are 0 (they meet zero activations, so their value never matters).

/// Bytes per output row for `k` inputs.
pub const fn packed_row_bytes(k: usize) -> usize {
    k.div_ceil(8)
}

/// Pack the signs of an N×K row-major weight matrix. `w < 0` packs as 1 (-1);
/// `w >= 0` (including +0.0 and -0.0) packs as 0 (+1), like `sign` with
/// sign(0) taken as +1.
pub fn pack_signs(weights: &[f32], n: usize, k: usize) -> Vec<u8> {
    assert_eq!(weights.len(), n * k, "pack_signs: weights must be N×K");
    let rb = packed_row_bytes(k);
    let mut out = vec![0u8; n * rb];
    for (row, dst) in weights.chunks_exact(k.max(1)).zip(out.chunks_exact_mut(rb.max(1))) {
        for (i, &w) in row.iter().enumerate() {
            if w < 0.0 {
                dst[i / 8] |= 1 << (i % 8);
            }
        }
    }
    out
}

/// Pack ±1 signs given as i8 (any negative value is -1, anything else +1).
pub fn pack_sign_values(signs: &[i8], n: usize, k: usize) -> Vec<u8> {
    assert_eq!(signs.len(), n * k, "pack_sign_values: signs must be N×K");
    let rb = packed_row_bytes(k);
    let mut out = vec![0u8; n * rb];
    for r in 0..n {
        for i in 0..k {
            if signs[r * k + i] < 0 {
                out[r * rb + i / 8] |= 1 << (i % 8);
            }
        }
    }
    out
}

/// Unpack to ±1 values, N×K row-major.
pub fn unpack_signs(packed: &[u8], n: usize, k: usize) -> Vec<i8> {
    let rb = packed_row_bytes(k);
    assert_eq!(packed.len(), n * rb, "unpack_signs: packed must be N×ceil(K/8)");
    let mut out = Vec::with_capacity(n * k);
    for r in 0..n {
        for i in 0..k {
            out.push(1 - 2 * ((packed[r * rb + i / 8] >> (i % 8)) & 1) as i8);
        }
    }
    out
}

/// The sign bit (1 = -1) of weight (n, k).
#[inline(always)]
pub fn sign_bit(packed: &[u8], k_total: usize, n: usize, k: usize) -> u8 {
    (packed[n * packed_row_bytes(k_total) + k / 8] >> (k % 8)) & 1
}

/// True when no padding bit past K is set; the format reader insists on it.
pub fn padding_is_clear(packed: &[u8], n: usize, k: usize) -> bool {
    let rb = packed_row_bytes(k);
    if k % 8 == 0 || rb == 0 {
        return true;
    }
    let mask: u8 = !((1u8 << (k % 8)) - 1);
    (0..n).all(|r| packed[r * rb + rb - 1] & mask == 0)
}

/// The official OneBit code keeps packed signs as torch.int8 (one byte per 8
/// weights, same bit order). Reinterpreting the bytes is the whole conversion.
pub fn from_official_int8(packed: &[i8]) -> Vec<u8> {
    packed.iter().map(|&b| b as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_matches_official_code() {
        // weights along K: -1 +1 +1 +1 +1 +1 +1 -1 | -1
        let w = [-1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -2.0];
        let p = pack_signs(&w, 1, 9);
        assert_eq!(p, vec![0b1000_0001, 0b0000_0001]);
        assert_eq!(unpack_signs(&p, 1, 9), vec![-1, 1, 1, 1, 1, 1, 1, -1, -1]);
        assert!(padding_is_clear(&p, 1, 9));
        assert!(!padding_is_clear(&[0, 0b10], 1, 9));
        assert_eq!(from_official_int8(&[-127, 1]), vec![0b1000_0001, 1]);
    }

    #[test]
    fn zero_packs_as_plus_one() {
        assert_eq!(pack_signs(&[0.0, -0.0, 1e-30], 1, 3), vec![0]);
    }
}
