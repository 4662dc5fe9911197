//! Fuzz target: `index::version`, the dpkg version order the expiration
//! sorts a package's orphaned versions by, and the `.deb` name split.
//!
//! Input: lines (not necessarily UTF-8: read lossily), each a version or a
//! file name.
//!
//! Invariants: `compare` is a total preorder (`1.0` and `1.00` are equal)
//! on what it is given: each line equals itself, swapping two reverses
//! their order, and it is transitive over every three lines; so sorting by
//! it never panics and leaves the lines in order; a name `deb_name` splits is
//! `name_version_arch.deb` again.

use std::cmp::Ordering;

use debcache::index::version::{compare, deb_name};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').take(8).collect();
    for a in &lines {
        assert_eq!(compare(a, a), Ordering::Equal, "{a:?}");
        for b in &lines {
            let ab = compare(a, b);
            assert_eq!(ab, compare(b, a).reverse(), "{a:?} {b:?}");
            for c in &lines {
                if ab != Ordering::Greater && compare(b, c) != Ordering::Greater {
                    let ac = compare(a, c);
                    assert!(ac != Ordering::Greater, "{a:?} <= {b:?} <= {c:?} but {ac:?}");
                }
            }
        }
        if let Some((name, version, arch)) = deb_name(a) {
            assert_eq!(format!("{name}_{version}_{arch}.deb"), *a);
        }
    }
    let mut sorted = lines.clone();
    sorted.sort_by(|a, b| compare(a, b));
    assert!(sorted
        .windows(2)
        .all(|w| compare(w[0], w[1]) != Ordering::Greater));
}
