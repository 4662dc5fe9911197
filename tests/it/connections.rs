//! Client connections over their life: kept alive and parked between
//! requests (hyper's buffers given back), closed when idle for
//! NetworkTimeout, and what many idle ones cost.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::http::Conn;
use crate::support::{wait_for, Daemon};

fn parked(daemon: &Daemon) -> usize {
    daemon.stderr().matches("connection parked").count()
}

/// The help page, on a connection of its own, which parks once too.
fn served_page(daemon: &Daemon) -> String {
    // Served from memory, no cache or mirror involved.
    crate::support::http::get(daemon.addr, "/").text()
}

#[test]
fn a_parked_connection_is_served_again_in_every_way_a_request_can_arrive() {
    let daemon = Daemon::start("");
    let page = served_page(&daemon);
    wait_for("the page's connection to park", || parked(&daemon) >= 1);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(c.get("/", &[]).text(), page);
    wait_for("the connection to park", || parked(&daemon) >= 2);
    // A plain request.
    assert_eq!(c.get("/", &[]).text(), page);
    wait_for("the connection to park again", || parked(&daemon) >= 3);
    // Two pipelined requests in one write.
    let two = crate::support::http::request("GET", "/", &[]).repeat(2);
    c.send_raw(two.as_bytes());
    for _ in 0..2 {
        assert_eq!(c.read(false).unwrap().text(), page, "in order, both");
    }
    wait_for("the connection to park a third time", || parked(&daemon) >= 4);
    // A request head split across writes, the first part shorter than what
    // a parked connection reads before hyper takes over.
    let req = crate::support::http::request("GET", "/", &[("X-Padding", &"p".repeat(3000))]);
    let (first, rest) = req.as_bytes().split_at(10);
    c.stream().set_nodelay(true).unwrap();
    c.send_raw(first);
    c.send_raw(rest);
    assert_eq!(c.read(false).unwrap().text(), page);
}

#[test]
fn an_idle_connection_is_closed_after_the_network_timeout() {
    let daemon = Daemon::start("NetworkTimeout: 5\n");
    // One that never sends, and one that goes quiet after a request.
    let mut silent = TcpStream::connect(daemon.addr).unwrap();
    let mut quiet = Conn::open(daemon.addr);
    assert_eq!(quiet.get("/", &[]).status, 200);
    for stream in [&mut silent, &mut quiet.stream().try_clone().unwrap()] {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(
            stream
                .read(&mut byte)
                .expect("closed by the daemon, before our 30 s"),
            0,
            "closed without a word"
        );
    }
}

#[test]
fn idle_connections_hold_a_few_kilobytes_each_and_give_them_back() {
    let wanted = raise_fd_limit(2000 + 100).saturating_sub(100).min(2000);
    let daemon = Daemon::start("MaxConThreads: -1\n");
    served_page(&daemon);
    let before = crate::support::proc_kib(daemon.pid(), "VmRSS");
    let mut conns = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let mut s = TcpStream::connect(daemon.addr).unwrap();
        s.write_all(crate::support::http::request("GET", "/", &[]).as_bytes())
            .unwrap();
        conns.push(s);
    }
    // Every answer read, then every connection quiet until parked.
    let page = served_page(&daemon).len();
    for s in &mut conns {
        let mut got = 0;
        let mut buf = [0u8; 16 * 1024];
        while got < page {
            got += s.read(&mut buf).unwrap();
        }
    }
    // And the two page requests' connections.
    wait_for("every connection to park", || parked(&daemon) >= wanted + 2);
    wait_for("the freed buffers to go back", || {
        (crate::support::proc_kib(daemon.pid(), "VmRSS") - before) / wanted as u64 <= 8
    });
    drop(conns);
    wait_for("the memory to go back after they close", || {
        crate::support::proc_kib(daemon.pid(), "VmRSS") <= before + 4 * 1024
    });
}

/// Raises this process's descriptor limit towards `want`; returns the
/// limit it has.
fn raise_fd_limit(want: u64) -> usize {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim);
        if rlim.rlim_cur < want {
            rlim.rlim_cur = want.min(rlim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rlim);
        }
    }
    rlim.rlim_cur as usize
}
