//! Command-line values with units: durations in seconds.

use std::time::Duration;

pub use weft_auth::flags::seconds;

/// A duration where 0 means never: `None` for 0.
pub fn never_if_zero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_non_negative_numbers() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("0").map(never_if_zero), Ok(None));
        assert!(seconds("-1").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("inf").is_err());
        assert!(seconds("ten").is_err());
    }
}
