//! The renames of a dump, in the order GNU tar applies them at extraction.
//!
//! A dumpdir (its format: [`aa_provider_kit::dumpdir`]) carries the renames of the whole dump
//! in the archive's first directory. A chain of renames (`mv b c; mv a b`) is listed from its
//! end, so that each target is free when its rename runs (`R b T c`, `R a T b`); a cycle
//! (`mv x t; mv y x; mv t y`) moves one member aside first: `X parent-of-y`, `R y T ''`,
//! `R x T y`, `R '' T x`. [`rename_ops`] orders the renames the planner found that way.

use std::collections::HashMap;

pub use aa_provider_kit::dumpdir::{encode, sort_entries, Code, Entry, RenameOp};
#[cfg(test)]
pub use aa_provider_kit::dumpdir::{parse, Item};

/// A directory found renamed during the dump, as the planner records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRename {
    /// The directory's name now.
    pub to: Vec<u8>,
    /// Where the directory is when this rename runs at extraction: its previous name, with
    /// the renames of its ancestors found before it already applied.
    pub from: Vec<u8>,
    /// Its name in the previous snapshot, which links chains: if another renamed directory
    /// is now called `from_record`, that one must move after this one.
    pub from_record: Vec<u8>,
}

/// The rename records for `renames` (in the order they were found), ordered so that GNU tar
/// can apply them one after the other: chains from their end, cycles through a temporary
/// directory, independent renames in the order found.
pub fn rename_ops(renames: &[DirRename]) -> Vec<RenameOp> {
    let mut by_target: HashMap<&[u8], usize> = HashMap::new();
    for (index, rename) in renames.iter().enumerate() {
        by_target.entry(&rename.to).or_insert(index);
    }
    // next[i]: the rename that must follow i, because its directory now sits where i's
    // directory used to be.
    let next: Vec<Option<usize>> = renames
        .iter()
        .enumerate()
        .map(|(index, rename)| {
            by_target
                .get(rename.from_record.as_slice())
                .copied()
                .filter(|&other| other != index)
        })
        .collect();
    let mut has_predecessor = vec![false; renames.len()];
    for &following in next.iter().flatten() {
        has_predecessor[following] = true;
    }
    let mut done = vec![false; renames.len()];
    let mut ops = Vec::new();
    let plain = |index: usize| RenameOp::Rename {
        from: renames[index].from.clone(),
        to: renames[index].to.clone(),
    };

    for start in 0..renames.len() {
        if has_predecessor[start] || done[start] {
            continue;
        }
        let mut current = Some(start);
        while let Some(index) = current.filter(|&index| !done[index]) {
            done[index] = true;
            ops.push(plain(index));
            current = next[index];
        }
    }

    // What is left are cycles: every member has a predecessor.
    for start in 0..renames.len() {
        if done[start] {
            continue;
        }
        let mut members = vec![start];
        done[start] = true;
        let mut closed = false;
        let mut current = next[start];
        while let Some(index) = current {
            if index == start {
                closed = true;
                break;
            }
            if done[index] {
                break;
            }
            done[index] = true;
            members.push(index);
            current = next[index];
        }
        if !closed || members.len() < 2 {
            // Not a cycle after all (only with inconsistent input): apply in order.
            ops.extend(members.into_iter().map(plain));
            continue;
        }
        ops.push(RenameOp::TempDir(parent_name(&renames[start].to)));
        ops.push(RenameOp::Rename {
            from: renames[start].to.clone(),
            to: Vec::new(),
        });
        let last = members[members.len() - 1];
        ops.extend(
            members[..members.len() - 1]
                .iter()
                .map(|&index| plain(index)),
        );
        ops.push(RenameOp::Rename {
            from: Vec::new(),
            to: renames[last].to.clone(),
        });
    }
    ops
}

