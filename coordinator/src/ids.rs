//! Ids that never repeat across restarts and coordinators: handed out in order, and reserved
//! durably in blocks before they are used, so that a restarted coordinator, or a standby that
//! takes over, starts past every id an earlier one could have handed out. Attempt ids (a late
//! report or a leftover output of an old attempt can never pass for a new one's) and batch
//! ids (a batch is never confused with an earlier one) are numbered this way.

/// Attempt ids are reserved this many at a time.
pub const ATTEMPT_ID_BLOCK: u64 = 1 << 20;

/// Batch ids are reserved this many at a time (a restart skips what is left of a block).
pub const BATCH_ID_BLOCK: u64 = 1 << 10;

/// Records durably that every id below its argument is taken.
pub type Reserve = Box<dyn Fn(u64) + Send + Sync>;

/// The next id, and how far ids are reserved.
pub struct ReservedIds {
    next: u64,
    /// Ids below this are reserved in the state store.
    reserved: u64,
    block: u64,
    reserve: Reserve,
}

impl ReservedIds {
    /// Ids from `first` on (at least 1), reserved `block` at a time; reserves the first block
    /// at once (the server has already written it durably before it hands out any id).
    pub fn new(first: u64, block: u64, reserve: Reserve) -> Self {
        let next = first.max(1);
        let reserved = next + block;
        reserve(reserved);
        Self {
            next,
            reserved,
            block,
            reserve,
        }
    }

    /// Ids from 1 on that no store records: for tests and for what keeps no state.
    pub fn unrecorded() -> Self {
        Self::new(1, BATCH_ID_BLOCK, Box::new(|_| {}))
    }

    /// A new id; reserves the next block once half of this one is used.
    pub fn take(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        if self.next + self.block / 2 > self.reserved {
            self.reserved += self.block;
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
        let block = 64;
        let mut ids = ReservedIds::new(5, block, Box::new(move |up_to| log.lock().unwrap().push(up_to)));
        assert_eq!(*reserved.lock().unwrap(), [5 + block]);
        let first = ids.take();
        assert_eq!(first, 5);
        for _ in 0..block / 2 {
            let id = ids.take();
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
        assert_eq!(ReservedIds::unrecorded().take(), 1);
    }
}
