//! Debian package versions, ordered as `dpkg --compare-versions` orders
//! them (Debian Policy §5.6.12): the epoch as a number, then the upstream
//! version and the Debian revision, each compared in alternating runs of
//! non-digits (letters before other characters, `~` before everything,
//! even the end) and digits (as numbers).

use std::cmp::Ordering;

/// A `.deb`'s name split as the archive names it:
/// `name_version_arch.deb` → `(name, version, arch)`.
pub fn deb_name(file: &str) -> Option<(&str, &str, &str)> {
    let stem = file.strip_suffix(".deb")?;
    let mut parts = stem.splitn(3, '_');
    let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
    let fine = |s: &str| !s.is_empty() && !s.contains('_');
    (fine(name) && fine(version) && fine(arch)).then_some((name, version, arch))
}

/// Orders two versions as dpkg does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, a) = epoch(a);
    let (eb, b) = epoch(b);
    if ea != eb {
        return ea.cmp(&eb);
    }
    let (ua, ra) = a.rsplit_once('-').unwrap_or((a, ""));
    let (ub, rb) = b.rsplit_once('-').unwrap_or((b, ""));
    runs(ua, ub).then_with(|| runs(ra, rb))
}

/// The epoch (0 when none, or when it is not a number) and the rest.
fn epoch(v: &str) -> (u64, &str) {
    match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    }
}

/// dpkg's `verrevcmp`.
fn runs(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit runs, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let order = weight(ca).cmp(&weight(cb));
            if order != Ordering::Equal {
                return order;
            }
            a = &a[1..];
            b = &b[1..];
        }
        // The digit runs, as numbers (leading zeros do not count).
        let (da, ra) = digits(a);
        let (db, rb) = digits(b);
        let order = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

/// A non-digit's rank: `~` first, then the end of the run, then letters,
/// then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// The leading digits without their leading zeros, and what follows.
fn digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|c| !c.is_ascii_digit()).unwrap_or(s.len());
    let (run, rest) = s.split_at(end);
    let first = run.iter().position(|&c| c != b'0').unwrap_or(run.len());
    (&run[first..], rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        // Each pair as `dpkg --compare-versions A lt B` holds.
        let ascending = [
            ("1.0", "1.1"),
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("2.10-3", "2.10-3+deb12u1"),
            ("9.9", "1:0.1"),
            ("1:1.0", "2:0.1"),
            ("1.2.3", "1.10"),
            ("0.9", "0.09.1"),
            ("1.0", "1.0-0.1"),
        ];
        for (a, b) in ascending {
            assert_eq!(compare(a, b), Less, "{a} < {b}");
            assert_eq!(compare(b, a), Greater, "{b} > {a}");
        }
        for (a, b) in [("1.0", "1.0"), ("01", "1"), ("0:1.0", "1.0"), ("1.0-", "1.0")] {
            assert_eq!(compare(a, b), Equal, "{a} = {b}");
        }
    }

    #[test]
    fn a_deb_name_has_three_parts() {
        assert_eq!(
            deb_name("hello_2.10-3_amd64.deb"),
            Some(("hello", "2.10-3", "amd64"))
        );
        assert_eq!(deb_name("hello_2.10-3.deb"), None);
        assert_eq!(deb_name("hello_2.10_amd64_x.deb"), None);
        assert_eq!(deb_name("hello_2.10-3_amd64.udeb"), None);
        assert_eq!(deb_name("__.deb"), None);
    }
}
