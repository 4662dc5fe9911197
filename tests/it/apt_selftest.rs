//! The apt support on its own: a built repository served by a static file
//! server is something a real `apt-get` can update from and download from.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use crate::support::apt::{self, Access, Apt, Repo};
use crate::support::http::sha256_hex;

/// Serves `files` from memory on an ephemeral loopback port, keeping
/// connections alive so apt may pipeline. The threads end with the process.
fn serve(files: Vec<(String, Vec<u8>)>) -> SocketAddr {
    let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(files.into_iter().collect());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = Arc::clone(&files);
            std::thread::spawn(move || {
                // A peer that goes away mid-response is none of our business.
                let _ = answer(stream, &files);
            });
        }
    });
    addr
}

/// Answers GET requests on one connection until the client closes it.
fn answer(stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
                break;
            }
        }
        let target = request_line.split(' ').nth(1).unwrap_or("");
        let path = target.split('?').next().unwrap();
        match files.get(path) {
            Some(body) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                writer.write_all(head.as_bytes())?;
                writer.write_all(body)?;
            }
            None => writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
    }
}

#[test]
fn apt_updates_and_downloads_from_a_built_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::build(tmp.path(), "synth", &apt::packages(3, 20_000, 200_000));
    let files = repo.files();
    let addr = serve(files.clone());
    let client = Apt::new(
        &format!("deb [trusted=yes] http://{addr}/ {} main", repo.suite()),
        Access::Direct,
    );

    client.update().assert_success();
    client.download(&["synth-pkg01", "synth-pkg02"]).assert_success();

    for name in ["synth-pkg01", "synth-pkg02"] {
        let deb_path = repo.deb_path(name);
        let (_, expected) = files.iter().find(|(p, _)| *p == deb_path).unwrap();
        let file_name = deb_path.rsplit('/').next().unwrap();
        let got = std::fs::read(client.archives().join(file_name)).unwrap();
        assert_eq!(sha256_hex(&got), sha256_hex(expected), "{name}");
    }
    assert!(!client.archives().join("synth-pkg03_1.0-1_all.deb").exists());
}

#[test]
fn built_repository_has_sizes_indexes_and_is_reproducible() {
    let wanted = apt::packages(3, 20_000, 200_000);
    assert_eq!(
        wanted.iter().map(|p| p.size).collect::<Vec<_>>(),
        [20_000, 110_000, 200_000]
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let repo = Repo::build(a.path(), "synth", &wanted);
    let files = repo.files();
    assert_eq!(files, Repo::build(b.path(), "synth", &wanted).files());

    let file = |path: &str| &files.iter().find(|(p, _)| p == path).unwrap().1;
    assert_eq!(
        repo.deb_path("synth-pkg02"),
        "/pool/main/s/synth-pkg02/synth-pkg02_1.0-1_all.deb"
    );
    for package in &wanted {
        let len = file(&repo.deb_path(&package.name)).len() as u64;
        assert!(
            len.abs_diff(package.size) < 2_000,
            "{}: {len} bytes",
            package.name
        );
    }
    let release = String::from_utf8(file("/dists/synth/Release").clone()).unwrap();
    for index in ["Packages", "Packages.gz", "Packages.xz"] {
        let bytes = file(&format!("/dists/synth/main/binary-all/{index}"));
        let line = format!(
            "{} {:>16} main/binary-all/{index}",
            sha256_hex(bytes),
            bytes.len()
        );
        assert!(release.contains(&line), "{line} not in\n{release}");
    }
}

#[test]
fn proxy_access_is_written_into_the_private_config() {
    let client = Apt::new(
        "deb [trusted=yes] http://127.0.0.1:9/ synth main",
        Access::Proxy("http://127.0.0.1:3142".to_string()),
    );
    let config = std::fs::read_to_string(client.config()).unwrap();
    assert!(
        config.contains("Acquire::http::Proxy \"http://127.0.0.1:3142\";\n"),
        "{config}"
    );
    assert!(config.contains("Acquire::https::Proxy \"DIRECT\";\n"), "{config}");
    // apt itself reads it back that way.
    let dump = std::process::Command::new("apt-config")
        .arg("dump")
        .env("APT_CONFIG", client.config())
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("Acquire::http::Proxy \"http://127.0.0.1:3142\";"),
        "{dump}"
    );

    let direct = Apt::new("deb [trusted=yes] http://127.0.0.1:9/ synth main", Access::Direct);
    let config = std::fs::read_to_string(direct.config()).unwrap();
    assert!(config.contains("Acquire::http::Proxy \"DIRECT\";\n"), "{config}");
}
