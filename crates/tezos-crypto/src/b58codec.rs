//! Bitcoin-alphabet base58, the digits under every Tezos address, key and signature.
//!
//! Written here rather than taken from `bs58` for speed: `bs58` converts one byte and one
//! digit at a time, which cost 9 µs per signature encoded (5 % of the signer's CPU per
//! request in the benchmark). This converts through wide limbs (three bytes or five digits
//! per step) and produces exactly `bs58`'s output, which the tests check.
//!
//! The caller owns every buffer, so secret material can be converted in buffers it wipes.

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// 58^5: the base of the limbs holding digits while encoding, and of digit groups while
/// decoding. It is below 2^30, so a limb times 2^24 plus a carry fits in a u64.
const DIGITS_PER_LIMB: usize = 5;
const LIMB: u64 = 58u64.pow(DIGITS_PER_LIMB as u32);

/// Longer strings are refused before any arithmetic: the conversion is quadratic. The
/// longest Tezos base58check string is an ML-DSA-44 signature (`mdsig…`, 3316 digits).
pub(crate) const MAX_DIGITS: usize = 3400;

/// Digit value of each ASCII byte, 0xff where the byte is not a base58 digit.
// Compile-time indexing: an out-of-range index fails the build, it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const DIGIT_VALUES: [u8; 128] = {
    let mut t = [0xffu8; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Append the base58 digits of `data` to `out`. `limbs` is scratch space (cleared first):
/// pass a wiped buffer when `data` is secret.
pub(crate) fn encode_into(data: &[u8], limbs: &mut Vec<u32>, out: &mut Vec<u8>) {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    let rest = data.get(zeros..).unwrap_or_default();
    // Little-endian limbs in base 58^5; fold the bytes in three at a time.
    limbs.clear();
    limbs.reserve(rest.len() * 8 / 29 + 2);
    let mut chunks = rest.chunks(3);
    // The first chunk takes the leftover bytes so every later one is exactly three.
    let head = rest.len() % 3;
    if head != 0 {
        chunks = rest.get(head..).unwrap_or_default().chunks(3);
        fold_bytes(limbs, rest.get(..head).unwrap_or_default());
    }
    for chunk in chunks {
        fold_bytes(limbs, chunk);
    }
    out.reserve(zeros + limbs.len() * DIGITS_PER_LIMB);
    out.extend(std::iter::repeat_n(b'1', zeros));
    let start = out.len();
    // Most significant limb first; its leading zero digits are not written.
    let mut first = true;
    for &limb in limbs.iter().rev() {
        let mut digits = [0u8; DIGITS_PER_LIMB];
        let mut v = limb;
        for d in digits.iter_mut().rev() {
            *d = (v % 58) as u8;
            v /= 58;
        }
        let skip = if first {
            digits.iter().take_while(|&&d| d == 0).count()
        } else {
            0
        };
        first = false;
        out.extend(
            digits
                .iter()
                .skip(skip)
                .map(|&d| ALPHABET.get(usize::from(d)).copied().unwrap_or(b'1')),
        );
    }
    debug_assert!(out.get(start..).is_none_or(|d| d.first() != Some(&b'1')));
}

/// limbs = limbs * 256^len(bytes) + bytes.
fn fold_bytes(limbs: &mut Vec<u32>, bytes: &[u8]) {
    let mut carry = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let shift = 8 * bytes.len() as u32;
    for limb in limbs.iter_mut() {
        let x = (u64::from(*limb) << shift) + carry;
        *limb = (x % LIMB) as u32;
        carry = x / LIMB;
    }
    while carry > 0 {
        limbs.push((carry % LIMB) as u32);
        carry /= LIMB;
    }
}

/// Why digits did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The byte at this index of the string is not a base58 digit.
    InvalidCharacter(usize),
    TooLong(usize),
}