/// The directory part of an archive name, `.` when there is none (as GNU tar's `dir_name`).
fn parent_name(name: &[u8]) -> Vec<u8> {
    let trimmed = match name.iter().rposition(|&b| b != b'/') {
        Some(last) => &name[..=last],
        None => return b"/".to_vec(),
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/".to_vec(),
        Some(slash) => trimmed[..slash].to_vec(),
        None => b".".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rename(to: &str, from: &str) -> DirRename {
        DirRename {
            to: to.into(),
            from: from.into(),
            from_record: from.into(),
        }
    }

    fn show(ops: &[RenameOp]) -> String {
        let bytes = encode(&[], ops).unwrap();
        String::from_utf8(bytes).unwrap().replace('\0', " ")
    }

    #[test]
    fn encodes_entries_then_renames_then_nul() {
        let mut entries = vec![
            Entry {
                code: Code::Dumped,
                name: b"top".to_vec(),
            },
            Entry {
                code: Code::Directory,
                name: b"a".to_vec(),
            },
            Entry {
                code: Code::Unchanged,
                name: b"\xffodd\nname".to_vec(),
            },
            Entry {
                code: Code::Directory,
                name: b"B".to_vec(),
            },
        ];
        sort_entries(&mut entries);
        let ops = rename_ops(&[rename("./a/bb", "./a/b")]);
        let bytes = encode(&entries, &ops).unwrap();
        assert_eq!(
            bytes,
            b"DB\0Da\0Ytop\0N\xffodd\nname\0R./a/b\0T./a/bb\0\0".to_vec()
        );
        let items = parse(&bytes).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], Item::Entry(entries[0].clone()));
        assert_eq!(items[4], Item::Rename(ops[0].clone()));
        assert_eq!(encode(&[], &[]).unwrap(), b"\0");
        assert_eq!(parse(b"\0").unwrap(), vec![]);
    }

    #[test]
    fn chains_are_applied_from_their_end() {
        // mv m2 m3; mv m1 m2; found in walk order m2 then m3 (GNU tar 1.34's output).
        let ops = rename_ops(&[rename("./m2", "./m1"), rename("./m3", "./m2")]);
        assert_eq!(show(&ops), "R./m2 T./m3 R./m1 T./m2  ");
    }

    #[test]
    fn cycles_go_through_a_temporary_directory() {
        // mv x t; mv y x; mv t y; GNU tar 1.34 writes exactly this when it starts at y.
        let ops = rename_ops(&[rename("./y", "./x"), rename("./x", "./y")]);
        assert_eq!(show(&ops), "X. R./y T R./x T./y R T./x  ");
        assert!(parse(&encode(&[], &ops).unwrap()).is_ok());

        let three = rename_ops(&[
            rename("a/1", "a/3"),
            rename("a/2", "a/1"),
            rename("a/3", "a/2"),
        ]);
        assert_eq!(show(&three), "Xa Ra/1 T Ra/3 Ta/1 Ra/2 Ta/3 R Ta/2  ");
        // Two cycles: 'X' may come again once the first temporary directory is used up.
        let two = rename_ops(&[
            rename("p", "q"),
            rename("q", "p"),
            rename("d/r", "d/s"),
            rename("d/s", "d/r"),
        ]);
        assert_eq!(
            show(&two),
            "X. Rp T Rq Tp R Tq Xd Rd/r T Rd/s Td/r R Td/s  "
        );
        assert!(parse(&encode(&[], &two).unwrap()).is_ok());
    }

    #[test]
    fn independent_renames_keep_their_order() {
        let ops = rename_ops(&[rename("b", "a"), rename("d", "c"), rename("b/y", "b/x")]);
        assert_eq!(show(&ops), "Ra Tb Rc Td Rb/x Tb/y  ");
    }

    #[test]
    fn parent_names() {
        assert_eq!(parent_name(b"./y"), b".");
        assert_eq!(parent_name(b"y"), b".");
        assert_eq!(parent_name(b"a/b/c"), b"a/b");
        assert_eq!(parent_name(b"/x"), b"/");
        assert_eq!(parent_name(b"a/b/"), b"a");
    }
}
