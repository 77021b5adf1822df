//! Which queue handlers the connected workers serve, for routing tasks and for roles.
//!
//! Names are numbered the first time they are seen ([`HandlerId`]); a worker's handlers
//! are a bit set of those numbers, so that the pump tells whether a worker serves a task's
//! handler with one bit test. The roster also remembers the kind of every name a worker
//! ever announced (the most privileged, if workers disagree), which decides the role a
//! caller needs.

use std::collections::HashMap;

use weft_core::work::{HandlerKind, HandlerName};

/// A handler name's number in this coordinator.
pub(super) type HandlerId = u32;

/// A set of handlers, as bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HandlerSet(Vec<u64>);

impl HandlerSet {
    fn insert(&mut self, id: HandlerId) {
        let (word, bit) = (id as usize / 64, id % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    #[cfg(test)]
    pub(super) fn insert_for_test(&mut self, id: HandlerId) {
        self.insert(id);
    }

    /// Whether `id` is in the set.
    pub(super) fn contains(&self, id: HandlerId) -> bool {
        let (word, bit) = (id as usize / 64, id % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn ids(&self) -> impl Iterator<Item = HandlerId> + '_ {
        (0..self.0.len() as u32 * 64).filter(|id| self.contains(*id))
    }
}

/// Handler names seen, their kinds, and how many connected workers serve each.
#[derive(Default)]
pub(super) struct HandlerRoster {
    ids: HashMap<HandlerName, HandlerId>,
    names: Vec<HandlerName>,
    /// The most privileged kind a worker announced for each name; `None`: never announced.
    kinds: Vec<Option<HandlerKind>>,
    /// Connected workers serving each.
    serving: Vec<u32>,
}

impl HandlerRoster {
    /// The number of `name`, given one now if it has none.
    pub(super) fn id(&mut self, name: &HandlerName) -> HandlerId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as HandlerId;
        self.ids.insert(name.clone(), id);
        self.names.push(name.clone());
        self.kinds.push(None);
        self.serving.push(0);
        id
    }

    /// A worker serving `handlers` joined: its set.
    pub(super) fn join(&mut self, handlers: &[(HandlerName, HandlerKind)]) -> HandlerSet {
        let mut set = HandlerSet::default();
        for (name, kind) in handlers {
            let id = self.id(name);
            let known = &mut self.kinds[id as usize];
            *known = Some(known.map_or(*kind, |k| k.max(*kind)));
            if !set.contains(id) {
                self.serving[id as usize] += 1;
                set.insert(id);
            }
        }
        set
    }

    /// A worker serving `set` left.
    pub(super) fn leave(&mut self, set: &HandlerSet) {
        for id in set.ids() {
            self.serving[id as usize] = self.serving[id as usize].saturating_sub(1);
        }
    }

    /// Whether a connected worker serves `name`.
    #[cfg(test)]
    pub(super) fn served(&self, name: &HandlerName) -> bool {
        self.ids.get(name).is_some_and(|id| self.serving[*id as usize] > 0)
    }

    /// The name of `id`, if no connected worker serves it.
    pub(super) fn unserved_name(&self, id: HandlerId) -> Option<HandlerName> {
        (self.serving[id as usize] == 0).then(|| self.names[id as usize].clone())
    }

    /// The handlers connected workers serve, by name.
    pub(super) fn served_names(&self) -> Vec<HandlerName> {
        let mut names: Vec<HandlerName> = (0..self.names.len())
            .filter(|id| self.serving[*id] > 0)
            .map(|id| self.names[id].clone())
            .collect();
        names.sort();
        names
    }

    /// The kind workers announced for `name`; `None` if none ever did.
    pub(super) fn kind(&self, name: &HandlerName) -> Option<HandlerKind> {
        self.ids.get(name).and_then(|id| self.kinds[*id as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> HandlerName {
        HandlerName::new(n).unwrap()
    }

    #[test]
    fn the_roster_counts_who_serves_what_and_keeps_the_strongest_kind() {
        let mut roster = HandlerRoster::default();
        let waiting = roster.id(&name("resize"));
        assert!(!roster.served(&name("resize")) && roster.kind(&name("resize")).is_none());
        let gpu = roster.join(&[
            (name("resize"), HandlerKind::Linked),
            (name("echo"), HandlerKind::Builtin),
        ]);
        let cpu = roster.join(&[(name("resize"), HandlerKind::Command)]);
        assert!(gpu.contains(waiting) && cpu.contains(waiting));
        assert!(!cpu.contains(roster.id(&name("echo"))));
        assert_eq!(roster.kind(&name("resize")), Some(HandlerKind::Command));
        assert_eq!(roster.served_names(), [name("echo"), name("resize")]);
        roster.leave(&gpu);
        assert!(roster.served(&name("resize")) && !roster.served(&name("echo")));
        roster.leave(&cpu);
        assert!(roster.served_names().is_empty());
        assert_eq!(
            roster.kind(&name("resize")),
            Some(HandlerKind::Command),
            "kinds are remembered"
        );
        let mut many = HandlerSet::default();
        many.insert(130);
        assert!(many.contains(130) && !many.contains(2) && !many.contains(500));
        assert_eq!(many.ids().collect::<Vec<_>>(), [130]);
    }
}