/// Append the bytes that the base58 digits `s` stand for to `out`. `limbs` is scratch
/// space (cleared first): pass a wiped buffer when `s` is secret.
pub(crate) fn decode_into(
    s: &[u8],
    limbs: &mut Vec<u32>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    if s.len() > MAX_DIGITS {
        return Err(DecodeError::TooLong(s.len()));
    }
    if let Some(bad) = s.iter().position(|&c| digit(c).is_none()) {
        return Err(DecodeError::InvalidCharacter(bad));
    }
    let ones = s.iter().take_while(|&&c| c == b'1').count();
    let rest = s.get(ones..).unwrap_or_default();
    // Little-endian limbs in base 2^32; fold the digits in five at a time.
    limbs.clear();
    limbs.reserve(rest.len() * 6 / 32 + 2);
    let head = rest.len() % DIGITS_PER_LIMB;
    if head != 0 {
        fold_digits(limbs, rest.get(..head).unwrap_or_default());
    }
    for group in rest.get(head..).unwrap_or_default().chunks(DIGITS_PER_LIMB) {
        fold_digits(limbs, group);
    }
    out.reserve(ones + limbs.len() * 4);
    out.extend(std::iter::repeat_n(0u8, ones));
    let mut leading = true;
    for limb in limbs.iter().rev() {
        for b in limb.to_be_bytes() {
            if leading && b == 0 {
                continue;
            }
            leading = false;
            out.push(b);
        }
    }
    Ok(())
}

fn digit(c: u8) -> Option<u8> {
    DIGIT_VALUES
        .get(usize::from(c))
        .copied()
        .filter(|&v| v != 0xff)
}

/// limbs = limbs * 58^len(group) + value(group). Every byte was checked to be a digit.
fn fold_digits(limbs: &mut Vec<u32>, group: &[u8]) {
    let (scale, value) = group.iter().fold((1u64, 0u64), |(scale, value), &c| {
        (scale * 58, value * 58 + u64::from(digit(c).unwrap_or(0)))
    });
    let mut carry = value;
    for limb in limbs.iter_mut() {
        let x = u64::from(*limb) * scale + carry;
        *limb = x as u32;
        carry = x >> 32;
    }
    while carry > 0 {
        limbs.push(carry as u32);
        carry >>= 32;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(data: &[u8]) -> String {
        let mut out = Vec::new();
        encode_into(data, &mut Vec::new(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn dec(s: &str) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        decode_into(s.as_bytes(), &mut Vec::new(), &mut out).map(|()| out)
    }

    #[test]
    fn edge_cases_match_bs58() {
        let cases: [&[u8]; 9] = [
            b"",
            &[0],
            &[0, 0, 0],
            &[0, 0, 1],
            &[57],
            &[58],
            &[0xff; 3],
            &[0xff; 73],
            b"hello world",
        ];
        for data in cases {
            let expected = bs58::encode(data).into_string();
            assert_eq!(enc(data), expected, "{data:?}");
            assert_eq!(dec(&expected).unwrap(), data);
        }
        assert_eq!(dec("").unwrap(), b"");
        assert_eq!(dec("111").unwrap(), [0, 0, 0]);
    }

    #[test]
    fn bad_characters_are_located_and_long_strings_refused() {
        assert_eq!(dec("tz1O0"), Err(DecodeError::InvalidCharacter(3)));
        assert_eq!(dec("abc l"), Err(DecodeError::InvalidCharacter(3)));
        assert_eq!(dec("ab\u{e9}"), Err(DecodeError::InvalidCharacter(2)));
        let long = "z".repeat(MAX_DIGITS + 1);
        assert_eq!(dec(&long), Err(DecodeError::TooLong(MAX_DIGITS + 1)));
        assert!(dec(&"z".repeat(MAX_DIGITS)).is_ok());
    }

    fn bytes_with_leading_zeros() -> impl Strategy<Value = Vec<u8>> {
        (0usize..4, proptest::collection::vec(any::<u8>(), 0..120)).prop_map(|(z, mut v)| {
            let mut out = vec![0u8; z];
            out.append(&mut v);
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn encoding_is_bs58s_and_decodes_back(data in bytes_with_leading_zeros()) {
            let s = enc(&data);
            prop_assert_eq!(&s, &bs58::encode(&data).into_string());
            prop_assert_eq!(dec(&s).unwrap(), data);
        }

        #[test]
        fn any_string_decodes_as_bs58_decodes_it(s in "[1-9A-Za-z0OIl+ ]{0,100}") {
            let ours = dec(&s);
            match bs58::decode(&s).into_vec() {
                Ok(v) => prop_assert_eq!(ours, Ok(v)),
                Err(bs58::decode::Error::InvalidCharacter { index, .. }) => {
                    prop_assert_eq!(ours, Err(DecodeError::InvalidCharacter(index)))
                }
                Err(e) => prop_assert!(false, "bs58: {e:?}"),
            }
        }
    }
}
