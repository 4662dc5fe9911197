//! The parsers on arbitrary input: any bytes give a result, never a panic.

use proptest::prelude::*;

use super::{decompress, parse, IndexKind};

/// Pieces of real index lines, so that generated input reaches past the
/// first line more often than random bytes do.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n".to_vec()),
        Just(b"-----BEGIN PGP SIGNATURE-----\n".to_vec()),
        Just(b"-----END PGP SIGNATURE-----\n".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"MD5Sum:\n".to_vec()),
        Just(b"SHA256:\n".to_vec()),
        Just(b"SHA256-Download:\n".to_vec()),
        Just(b"Files:\n".to_vec()),
        Just(b"Checksums-Sha256:\n".to_vec()),
        Just(b"Directory: pool/a\n".to_vec()),
        Just(b"Filename: pool/a.deb\n".to_vec()),
        Just(b"Size: 12\n".to_vec()),
        Just(b"MD5sum: d41d8cd98f00b204e9800998ecf8427e\n".to_vec()),
        Just(b" d41d8cd98f00b204e9800998ecf8427e 0 a\n".to_vec()),
        Just(b" e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/a\n".to_vec()),
        Just(b"Acquire-By-Hash: yes\n".to_vec()),
        "[ -~]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn index_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat())
}

fn parse_all(bytes: &[u8]) {
    for kind in IndexKind::ALL {
        let _ = parse(kind, bytes, |_| {});
    }
}

/// The compressed fixtures, for mutating.
fn compressed() -> Vec<(&'static str, Vec<u8>)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/index/dists/test/main/binary-amd64/"
    );
    ["Packages.gz", "Packages.bz2", "Packages.xz", "Packages.zst"]
        .into_iter()
        .map(|name| (name, std::fs::read(format!("{dir}{name}")).unwrap_or_default()))
        .collect()
}

proptest! {
    #[test]
    fn mutated_compressed_indexes_give_a_result(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let (name, mut bytes) = compressed().swap_remove(which);
        prop_assume!(!bytes.is_empty());
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len()) + 1);
        if let Ok(reader) = decompress(name, &bytes[..]) {
            let _ = parse(IndexKind::Packages, reader, |_| {});
        };
    }

    #[test]
    fn any_bytes_give_a_result(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_all(&bytes);
    }

    #[test]
    fn index_like_text_gives_a_result(bytes in index_like()) {
        parse_all(&bytes);
    }

    #[test]
    fn any_compressed_bytes_give_a_result(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for name in ["P.gz", "P.bz2", "P.xz", "P.lzma", "P.zst"] {
            if let Ok(reader) = decompress(name, &bytes[..]) {
                let _ = parse(IndexKind::Packages, reader, |_| {});
            }
        }
    }
}

/// The archive `tests/fixtures/index/make.sh` made with dpkg-deb,
/// dpkg-source and apt-ftparchive, parsed and checked against the files
/// themselves: sizes and SHA-512 computed here.
mod fixtures {
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::path::{Path, PathBuf};

    use sha2::Digest as _;

    use crate::index::{
        classify, decompress, parse, Algorithm, Classified, Digest, IndexKind, Listed, Problem, Reference,
        Summary,
    };

