//! Element types. The narrow floats are stored as their bits
//! (`#[repr(transparent)]` newtypes), converted on the host with
//! round-to-nearest-even, as the library does.
use kvserve_sys as sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum DType {
    F16 = sys::KVS_F16,
    BF16 = sys::KVS_BF16,
    F32 = sys::KVS_F32,
    Fp8E4m3 = sys::KVS_FP8_E4M3,
    Fp8E5m2 = sys::KVS_FP8_E5M2,
    Int32 = sys::KVS_INT32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::Fp8E4m3 | DType::Fp8E5m2 => 1,
            DType::F32 | DType::Int32 => 4,
        }
    }
    pub(crate) fn from_c(v: sys::kvs_dtype) -> Option<DType> {
        [DType::F16, DType::BF16, DType::F32, DType::Fp8E4m3, DType::Fp8E5m2, DType::Int32]
            .into_iter()
            .find(|d| *d as i32 == v)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct F16(pub u16);
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct BF16(pub u16);
/// fp8 e4m3 ("fn": no infinities, largest finite 448), raw bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Fp8E4m3(pub u8);
/// fp8 e5m2 (IEEE-like), raw bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Fp8E5m2(pub u8);

impl BF16 {
    pub fn from_f32(x: f32) -> BF16 {
        let bits = x.to_bits();
        if x.is_nan() {
            return BF16(((bits >> 16) as u16) | 0x40); // stays NaN
        }
        let round = 0x7fff + ((bits >> 16) & 1);
        BF16(((bits + round) >> 16) as u16)
    }
    pub fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
}

impl F16 {
    pub fn from_f32(x: f32) -> F16 {
        let bits = x.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let abs = bits & 0x7fff_ffff;
        if abs > 0x7f80_0000 {
            return F16(sign | 0x7e00); // NaN
        }
        if abs >= 0x4780_0000 {
            return F16(sign | 0x7c00); // >= 65536: infinity (65520 up to it rounds there below)
        }
        let exp = (abs >> 23) as i32 - 127;
        if exp >= -14 {
            // Normal: drop 13 mantissa bits, rounding to nearest even (a carry may raise the exponent).
            let mant = abs & 0x7f_ffff;
            let half = (((exp + 15) as u32) << 10) | (mant >> 13);
            let rest = mant & 0x1fff;
            let up = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
            F16(sign | (half + up as u32) as u16)
        } else if exp >= -25 {
            // Subnormal: value / 2^-24, rounded to nearest even.
            let mant = (abs & 0x7f_ffff) | 0x80_0000;
            let shift = (-exp - 14 + 13) as u32; // bits dropped
            let half = mant >> shift;
            let rest = mant & ((1 << shift) - 1);
            let mid = 1 << (shift - 1);
            let up = rest > mid || (rest == mid && half & 1 == 1);
            F16(sign | (half + up as u32) as u16)
        } else {
            F16(sign)
        }
    }
    pub fn to_f32(self) -> f32 {
        let sign = ((self.0 & 0x8000) as u32) << 16;
        let exp = ((self.0 >> 10) & 0x1f) as u32;
        let mant = (self.0 & 0x3ff) as u32;
        let bits = match exp {
            0 if mant == 0 => sign,
            0 => {
                let magnitude = mant as f32 * 2f32.powi(-24); // subnormal
                return if sign != 0 { -magnitude } else { magnitude };
            }
            31 => sign | 0x7f80_0000 | (mant << 13),
            _ => sign | ((exp + 112) << 23) | (mant << 13),
        };
        f32::from_bits(bits)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A type a tensor may hold. Sealed: only the library's element types.
pub trait Element: sealed::Sealed + Copy + 'static {
    const DTYPE: DType;
}

macro_rules! elements {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t { const DTYPE: DType = DType::$d; }
    )*};
}
elements!(f32 => F32, i32 => Int32, F16 => F16, BF16 => BF16, Fp8E4m3 => Fp8E4m3, Fp8E5m2 => Fp8E5m2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounds_to_nearest_even_and_saturates_to_infinity() {
        let cases = [
            (1.0f32, 0x3c00u16),
            (-2.0, 0xc000),
            (0.1, 0x2e66),
            (65504.0, 0x7bff),
            (65519.0, 0x7bff),
            (65520.0, 0x7c00),
            (1e9, 0x7c00),
            (2f32.powi(-24), 0x0001),
            (2f32.powi(-25), 0x0000),       // a tie: to even (0)
            (1.5 * 2f32.powi(-24), 0x0002), // a tie: to even (2)
            (1.0 + 2f32.powi(-11), 0x3c00), // a tie below: stays even
            (1.0 + 3.0 * 2f32.powi(-11), 0x3c02),
            (2f32.powi(-14), 0x0400),
        ];
        for (x, bits) in cases {
            assert_eq!(F16::from_f32(x).0, bits, "{x}");
        }
        assert!(F16::from_f32(f32::NAN).to_f32().is_nan());
        for bits in (0u16..0x7c00).step_by(7) {
            assert_eq!(F16::from_f32(F16(bits).to_f32()).0, bits, "round trip of {bits:#x}");
            assert_eq!(F16(bits | 0x8000).to_f32(), -F16(bits).to_f32());
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(BF16::from_f32(1.0).0, 0x3f80);
        assert_eq!(BF16::from_f32(f32::from_bits(0x3f80_8000)).0, 0x3f80); // tie: even
        assert_eq!(BF16::from_f32(f32::from_bits(0x3f81_8000)).0, 0x3f82); // tie: even
        assert_eq!(BF16::from_f32(f32::from_bits(0x3f80_8001)).0, 0x3f81);
        assert!(BF16::from_f32(f32::NAN).to_f32().is_nan());
        assert_eq!(BF16(0xc040).to_f32(), -3.0);
    }
}
