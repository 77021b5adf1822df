//! The names of what a job writes into its output: its parts, and `_SUCCESS` last.

use weft_core::compression::Compression;

/// The marker written when every part is complete.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// The parts' extension: `.gz`, `.zst` or none.
pub(super) fn suffix(compression: Option<Compression>) -> &'static str {
    compression.map_or("", Compression::extension)
}

/// Part `part`'s name, with the parts' `suffix`: `part-00007`, `part-00007.gz`.
pub(super) fn part_name(part: u32, suffix: &str) -> String {
    format!("part-{part:05}{suffix}")
}

/// `part-00007`, with or without the extension of a compressed part.
pub(super) fn is_part_name(name: &str) -> bool {
    let name = [".gz", ".zst"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    name.strip_prefix("part-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
