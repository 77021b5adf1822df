//! Attempt ids: handed out in order, and reserved durably in blocks before they are used, so
//! that a restarted coordinator never hands out one that an earlier run used: a late report
//! or a leftover output of an old attempt can never pass for a new one's.

use weft_core::work::AttemptId;

/// Ids are reserved this many at a time.
pub const ATTEMPT_ID_BLOCK: u64 = 1 << 20;

/// Records durably that every id below its argument is taken.
pub type Reserve = Box<dyn Fn(AttemptId) + Send + Sync>;

/// The next attempt id, and how far ids are reserved.
pub(super) struct AttemptIds {
    next: AttemptId,
    /// Ids below this are reserved in the state store.
    reserved: AttemptId,
    reserve: Reserve,
}

impl AttemptIds {
    /// Ids from `first` on; reserves the first block at once.
    pub(super) fn new(first: AttemptId, reserve: Reserve) -> Self {
        let reserved = first + ATTEMPT_ID_BLOCK;
        reserve(reserved);
        Self {
            next: first.max(1),
            reserved,
            reserve,
        }
    }

    /// A new id; reserves the next block once half of this one is used.
    pub(super) fn next(&mut self) -> AttemptId {
        let id = self.next;
        self.next += 1;
        if self.next + ATTEMPT_ID_BLOCK / 2 > self.reserved {
            self.reserved += ATTEMPT_ID_BLOCK;
            (self.reserve)(self.reserved);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn ids_are_reserved_ahead_of_use() {
        let reserved = Arc::new(Mutex::new(Vec::new()));
        let log = reserved.clone();
        let mut ids = AttemptIds::new(5, Box::new(move |up_to| log.lock().unwrap().push(up_to)));
        assert_eq!(*reserved.lock().unwrap(), [5 + ATTEMPT_ID_BLOCK]);
        let first = ids.next();
        assert_eq!(first, 5);
        for _ in 0..ATTEMPT_ID_BLOCK / 2 {
            let id = ids.next();
            assert!(
                id < *reserved.lock().unwrap().last().unwrap(),
                "used only once reserved"
            );
        }
        assert_eq!(
            reserved.lock().unwrap().len(),
            2,
            "the next block before the first runs out"
        );
    }
}
