//! Which UTF-8 characters are letters (Rust's `char::is_alphabetic`, the word apps' rule),
//! fast for two-byte characters (Latin with accents, Greek, Cyrillic, Hebrew, Arabic): a
//! table of those 1,920 code points, made once, where Unicode's tables are searched for
//! each character.

use std::sync::LazyLock;

/// Bit `c` is set when code point `c` (below U+0800) is alphabetic.
static BELOW_U0800: LazyLock<[u64; 32]> = LazyLock::new(|| {
    let mut table = [0u64; 32];
    for c in (0..0x800u32).filter_map(char::from_u32) {
        if c.is_alphabetic() {
            let c = c as usize;
            table[c / 64] |= 1 << (c % 64);
        }
    }
    table
});

/// The character `bytes` start with (at a non-ASCII byte): whether it is a letter, and its
/// width in bytes; `None` if they do not start with a whole UTF-8 character.
#[inline]
pub fn wide_letter(bytes: &[u8]) -> Option<(bool, usize)> {
    if let [lead @ 0xC2..=0xDF, next, ..] = *bytes {
        if next & 0xC0 == 0x80 {
            let c = (usize::from(lead & 0x1F) << 6) | usize::from(next & 0x3F);
            return Some((BELOW_U0800[c / 64] >> (c % 64) & 1 == 1, 2));
        }
    }
    let width = match *bytes.first()? {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let c = std::str::from_utf8(bytes.get(..width)?).ok()?.chars().next()?;
    Some((c.is_alphabetic(), width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wide_character_is_classed_as_unicode_classes_it() {
        let wide = (0x80..0x11_0000u32).filter_map(char::from_u32);
        for c in wide.step_by(7).chain((0x80..0x800).filter_map(char::from_u32)) {
            let mut bytes = [0u8; 4];
            let encoded = c.encode_utf8(&mut bytes).as_bytes();
            assert_eq!(wide_letter(encoded), Some((c.is_alphabetic(), c.len_utf8())), "{c:?}");
            // Followed by more text, as in a line.
            let mut line = encoded.to_vec();
            line.extend_from_slice("ab".as_bytes());
            assert_eq!(wide_letter(&line), Some((c.is_alphabetic(), c.len_utf8())), "{c:?}");
        }
    }

    #[test]
    fn broken_utf8_is_no_character() {
        for bytes in [
            &b"\xc3"[..],
            b"\xc3a",
            b"\xc0\x80",
            b"\xc1\xbf",
            b"\xe2\x82",
            b"\xff",
            b"\x80",
            b"\xf8\x80\x80\x80",
            b"",
        ] {
            assert_eq!(wide_letter(bytes), None, "{bytes:?}");
        }
    }
}
