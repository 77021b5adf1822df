//! Which UTF-8 characters are letters (Rust's `char::is_alphabetic`, the word apps' rule),
//! fast for the characters of two and three bytes (Latin with accents, Greek, Cyrillic,
//! Hebrew, Arabic, the Indic scripts, CJK, Hangul): a table of the 65,536 code points of
//! the Basic Multilingual Plane (8 KiB), made once from Unicode's tables, which would
//! otherwise be searched for each character.

use std::sync::LazyLock;

/// Bit `c` is set when code point `c` (below U+10000) is alphabetic.
static BMP_LETTERS: LazyLock<Box<[u64; 1024]>> = LazyLock::new(|| {
    let mut table = Box::new([0u64; 1024]);
    for c in (0..0x10000u32).filter_map(char::from_u32) {
        if c.is_alphabetic() {
            let c = c as usize;
            table[c / 64] |= 1 << (c % 64);
        }
    }
    table
});

fn in_bmp_table(c: usize) -> bool {
    BMP_LETTERS[c / 64] >> (c % 64) & 1 == 1
}

/// Whether `b` continues a UTF-8 character.
fn continues(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The character `bytes` start with (at a non-ASCII byte): whether it is a letter, and its
/// width in bytes; `None` if they do not start with a whole UTF-8 character.
#[inline]
pub fn wide_letter(bytes: &[u8]) -> Option<(bool, usize)> {
    match *bytes {
        [lead @ 0xC2..=0xDF, b1, ..] if continues(b1) => {
            let c = (usize::from(lead & 0x1F) << 6) | usize::from(b1 & 0x3F);
            Some((in_bmp_table(c), 2))
        }
        // Not overlong (E0 needs A0 and up), not a surrogate (ED needs below A0).
        [lead @ 0xE0..=0xEF, b1, b2, ..]
            if continues(b1) && continues(b2) && !(lead == 0xE0 && b1 < 0xA0) && !(lead == 0xED && b1 >= 0xA0) =>
        {
            let c = (usize::from(lead & 0x0F) << 12) | (usize::from(b1 & 0x3F) << 6) | usize::from(b2 & 0x3F);
            Some((in_bmp_table(c), 3))
        }
        [0xF0..=0xF7, ..] => {
            let c = std::str::from_utf8(bytes.get(..4)?).ok()?.chars().next()?;
            Some((c.is_alphabetic(), 4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wide_character_is_classed_as_unicode_classes_it() {
        let wide = (0x80..0x11_0000u32).filter_map(char::from_u32);
        for c in wide.step_by(7).chain((0x80..0x10000).filter_map(char::from_u32)) {
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
            b"\xe2\x82a",
            b"\xe0\x9f\xbf",
            b"\xed\xa0\x80",
            b"\xf0\x9f\x98",
            b"\xf4\x90\x80\x80",
            b"\xff",
            b"\x80",
            b"\xf8\x80\x80\x80",
            b"",
        ] {
            assert_eq!(wide_letter(bytes), None, "{bytes:?}");
        }
    }
}
