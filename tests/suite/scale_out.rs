//! Several daemons, one database: two `serve` processes on PostgreSQL plus CLI refreshers
//! racing them for 1,000 refresh cycles, with one daemon killed by SIGKILL mid-run. On
//! SQLite, where a second daemon is refused, the killed daemon is replaced by a new one.

use crate::common;

use common::{Tuning, World};
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemons_share_the_work_and_survive_a_sigkill() {
    let postgres = common::postgres_base_url().is_some();
    let opts = SimOptions {
        rotation: Rotation::EveryRefresh,
        // A daemon killed between Intuit's answer and its commit leaves the previous token
        // stored: Intuit's 24-hour grace is what recovers it (as in production).
        previous_token: PreviousToken::Grace24h,
        access_token_ttl_secs: 6,
        token_latency: Duration::from_millis(2),
        ..SimOptions::default()
    };
    let tuning = Tuning {
        intuit_timeout: "1s",
        lease: "2s",
        extra: "refresh_before_expiry = \"4s\"\ntick = \"100ms\"\n".into(),
        ..Tuning::default()
    };
    let w = World::start_tuned(opts, tuning).await;
    w.seed(60, "scale").await;
    w.sim.reset_stats();
    let me = qbo_core::identity::account_name(unsafe { libc::getuid() });
    w.append_config(&format!("[roles]\nadmin = [\"{me}\"]\n"));
    let sock_b = w.path("b.sock");
    let a = w.start_daemon(&[]).await;
    let b = if postgres {
        Some(
            w.start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET", sock_b.to_str().unwrap())])
                .await,
        )
    } else {
        None
    };

    let started = Instant::now();
    let mut a = Some(a);
    let mut replacement = None;
    while w.sim.stats().refreshes < 1000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "1,000 refresh cycles not reached: {:?}",
            w.sim.stats()
        );
        // CLI refreshers race the daemons: one in its own process, one through the socket.
        let embedded = w.cli(&["refresh", "--all"]);
        let socket = async {
            if a.is_some() {
                Some(w.via_daemon(&["refresh", "--all"]).await)
            } else {
                None
            }
        };
        let (e, s) = tokio::join!(embedded, socket);
        assert!(e.status.success(), "{}", common::stdout(&e));
        if let Some(s) = s {
            assert!(
                s.status.success() || s.status.code() == Some(5),
                "{}",
                common::stderr(&s)
            );
        }
        if w.sim.stats().refreshes >= 500 {
            if let Some(d) = a.take() {
                d.kill(&w).await;
                if !postgres {
                    // One daemon per SQLite file: the lock died with the process.
                    replacement = Some(w.start_daemon(&[]).await);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.is_none(), "the first daemon was killed mid-run");
    // From here on only the survivor refreshes: no CLI runs. After longer than an access
    // token lives (6 s) plus the dead daemon's leases (2 s), every connection must have been
    // refreshed by it, those the dead daemon held at its death included.
    let quiet_from = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let now = chrono::Utc::now();
    for c in w.connections_json().await {
        let exp: chrono::DateTime<chrono::Utc> =
            c["access_expires_at"].as_str().unwrap().parse().unwrap();
        assert!(exp > now, "{} was left to expire: {c}", c["tenant"]);
        let last: chrono::DateTime<chrono::Utc> =
            c["last_refresh_at"].as_str().unwrap().parse().unwrap();
        assert!(
            last > quiet_from,
            "{} was not refreshed by the surviving daemon: {c}",
            c["tenant"]
        );
        assert_eq!(c["status"], "active");
    }
    let stats = w.sim.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert_eq!(stats.concurrent_uses, 0, "{stats:?}");
    if let Some(b) = b {
        assert!(b.log().contains("serving"), "second daemon ran");
        assert!(b.stop(&w).await.success());
    }
    if let Some(r) = replacement {
        assert!(r.stop(&w).await.success());
    }
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
    // Both daemons (or the replacement) did scheduled work.
    let tail = w.ok(&["audit", "tail", "-n", "100000", "--json"]).await;
    let scheduled = tail
        .lines()
        .filter(|l| l.contains("\"interface\":\"scheduler\""))
        .count();
    assert!(scheduled > 100, "only {scheduled} scheduled refreshes");
    w.assert_no_secrets().await;
}