    const PACKAGES: &str = "dists/test/main/binary-amd64/Packages";
    const SOURCES: &str = "dists/test/main/source/Sources";
    const COMPRESSIONS: [&str; 4] = ["", ".gz", ".bz2", ".xz"];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index")
    }

    fn bytes(rel: &str) -> Vec<u8> {
        std::fs::read(root().join(rel)).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the index names of the file at `rel`, as a reference computed
    /// from the file itself.
    fn actual(rel: &str, algorithm: Algorithm) -> Reference {
        let data = bytes(rel);
        let hex = match algorithm {
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(&data)),
            Algorithm::Sha512 => hex(&sha2::Sha512::digest(&data)),
            other => panic!("no {other} here"),
        };
        Reference {
            path: rel.to_string(),
            size: data.len() as u64,
            digest: Digest::parse(algorithm, &hex).unwrap(),
        }
    }

    /// Every file below `dir` (relative to the fixtures), sorted.
    fn files_below(dir: &str) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_str().unwrap().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&root(), &root().join(dir), &mut out);
        out.sort();
        out
    }

    /// The fixture at `rel` classified (as if cached under `debrep/`),
    /// decompressed and parsed.
    fn read(rel: &str) -> (Classified<'static>, Vec<Listed>, Summary) {
        let cached: &'static str = Box::leak(format!("debrep/{rel}").into_boxed_str());
        let classified = classify(cached).unwrap_or_else(|| panic!("{rel} is no index"));
        let file = std::fs::File::open(root().join(rel)).unwrap();
        let text = decompress(rel, file).unwrap();
        let mut listed = Vec::new();
        let summary = parse(classified.kind, text, |l| listed.push(l))
            .unwrap_or_else(|e| panic!("{rel}: {}", crate::error::Chain(&e)));
        (classified, listed, summary)
    }

    fn files(listed: &[Listed]) -> Vec<Reference> {
        listed
            .iter()
            .filter_map(|l| match l {
                Listed::File(r) => Some(r.clone()),
                Listed::ByHash(_) => None,
            })
            .collect()
    }

    /// References relative to their base, made relative to the fixtures.
    fn below(base: &str, refs: Vec<Reference>) -> Vec<Reference> {
        let prefix = base.strip_prefix("debrep").unwrap().trim_start_matches('/');
        refs.into_iter()
            .map(|r| Reference {
                path: if prefix.is_empty() {
                    r.path
                } else {
                    format!("{prefix}/{}", r.path)
                },
                ..r
            })
            .collect()
    }

    #[test]
    fn packages_name_each_deb_with_its_size_and_sha512_in_every_compression() {
        let debs: Vec<Reference> = files_below("pool")
            .into_iter()
            .filter(|p| p.ends_with(".deb"))
            .map(|p| actual(&p, Algorithm::Sha512))
            .collect();
        assert_eq!(debs.len(), 2);
        for suffix in COMPRESSIONS.iter().chain(&[".zst"]) {
            let (classified, listed, summary) = read(&format!("{PACKAGES}{suffix}"));
            assert_eq!(classified.kind, IndexKind::Packages);
            assert_eq!(classified.base, "debrep");
            let mut got = below(classified.base, files(&listed));
            got.sort_by(|a, b| a.path.cmp(&b.path));
            assert_eq!(got, debs, "Packages{suffix}");
            assert_eq!((summary.files, summary.by_hash), (2, 0));
        }
    }

    #[test]
    fn sources_name_the_dsc_and_its_tarball() {
        let want = vec![
            actual("pool/main/h/hello/hello_1.0.dsc", Algorithm::Sha512),
            actual("pool/main/h/hello/hello_1.0.tar.xz", Algorithm::Sha512),
        ];
        for suffix in COMPRESSIONS {
            let (classified, listed, _) = read(&format!("{SOURCES}{suffix}"));
            assert_eq!(classified.kind, IndexKind::Sources);
            assert_eq!(below(classified.base, files(&listed)), want, "Sources{suffix}");
        }
    }

    #[test]
    fn release_and_inrelease_name_every_index_and_its_by_hash_objects() {
        let dists = "dists/test";
        let want: Vec<Reference> = files_below(dists)
            .into_iter()
            // Not the Release files themselves, nor the patch (only the pdiff
            // Index names it).
            .filter(|p| !p.ends_with("Release") && !p.contains(".diff/T-"))
            .map(|p| actual(&p, Algorithm::Sha512))
            .collect();
        assert_eq!(want.len(), 13, "{want:#?}");
        for (name, signed) in [("Release", false), ("InRelease", true)] {
            let (classified, listed, summary) = read(&format!("{dists}/{name}"));
            assert_eq!(classified.kind, IndexKind::Release);
            assert_eq!(classified.base, "debrep/dists/test");
            assert_eq!(below(classified.base, files(&listed)), want, "{name}");
            assert_eq!(
                summary,
                Summary {
                    files: 13,
                    by_hash: 13 * 4,
                    acquire_by_hash: true,
                    signed,
                }
            );
            let by_hash: BTreeSet<String> = listed
                .iter()
                .filter_map(|l| match l {
                    Listed::ByHash(r) => Some(r.path.clone()),
                    Listed::File(_) => None,
                })
                .collect();
            let packages = actual(PACKAGES, Algorithm::Sha256);
            assert!(by_hash.contains(&format!("main/binary-amd64/by-hash/SHA256/{}", packages.digest)));
            let algorithms: BTreeSet<&str> = by_hash
                .iter()
                .filter_map(|p| p.split("/by-hash/").nth(1)?.split('/').next())
                .collect();
            assert_eq!(algorithms, BTreeSet::from(["MD5Sum", "SHA1", "SHA256", "SHA512"]));
        }
    }

    #[test]
    fn i18n_index_names_the_translations() {
        let (classified, listed, _) = read("dists/test/main/i18n/Index");
        assert_eq!(classified.kind, IndexKind::Translations);
        let got: Vec<(String, u64, Algorithm)> = below(classified.base, files(&listed))
            .into_iter()
            .map(|r| (r.path, r.size, r.digest.algorithm()))
            .collect();
        let want: Vec<(String, u64, Algorithm)> = ["Translation-en", "Translation-en.bz2"]
            .iter()
            .map(|f| {
                let path = format!("dists/test/main/i18n/{f}");
                let size = bytes(&path).len() as u64;
                (path, size, Algorithm::Sha1)
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn pdiff_index_names_the_patch_to_download() {
        let dir = "dists/test/main/binary-amd64/Packages.diff";
        let (classified, listed, _) = read(&format!("{dir}/Index"));
        assert_eq!(classified.kind, IndexKind::Diffs);
        assert_eq!(
            below(classified.base, files(&listed)),
            [actual(
                &format!("{dir}/T-2023-11-14-2213.20-F-2023-11-14-2213.20.gz"),
                Algorithm::Sha256
            )]
        );
    }

    #[test]
    fn every_compression_decodes_to_the_same_text() {
        let plain = bytes(PACKAGES);
        for suffix in [".gz", ".bz2", ".xz", ".zst"] {
            let rel = format!("{PACKAGES}{suffix}");
            let mut text = Vec::new();
            decompress(&rel, &bytes(&rel)[..])
                .unwrap()
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(text, plain, "{suffix}");
        }
    }

    #[test]
    fn cut_compressed_fixtures_are_corrupt_not_short() {
        for suffix in [".gz", ".bz2", ".xz", ".zst"] {
            let rel = format!("{PACKAGES}{suffix}");
            let data = bytes(&rel);
            for cut in [data.len() - 1, data.len() / 2, 12] {
                let err = decompress(&rel, &data[..cut])
                    .and_then(|text| parse(IndexKind::Packages, text, |_| {}))
                    .unwrap_err();
                assert!(
                    matches!(err.problem(), Problem::Corrupt { .. }),
                    "{suffix} cut at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn every_fixture_index_parses() {
        let indexes: Vec<String> = files_below("dists")
            .into_iter()
            .filter(|p| classify(p).is_some())
            .collect();
        assert_eq!(indexes.len(), 2 + 5 + 4 + 2, "{indexes:?}");
        for rel in indexes {
            let (_, listed, _) = read(&rel);
            assert!(!listed.is_empty(), "{rel}");
        }
    }
}
