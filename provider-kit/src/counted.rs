//! Item events counted as they are reported: the [`Totals`] a capability call returns are
//! exactly what it reported, because both go through one place.

use std::cell::Cell;
use std::path::Path;

use aa_abi::capability::{ItemEvents, Totals};

/// Forwards items and problems to a capability's [`ItemEvents`], counting them into
/// [`Totals`]. Takes `&self` (a `Cell` inside), so it can sit behind the shared references
/// that backup event traits are called through.
pub struct CountedItems<'a> {
    events: &'a dyn ItemEvents,
    totals: Cell<Totals>,
}

impl<'a> CountedItems<'a> {
    /// Counts from zero what goes to `events`.
    pub fn new(events: &'a dyn ItemEvents) -> Self {
        CountedItems {
            events,
            totals: Cell::new(Totals::default()),
        }
    }

    /// Reports the item `name` of `size` content bytes.
    pub fn item(&self, name: &Path, size: u64) {
        self.events.item(name, size);
        let mut totals = self.totals.get();
        totals.items += 1;
        totals.bytes += size;
        self.totals.set(totals);
    }

    /// Reports a problem with `name` (if known).
    pub fn problem(&self, name: Option<&Path>, message: &str) {
        self.events.problem(name, message);
        let mut totals = self.totals.get();
        totals.problems += 1;
        self.totals.set(totals);
    }

    /// What was reported so far.
    pub fn totals(&self) -> Totals {
        self.totals.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Seen(RefCell<Vec<String>>);

    impl ItemEvents for Seen {
        fn item(&self, name: &Path, size: u64) {
            self.0
                .borrow_mut()
                .push(format!("{} {size}", name.display()));
        }
        fn problem(&self, name: Option<&Path>, message: &str) {
            self.0.borrow_mut().push(format!("{name:?}: {message}"));
        }
    }

    #[test]
    fn totals_are_what_was_reported() {
        let seen = Seen::default();
        let counted = CountedItems::new(&seen);
        counted.item(Path::new("a"), 5);
        counted.item(Path::new("d"), 0);
        counted.problem(None, "odd");
        assert_eq!(
            counted.totals(),
            Totals {
                items: 2,
                bytes: 5,
                problems: 1
            }
        );
        assert_eq!(*seen.0.borrow(), ["a 5", "d 0", "None: odd"]);
    }
}
