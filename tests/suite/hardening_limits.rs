//! Limits a hostile or careless client meets: a request must arrive whole in time on both
//! listeners, a caller no role is mapped to cannot make the daemon buffer more than a few
//! kilobytes, one listener's clients cannot use up the connections the other needs, and
//! refusals reach the audit log without flooding it.

use crate::common;

use common::World;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::Request;
use qbo_sim::SimOptions;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// Reads until the daemon closes the connection; fails if it has not within `within`.
async fn read_to_close<R: tokio::io::AsyncRead + Unpin>(r: &mut R, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Err(_) => panic!(
                "the daemon kept the connection open for {within:?}; it had sent {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The socket's host part of `http://127.0.0.1:port`.
fn http_addr(d: &common::DaemonProc) -> String {
    d.http.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_sends_half_a_request_is_disconnected_within_the_timeout_on_both_listeners() {
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w
        .start_daemon(&[
            ("QBO_CONSOLE__DAEMON__REQUEST_TIMEOUT", "1s"),
            ("QBO_CONSOLE__DAEMON__IDLE_TIMEOUT", "2s"),
        ])
        .await;
    // Generous against a loaded machine, far below "forever".
    let within = Duration::from_secs(15);

    // The socket: half a request, then silence.
    let mut s = UnixStream::connect(w.socket()).await.unwrap();
    s.write_all(b"{\"op\":\"li").await.unwrap();
    let said = read_to_close(&mut s, within).await;
    assert!(
        said.contains("request not complete within 1s")
            && said.contains("[daemon] request_timeout"),
        "{said}"
    );

    // A slowloris that keeps sending, a byte at a time, never finishing its line.
    let mut s = UnixStream::connect(w.socket()).await.unwrap();
    let (mut r, mut wr) = s.split();
    let drip = async {
        for b in b"{\"op\":\"list\",\"status\":\"active\"            "
            .iter()
            .cycle()
        {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The drip stops once its writes fail, that is once the daemon has hung up.
    let (said, ()) = tokio::join!(read_to_close(&mut r, within), drip);
    assert!(said.contains("[daemon] request_timeout"), "{said:?}");
    drop(s);

    // A connection that never asks anything is closed after the idle timeout.
    let mut s = UnixStream::connect(w.socket()).await.unwrap();
    let said = read_to_close(&mut s, within).await;
    assert!(said.contains("[daemon] idle_timeout"), "{said}");

    // HTTP: headers begun and never finished.
    let mut t = TcpStream::connect(http_addr(&d)).await.unwrap();
    t.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    read_to_close(&mut t, within).await;

    // HTTP slowloris: one header byte at a time keeps no connection alive past the timeout.
    let mut t = TcpStream::connect(http_addr(&d)).await.unwrap();
    let (mut r, mut wr) = t.split();
    let drip = async {
        wr.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .iter()
            .cycle()
        {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(read_to_close(&mut r, within), drip);

    // An HTTP connection that sends nothing at all is closed too.
    let mut t = TcpStream::connect(http_addr(&d)).await.unwrap();
    read_to_close(&mut t, within).await;

    // Whole requests are served as before, on both listeners.
    let health = reqwest::get(format!("{}/healthz", d.http)).await.unwrap();
    assert_eq!(health.status(), 200);
    let who = w.via_daemon(&["list"]).await;
    assert!(who.status.success(), "{}", common::stderr(&who));
    assert!(d.stop(&w).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unmapped_caller_cannot_make_the_daemon_buffer_more_than_the_small_limit() {
    let w = World::start(SimOptions::default()).await;
    // This test's account is in no role.
    w.append_config("[roles]\nadmin = [\"somebody-else\"]\n");
    let d = w.start_daemon(&[]).await;

    let s = UnixStream::connect(w.socket()).await.unwrap();
    let (mut r, mut wr) = s.into_split();
    // 16 MiB on one line, in 64 KiB pieces, counting what the socket took before the
    // daemon hung up.
    let writer = tokio::spawn(async move {
        let piece = vec![b'a'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 16 << 20 {
            if wr.write_all(&piece).await.is_err() {
                break;
            }
            sent += piece.len();
        }
        sent
    });
    let said = read_to_close(&mut r, Duration::from_secs(15)).await;
    let sent = tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("the daemon stopped reading, so the writer must fail")
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(said.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!("one JSON reply line, not {said:?}: {e}");
        });
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["kind"], "input", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("larger than 64 KiB") && message.contains("role unmapped"),
        "{message}"
    );
    assert!(!message.contains("malformed"), "{message}");
    // What the socket took is what the daemon read (at most the limit and its read buffer)
    // plus the kernel's socket buffers: far below the 16 MiB offered.
    assert!(
        sent < 2 << 20,
        "the daemon read on after the limit: the client sent {sent} bytes before it hung up"
    );

    // A request under the limit is still answered, with the refusal the caller deserves.
    let out = w.via_daemon(&["list"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("not mapped to any role"));

    // 2,000 refusals from this caller: every one answered, each connection closed right
    // after its refusal (an unmapped caller holds no slot), a bounded record of them, and
    // the count adds up once the daemon has stopped.
    let started = Instant::now();
    for i in 0..2000 {
        let mut s = UnixStream::connect(w.socket()).await.unwrap();
        s.write_all(b"{\"op\":\"list\"}\n{\"op\":\"list\"}\n")
            .await
            .unwrap();
        let said = read_to_close(&mut s, Duration::from_secs(15)).await;
        assert_eq!(said.lines().count(), 1, "refusal {i}: {said}");
        let reply: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
        assert_eq!(reply["kind"], "denied", "{reply}");
    }
    let minutes = started.elapsed().as_secs() / 60 + 1;
    assert!(d.stop(&w).await.success());
    let refusals = refusals_on_record(&w, &me()).await;
    // The `list` through the CLI above was one refusal more.
    assert_eq!(refusals.refused, 2001, "{:#?}", refusals.rows);
    assert!(
        refusals.rows.len() as u64 <= 2 * (minutes + 1),
        "{} rows for {minutes} minute(s): {:#?}",
        refusals.rows.len(),
        refusals.rows
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_account_holds_at_most_its_share_of_the_socket_connections() {
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    // 16 connections in all, so one account holds at most 4 (an eighth, at least 4); the
    // held connections are not timed out during the test.
    let d = w
        .start_daemon(&[
            ("QBO_CONSOLE__DAEMON__MAX_SOCKET_CONNECTIONS", "16"),
            ("QBO_CONSOLE__DAEMON__IDLE_TIMEOUT", "120s"),
        ])
        .await;
    // Four connections that ask nothing, each one served (it answers a request) before the
    // next is opened, so that all four are counted.
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = UnixStream::connect(w.socket()).await.unwrap();
        let (r, mut wr) = s.into_split();
        let mut lines = tokio::io::BufReader::new(r).lines();
        wr.write_all(b"{\"op\":\"list\"}\n").await.unwrap();
        let reply = lines.next_line().await.unwrap().unwrap();
        assert!(reply.starts_with("{\"status\":\"ok\""), "{reply}");
        held.push((lines, wr));
    }
    // The fifth from the same account is told its share, naming the setting, and closed,
    // while twelve of the socket's sixteen slots are still free for other accounts.
    let mut s = UnixStream::connect(w.socket()).await.unwrap();
    let said = read_to_close(&mut s, Duration::from_secs(15)).await;
    assert!(
        said.contains("already holds 4 connections")
            && said.contains("most one account may hold")
            && said.contains("[daemon] max_socket_connections = 16"),
        "{said}"
    );
    assert!(!said.contains("already serving"), "{said}");
    let refused = w.via_daemon(&["list"]).await;
    assert!(!refused.status.success());
    assert!(
        common::stderr(&refused).contains("already holds 4 connections"),
        "{}",
        common::stderr(&refused)
    );
    // Once one closes, the account is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = w.via_daemon(&["list"]).await;
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a share given back was not taken again: {}",
            common::stderr(&out)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    assert!(d.stop(&w).await.success());
}

/// Starts `sleep 60` as `nobody` (uid and gid 65534) holding `n` connections to `socket`,
/// made before the exec, so the daemon sees nobody's credentials on each of them.
fn hold_connections_as_nobody(socket: &std::path::Path, n: usize) -> std::process::Child {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // Built here: between fork and exec only system calls are safe.
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < addr.sun_path.len());
    for (d, b) in addr.sun_path.iter_mut().zip(path) {
        *d = *b as libc::c_char;
    }
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("60");
    // SAFETY: only async-signal-safe system calls run in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            let nogroup: libc::gid_t = 65534;
            if libc::setgroups(1, &nogroup) != 0
                || libc::setgid(nogroup) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for _ in 0..n {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
                if fd < 0 || libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("hold connections as nobody")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_no_role_is_mapped_to_cannot_lock_the_admins_out_of_the_socket() {
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip_root_test("connecting as another account (nobody) needs root");
        return;
    }
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    // nobody reaches the socket through the test's directory and the socket's group.
    std::fs::set_permissions(
        w.path(""),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let d = w
        .start_daemon(&[
            ("QBO_CONSOLE__DAEMON__MAX_SOCKET_CONNECTIONS", "16"),
            ("QBO_CONSOLE__DAEMON__SOCKET_GROUP", "nogroup"),
            ("QBO_CONSOLE__DAEMON__IDLE_TIMEOUT", "120s"),
        ])
        .await;
    // Every one of the socket's slots asked for by nobody, who sends nothing and waits.
    let mut holder = hold_connections_as_nobody(&w.socket(), 16);
    // The admin, connecting after them, is still served.
    let out = w.via_daemon(&["list"]).await;
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(d.stop(&w).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_the_roles_limit_is_refused_naming_the_limit_through_the_cli() {
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    // Support's requests stay small: twelve targets of 100 KiB each (every argument within
    // the kernel's 128 KiB) make a request of 1.2 MiB, refused for its size with the limit
    // named, not with a parser's message or a lost connection.
    let names: Vec<String> = (0..12)
        .map(|i| format!("{i}{}", "t".repeat(100 * 1024)))
        .collect();
    let mut args = vec!["refresh"];
    args.extend(names.iter().map(String::as_str));
    let before = w.snapshot().await;
    let out = w.via_daemon(&args).await;
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("larger than 1 MiB") && err.contains("role support"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(w.snapshot().await, before, "nothing written");
    // An import, whatever its size, is refused to support before any of it is sent.
    let mut csv = String::from("tenant,realm_id,environment,refresh_token\n");
    for i in 0..20_000 {
        csv.push_str(&format!("t-{i},{},sandbox,RT1-{i:0>40}\n", 9_000_000 + i));
    }
    let file = w.path("big.csv");
    std::fs::write(&file, csv).unwrap();
    let out = w.via_daemon(&["import", file.to_str().unwrap()]).await;
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("(role support) may not import"), "{err}");
    let last = w.audit_events(1).await;
    assert_eq!(
        (last[0]["action"].as_str(), last[0]["outcome"].as_str()),
        (Some("import"), Some("denied")),
        "the refusal is on the record"
    );
    assert_eq!(
        w.ok(&["list", "--json"]).await.trim(),
        "[]",
        "nothing written"
    );
    assert!(d.stop(&w).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_200_idle_http_connections_the_operators_socket_still_answers() {
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    // Few descriptors, as under a tight LimitNOFILE: 200 HTTP clients would use them all
    // if the listener took every one. The idle clients are not timed out during the test.
    let cap = 64;
    let d = w
        .start_daemon_with_open_files(
            &[
                ("QBO_CONSOLE__DAEMON__MAX_HTTP_CONNECTIONS", "64"),
                ("QBO_CONSOLE__DAEMON__MAX_SOCKET_CONNECTIONS", "16"),
                ("QBO_CONSOLE__DAEMON__REQUEST_TIMEOUT", "120s"),
            ],
            192,
        )
        .await;
    // From ten addresses in turn: none reaches its own share (a quarter of the cap)
    // before the listener is full.
    let mut idle = Vec::new();
    let addr = http_addr(&d);
    for i in 0..200 {
        idle.push(idle_from(&format!("127.0.0.{}", 2 + i % 10), &addr).await);
    }
    // The operators' socket answers while they sit there.
    let who = tokio::time::timeout(Duration::from_secs(20), w.via_daemon(&["list", "--json"]))
        .await
        .expect("the operators' socket must answer while HTTP clients sit idle");
    assert!(who.status.success(), "{}", common::stderr(&who));

    // The clients over the HTTP cap were told so and let go; those within it stay open.
    let told = futures_util::future::join_all(idle.iter_mut().map(|t| async move {
        let mut got = Vec::new();
        match tokio::time::timeout(Duration::from_secs(3), t.read_to_end(&mut got)).await {
            Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
            Err(_) => None,
        }
    }))
    .await;
    let busy = told
        .iter()
        .flatten()
        .filter(|t| t.starts_with("HTTP/1.1 503") && t.contains("max_http_connections"))
        .count();
    let open = told.iter().filter(|t| t.is_none()).count();
    assert_eq!((open, busy), (cap, 200 - cap), "{told:?}");

    // Once they go, HTTP serves again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", d.http)).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "HTTP did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(d.stop(&w).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_in_hand_when_the_daemon_is_told_to_stop_is_still_on_record() {
    let w = World::start(SimOptions::default()).await;
    // A viewer, whom the daemon refuses a bulk refresh.
    w.append_config(&format!("[roles]\nviewer = [\"{}\"]\n", me()));
    let d = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__REQUEST_TIMEOUT", "30s")])
        .await;
    // The first refusal of the minute is recorded at once; the next is only counted.
    let out = w.via_daemon(&["refresh", "--all"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));

    // A connection the daemon is serving (it has answered on it), with a request half sent
    // when SIGTERM arrives and finished after the daemon has begun to shut down.
    let s = UnixStream::connect(w.socket()).await.unwrap();
    let (r, mut wr) = s.into_split();
    let mut r = tokio::io::BufReader::new(r);
    wr.write_all(b"{\"op\":\"list\"}\n").await.unwrap();
    let mut first = String::new();
    r.read_line(&mut first).await.unwrap();
    assert!(first.starts_with("{\"status\":\"ok\""), "{first}");
    wr.write_all(b"{\"op\":\"refresh\",\"al").await.unwrap();
    // The request is begun once the daemon has read its first bytes; on a loaded machine
    // that can lag the write, and a connection whose bytes are still in the kernel looks
    // idle (and is closed at once) when the stop arrives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = d.child.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.log().contains("shutting down") {
        assert!(Instant::now() < deadline, "no shutdown begun: {}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time enough for a daemon that did not wait for it to record the counts and exit.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = wr.write_all(b"l\":true}\n").await;
    let said = read_to_close(&mut r, Duration::from_secs(15)).await;
    assert!(
        said.contains("\"denied\""),
        "the request in hand is answered: {said:?}"
    );
    assert!(d.stop(&w).await.success());

    let refusals = refusals_on_record(&w, &me()).await;
    assert_eq!(refusals.refused, 2, "{:#?}", refusals.rows);
}

/// The `denied` events of one account, and how many refusals they stand for: one for an
/// event of its own, N for a summary of N further refusals.
struct Refusals {
    rows: Vec<serde_json::Value>,
    refused: u64,
}

async fn refusals_on_record(w: &World, account: &str) -> Refusals {
    let rows: Vec<serde_json::Value> = w
        .audit_events(100_000)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "denied" && e["actor_account"] == account)
        .collect();
    let refused = rows
        .iter()
        .map(|e| {
            let reason = e["reason"].as_str().unwrap_or_default();
            match reason.split_once(" further refusal") {
                Some((n, _)) => n.parse::<u64>().unwrap_or_else(|_| panic!("{reason}")),
                None => 1,
            }
        })
        .sum();
    Refusals { rows, refused }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_refusals_from_one_caller_leave_two_rows_a_minute_whose_counts_add_up() {
    let w = World::start(SimOptions::default()).await;
    let d = w.in_process().await;
    let mallory = Actor {
        kind: qbo_core::identity::ActorKind::Operator(qbo_core::identity::Operator {
            account: "mallory".into(),
            uid: 4242,
            ssh_client: None,
            interface: Interface::Cli,
            role: Role::Unmapped,
        }),
        request_id: None,
    };
    // Four minutes of the engine clock, 500 refusals in each, by both ways a refusal is
    // made: the socket's refusal of an unmapped caller and the service's own check.
    for minute in 0..4 {
        for i in 0..500 {
            let err = if i % 2 == 0 {
                d.service
                    .deny_unmapped(&mallory.for_request(), qbo_store::audit::Action::List)
                    .await
            } else {
                d.service
                    .handle(
                        &mallory.for_request(),
                        Request::List {
                            status: None,
                            environment: None,
                            filter: None,
                            limit: None,
                        },
                    )
                    .await
                    .unwrap_err()
            };
            assert!(
                err.to_string().contains("permission denied"),
                "{minute}/{i}: {err}"
            );
        }
        d.clock.advance(chrono::Duration::seconds(61));
    }
    // Nothing counted is left open: the last minute's window has closed and its summary is
    // recorded by the sweep, as the daemon runs it.
    assert_eq!(d.service.record_counted_refusals(false).await.unwrap(), 1);
    assert_eq!(d.service.record_counted_refusals(true).await.unwrap(), 0);
    let r = refusals_on_record(&w, "mallory").await;
    assert_eq!(r.refused, 2000, "{:#?}", r.rows);
    assert_eq!(
        r.rows.len(),
        8,
        "a first refusal and one summary a minute: {:#?}",
        r.rows
    );
    let summary = r
        .rows
        .iter()
        .find(|e| e["reason"].as_str().unwrap().contains("further"))
        .unwrap();
    assert_eq!(summary["action"], "list");
    assert_eq!(summary["role"], "unmapped");
    assert_eq!(summary["actor_uid"], 4242);
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
}

/// A daemon with every listener: the operators' HTTP listener, the token API, and the
/// public listener carrying Intuit's webhooks. Returns it, the public listener's address
/// and the token API's.
async fn every_listener(
    w: &World,
    env: &[(&str, &str)],
    public_extra: &str,
) -> (common::DaemonProc, String, String) {
    let port = crate::common::free_port();
    common::write_secret(&w.path("verifier.token"), crate::webhooks::VERIFIER);
    w.append_config(&format!(
        "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}\"\n{public_extra}\n\
         [webhooks]\nverifier_token_file = \"{}\"\n",
        w.path("verifier.token").display()
    ));
    let d = w.start_daemon(env).await;
    let api = d.api_url().trim_start_matches("http://").to_string();
    (d, format!("127.0.0.1:{port}"), api)
}

/// Reads an answer's head (status line and headers), within `within`.
async fn head_within(t: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, t.read(&mut buf)).await {
            Err(_) => panic!(
                "no answer within {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Issue 23, one network edge: a request whose headers arrived and whose body stalls (or
/// drips a byte at a time) is answered 408 and hung up on at the body's deadline, on every
/// listener whose route takes a body (the token API's `sync`, the webhooks), before its
/// handler runs; the public listener's answer carries its hardening headers like its
/// pages. A request to a route that takes no body is answered at once, its body unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_body_is_cut_off_at_its_deadline_on_every_listener() {
    let w = World::start(SimOptions::default()).await;
    let (d, public, api) =
        every_listener(&w, &[("QBO_CONSOLE__DAEMON__REQUEST_TIMEOUT", "1s")], "").await;
    let within = Duration::from_secs(15);
    let health = http_addr(&d);
    for (what, addr, line, takes_body) in [
        (
            "token API",
            api.as_str(),
            "POST /v1/connections/123/sync",
            true,
        ),
        ("webhooks", public.as_str(), "POST /webhooks/intuit", true),
        (
            "public listener",
            public.as_str(),
            "POST /connect/abc",
            false,
        ),
        (
            "health and metrics",
            health.as_str(),
            "POST /healthz",
            false,
        ),
    ] {
        for drip in [false, true] {
            let started = Instant::now();
            let mut t = TcpStream::connect(addr).await.unwrap();
            t.write_all(
                format!(
                    "{line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            if !takes_body {
                // Answered at once (its route's own answer), long before any deadline.
                let head = head_within(&mut t, Duration::from_millis(900)).await;
                assert!(
                    head.starts_with("HTTP/1.1 4") && !head.starts_with("HTTP/1.1 408"),
                    "{what}: {head}"
                );
                continue;
            }
            let (mut r, mut wr) = t.split();
            let send = async {
                // A byte every 100 ms would take 40 s; silence takes forever.
                if drip {
                    for _ in 0..400 {
                        if wr.write_all(b" ").await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            let (said, ()) = tokio::join!(read_to_close(&mut r, within), send);
            assert!(
                said.starts_with("HTTP/1.1 408"),
                "{what} (drip {drip}) after {:?}: {said}",
                started.elapsed()
            );
            assert!(said.contains("[daemon] request_timeout"), "{what}: {said}");
            if addr == public {
                assert!(
                    said.to_ascii_lowercase()
                        .contains("content-security-policy: default-src 'none'"),
                    "{what}: {said}"
                );
            }
        }
    }
    d.stop(&w).await;
}

/// Opens a connection to `addr` from the local address `from` and leaves it idle.
async fn idle_from(from: &str, addr: &str) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(addr.parse().unwrap()).await.unwrap()
}

/// Sends `request_line` from the local address `from` and reads the whole answer.
async fn ask_from(from: &str, addr: &str, request_line: &str) -> String {
    let mut t = idle_from(from, addr).await;
    t.write_all(format!("{request_line}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_to_close(&mut t, Duration::from_secs(15)).await
}

/// Issue 23, one network edge: one client address holds at most its share of each
/// listener's connections, set by the same key on each (`max_connections_per_address`; a
/// quarter of the cap, at least 4, unless set); the next from it is refused naming that
/// key, and another address is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_address_holds_at_most_its_share_of_each_listener_while_another_is_served() {
    let w = World::start(SimOptions::default()).await;
    let (d, public, api) = every_listener(
        &w,
        &[
            ("QBO_CONSOLE__DAEMON__REQUEST_TIMEOUT", "30s"),
            ("QBO_CONSOLE__DAEMON__MAX_HTTP_CONNECTIONS", "16"),
            ("QBO_CONSOLE__API__MAX_CONNECTIONS", "16"),
            ("QBO_CONSOLE__API__MAX_CONNECTIONS_PER_ADDRESS", "3"),
        ],
        "max_connections = 16\nmax_connections_per_address = 2",
    )
    .await;
    let health = http_addr(&d);
    for (what, addr, probe, share, key) in [
        (
            "token API",
            api.as_str(),
            "GET /v1/connections HTTP/1.1",
            3,
            "[api] max_connections_per_address",
        ),
        (
            "public listener",
            public.as_str(),
            "GET /nothing-here HTTP/1.1",
            2,
            "[public] max_connections_per_address",
        ),
        (
            "health and metrics",
            health.as_str(),
            "GET /healthz HTTP/1.1",
            4,
            "[daemon] max_http_connections_per_address",
        ),
    ] {
        let mut held = Vec::new();
        for _ in 0..share {
            held.push(idle_from("127.0.0.2", addr).await);
        }
        // Accepted and counted before the next arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut over = idle_from("127.0.0.2", addr).await;
        let said = read_to_close(&mut over, Duration::from_secs(15)).await;
        assert!(
            said.starts_with("HTTP/1.1 503") && said.contains("from your address"),
            "{what}: {said}"
        );
        // Naming the setting that sets this listener's share.
        assert!(
            said.contains(key) && said.contains(&format!("{share} of them")),
            "{what}: {said}"
        );
        let said = ask_from("127.0.0.1", addr, probe).await;
        assert!(
            !said.starts_with("HTTP/1.1 503"),
            "{what}: another address is served: {said}"
        );
        assert!(said.starts_with("HTTP/1.1 "), "{what}: {said}");
        // Their places come back once they go.
        drop(held);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let said = ask_from("127.0.0.2", addr, probe).await;
        assert!(!said.starts_with("HTTP/1.1 503"), "{what}: {said}");
    }
    d.stop(&w).await;
}

/// Issue 23, one network edge: Intuit's webhook route is behind the public listener's
/// guard like the browsers' routes: its answers carry the hardening headers, a body over
/// its limit is refused 413 before it is read, and one address over the per-minute budget
/// is answered 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_route_is_rate_limited_and_body_limited_like_the_other_public_routes() {
    let w = World::start(SimOptions::default()).await;
    let (d, public, _) = every_listener(&w, &[], "rate_limit_per_minute = 5").await;
    let url = format!("http://{public}{}", qbo_daemon::webhooks::PATH);
    let http = reqwest::Client::new();
    let unsigned = |body: Vec<u8>| {
        http.post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Refused for its missing signature, but through the guard: hardened.
    let r = unsigned(b"{}".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));

    let too_big = vec![b' '; qbo_daemon::webhooks::MAX_BODY + 2];
    let r = unsigned(too_big).await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Refused by its route, which counts it.
    let m = d.get("/metrics").await.1;
    assert_eq!(
        common::metric(&m, "qbo_webhook_refusals_total{reason=\"oversized\"}"),
        Some(1.0),
        "{m}"
    );

    // Five a minute: the two above (both through the guard) and three more, then refused.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(unsigned(b"{}".to_vec()).await.unwrap());
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status().as_u16() == 401));
    assert_eq!(last.status().as_u16(), 429, "{:?}", last.headers());
    assert!(last.headers().contains_key("retry-after"));
    d.stop(&w).await;
}
