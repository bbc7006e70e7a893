//! Exports an auditor can hand to someone who never had access to the ops box: streamed
//! with a signed manifest, verified offline with nothing but the file and the public key,
//! and every kind of damage named with its first bad sequence number; the same kinds named
//! by `audit verify` on the database.

use crate::common;

use common::World;
use qbo_sim::SimOptions;
use qbo_store::audit::export::Manifest;
use qbo_store::audit::signing::ManifestSigner;
use qbo_store::audit::Action;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// A world with imports, refreshes and a few reads: about a dozen events.
async fn world() -> World {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "exp").await;
    w.ok(&["refresh", "--all"]).await;
    w.ok(&["list"]).await;
    w
}

fn pubkey_of(w: &World) -> String {
    let seed = std::fs::read_to_string(w.path("audit-signing.key")).unwrap();
    ManifestSigner::from_seed(&decode_seed(&seed)).public_key()
}

fn decode_seed(text: &str) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
        .try_into()
        .unwrap()
}

fn manifest_of(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.manifest.json", file.display()))
}

/// `audit verify --export` run with an empty environment, from an empty directory: no
/// configuration file anywhere, no database.
async fn verify_offline(file: &Path, pubkey: Option<&str>) -> (Option<i32>, Value) {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"));
    cmd.env_clear().current_dir(empty.path()).args([
        "audit",
        "verify",
        "--json",
        "--export",
        file.to_str().unwrap(),
    ]);
    if let Some(k) = pubkey {
        cmd.args(["--pubkey", k]);
    }
    let out = cmd.output().await.unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON from offline verify: {} {}",
            common::stdout(&out),
            common::stderr(&out)
        )
    });
    (out.status.code(), v)
}

async fn export(w: &World, name: &str, extra: &[&str]) -> PathBuf {
    let file = w.path(name);
    let format = if name.ends_with(".csv") {
        "csv"
    } else {
        "jsonl"
    };
    let mut args = vec![
        "audit",
        "export",
        "--format",
        format,
        "-o",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = w.ok(&args).await;
    assert!(out.contains("exported"), "{out}");
    file
}

/// Copies an export and its manifest under another name, with its data lines changed.
fn damaged(file: &Path, name: &str, change: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    let csv = file.extension().is_some_and(|e| e == "csv");
    let newline = if csv { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.split_terminator(newline).map(str::to_string).collect();
    let header = if csv { Some(lines.remove(0)) } else { None };
    change(&mut lines);
    let mut out = String::new();
    if let Some(h) = header {
        out.push_str(&h);
        out.push_str(newline);
    }
    for l in lines {
        out.push_str(&l);
        out.push_str(newline);
    }
    let copy = file.with_file_name(name);
    std::fs::write(&copy, out).unwrap();
    std::fs::copy(manifest_of(file), manifest_of(&copy)).unwrap();
    copy
}

fn seq_of_line(line: &str, csv: bool) -> i64 {
    if csv {
        line.split(',').next().unwrap().parse().unwrap()
    } else {
        serde_json::from_str::<Value>(line).unwrap()["seq"]
            .as_i64()
            .unwrap()
    }
}

async fn assert_broken(file: &Path, key: &str, seq: Option<i64>, kind: &str) {
    let (code, v) = verify_offline(file, Some(key)).await;
    assert_eq!(code, Some(1), "{} must fail: {v}", file.display());
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["kind"], kind, "{}: {v}", file.display());
    match seq {
        Some(s) => assert_eq!(v["first_bad_seq"], s, "{}: {v}", file.display()),
        None => assert!(v["first_bad_seq"].is_null(), "{v}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_offline_with_an_empty_environment_and_holds_no_secret() {
    let w = world().await;
    let key = pubkey_of(&w);
    assert_eq!(w.ok(&["audit", "pubkey"]).await.trim(), key);
    let pubkey_event = w.audit_events(1).await.remove(0);
    common::catalogue::assert_catalogued(&pubkey_event, Action::AuditPubkey, &me());

    for name in ["all.jsonl", "all.csv"] {
        let file = export(&w, name, &[]).await;
        let ev = w.audit_events(1).await.remove(0);
        common::catalogue::assert_catalogued(&ev, Action::AuditExport, &me());
        let m: Manifest =
            serde_json::from_str(&std::fs::read_to_string(manifest_of(&file)).unwrap()).unwrap();
        assert!(m.contiguous && m.rows >= 8, "{m:?}");
        assert_eq!(m.first_seq, Some(1));
        assert_eq!(m.exported_by.account, me());
        assert_eq!(m.public_key, key);
        assert!(
            ev["reason"].as_str().unwrap().contains(&m.sha256),
            "the record names the file's hash: {ev}"
        );
        let (code, v) = verify_offline(&file, Some(&key)).await;
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["ok"], true);
        assert_eq!(v["rows"], m.rows);
        assert_eq!(v["key_given"], true);
    }
    // A filtered export: its rows' own hashes and the manifest's range are checked.
    let file = export(
        &w,
        "refreshes.jsonl",
        &["--action", "refresh", "--outcome", "ok"],
    )
    .await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["action"] == "refresh"));
    let (code, v) = verify_offline(&file, Some(&key)).await;
    assert_eq!(
        (code, &v["contiguous"]),
        (Some(0), &Value::Bool(false)),
        "{v}"
    );
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_damage_to_an_exported_file_is_named_with_its_first_bad_sequence() {
    let w = world().await;
    let key = pubkey_of(&w);
    for name in ["e.jsonl", "e.csv"] {
        let file = export(&w, name, &[]).await;
        let csv = name.ends_with(".csv");
        let text = std::fs::read_to_string(&file).unwrap();
        let data: Vec<String> = text
            .lines()
            .skip(usize::from(csv))
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        let seq = |i: usize| seq_of_line(&data[i], csv);
        let last = data.len() - 1;

        let changed = damaged(&file, &format!("changed-{name}"), |l| {
            l[4] = if csv {
                l[4].replacen(",cli,", ",tui,", 1)
            } else {
                let mut v: Value = serde_json::from_str(&l[4]).unwrap();
                v["actor_account"] = "mallory".into();
                v.to_string()
            };
        });
        assert_broken(&changed, &key, Some(seq(4)), "changed").await;

        let missing = damaged(&file, &format!("missing-{name}"), |l| {
            l.remove(3);
        });
        assert_broken(&missing, &key, Some(seq(3)), "missing").await;

        let inserted = damaged(&file, &format!("inserted-{name}"), |l| {
            let copy = l[2].clone();
            l.insert(4, copy);
        });
        assert_broken(&inserted, &key, Some(seq(4)), "inserted").await;

        let swapped = damaged(&file, &format!("swapped-{name}"), |l| l.swap(5, 6));
        assert_broken(&swapped, &key, Some(seq(5)), "reordered").await;

        let truncated = damaged(&file, &format!("truncated-{name}"), |l| {
            l.pop();
        });
        assert_broken(&truncated, &key, Some(seq(last)), "truncated").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_signed_by_another_key_or_not_matching_its_file_is_rejected() {
    let w = world().await;
    let key = pubkey_of(&w);
    let file = export(&w, "m.jsonl", &[]).await;
    let original: Manifest =
        serde_json::from_str(&std::fs::read_to_string(manifest_of(&file)).unwrap()).unwrap();

    // Re-signed with another key: the manifest is self-consistent, but not the daemon's.
    let other = ManifestSigner::from_seed(&[9u8; 32]);
    let mut forged = original.clone();
    forged.public_key = other.public_key();
    forged.signature = other.sign(&forged.signed_bytes().unwrap());
    std::fs::write(manifest_of(&file), forged.to_pretty().unwrap()).unwrap();
    assert_broken(&file, &key, None, "not_signed").await;
    // Without --pubkey the forged manifest is consistent; it names the key it claims, so
    // the reader sees it is not the one `audit pubkey` printed.
    let (code, v) = verify_offline(&file, None).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["public_key"], other.public_key());
    assert_eq!(v["key_given"], false);

    // A changed field under the original signature.
    let mut edited = original.clone();
    edited.rows -= 1;
    std::fs::write(manifest_of(&file), edited.to_pretty().unwrap()).unwrap();
    assert_broken(&file, &key, None, "not_signed").await;
    let (code, _) = verify_offline(&file, None).await;
    assert_eq!(code, Some(1));

    // Properly signed by the daemon's key, but for other bytes than the file holds.
    let signer = ManifestSigner::from_seed(&decode_seed(
        &std::fs::read_to_string(w.path("audit-signing.key")).unwrap(),
    ));
    let mut other_file = original.clone();
    other_file.sha256 = "0".repeat(64);
    other_file.signature = signer.sign(&other_file.signed_bytes().unwrap());
    std::fs::write(manifest_of(&file), other_file.to_pretty().unwrap()).unwrap();
    assert_broken(&file, &key, None, "hash_mismatch").await;

    // And the genuine manifest still proves the file.
    std::fs::write(manifest_of(&file), original.to_pretty().unwrap()).unwrap();
    assert_eq!(verify_offline(&file, Some(&key)).await.0, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_still_verify() {
    let w = world().await;
    let hostile = [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+1+1",
        "-2",
        "@SUM(A1)",
    ];
    let mut csv = String::from("tenant,realm_id,environment,refresh_token\n");
    for (i, t) in hostile.iter().enumerate() {
        csv.push_str(&format!(
            "\"{}\",{},sandbox,RT1-not-issued-{i}\n",
            t.replace('"', "\"\""),
            9_100_000 + i
        ));
    }
    let file = w.path("hostile.csv");
    std::fs::write(&file, csv).unwrap();
    w.ok(&["import", file.to_str().unwrap()]).await;
    std::fs::remove_file(&file).unwrap();

    let out = export(&w, "cells.csv", &[]).await;
    let bytes = std::fs::read(&out).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a CSV export starts with a UTF-8 BOM"
    );
    assert!(
        String::from_utf8_lossy(&bytes).contains("\r\n"),
        "RFC 4180 lines end in CRLF"
    );
    let mut rdr = csv::ReaderBuilder::new().from_reader(&bytes[3..]);
    let headers = rdr.headers().unwrap().clone();
    let tenant_col = headers.iter().position(|h| h == "tenant").unwrap();
    let mut tenants = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        for cell in rec.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t']),
                "a cell a spreadsheet would run as a formula: {cell:?}"
            );
        }
        tenants.push(rec[tenant_col].to_string());
    }
    for t in hostile {
        assert!(
            tenants.contains(&format!("'{t}")),
            "{t:?} is written behind a quote: {tenants:?}"
        );
    }
    // The neutralised cells come back exactly: the chain checks out.
    let (code, v) = verify_offline(&out, Some(&pubkey_of(&w))).await;
    assert_eq!(code, Some(0), "{v}");
    // The same names (quotes, commas, brackets) in JSON lines, as the database spells them.
    let lines = export(&w, "cells.jsonl", &["--action", "import"]).await;
    let (code, v) = verify_offline(&lines, Some(&pubkey_of(&w))).await;
    assert_eq!(code, Some(0), "{v}");
    let text = std::fs::read_to_string(&lines).unwrap();
    for t in hostile {
        assert!(
            text.lines()
                .any(|l| serde_json::from_str::<Value>(l).unwrap()["tenant"] == t),
            "{t:?} in {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_keeps_its_fingerprint_across_keys_rotate_in_every_export() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "fp").await;
    let before = export(&w, "before.jsonl", &["--action", "import"]).await;
    let import_fp = |file: &Path| -> String {
        let text = std::fs::read_to_string(file).unwrap();
        let ev: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        ev["fingerprints"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .find_map(|p| p.strip_prefix("refresh="))
            .expect("the import names the stored token's fingerprint")
            .to_string()
    };
    let stored = import_fp(&before);

    let new_key = w.path("new.key");
    w.ok(&["keys", "generate", "--out", new_key.to_str().unwrap()])
        .await;
    let d = w.path("").display().to_string();
    let d = d.trim_end_matches('/');
    w.edit_config(
        &format!("key_file = \"{d}/token.key\""),
        &format!("key_file = \"{d}/new.key\"\nold_key_files = [\"{d}/token.key\"]"),
    );
    w.ok(&["keys", "rotate", "--new-key", new_key.to_str().unwrap()])
        .await;
    // The refresh after the rotation fingerprints the same token anew, under the new key.
    w.ok(&["refresh", "--all"]).await;
    let after = export(&w, "after.csv", &[]).await;
    let after_jsonl = export(&w, "after.jsonl", &[]).await;
    assert_eq!(import_fp(&after_jsonl), stored);
    let text = std::fs::read_to_string(&after_jsonl).unwrap();
    let refresh: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["action"] == "refresh" && e["outcome"] == "ok")
        .expect("a refresh after the rotation");
    assert!(
        refresh["fingerprints"]
            .as_str()
            .unwrap()
            .contains(&format!("refresh_used={stored}")),
        "the token spent after the rotation has the fingerprint it was stored with: {refresh}"
    );
    assert!(
        std::fs::read_to_string(&after).unwrap().contains(&stored),
        "the CSV export carries the same fingerprint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_export_input_is_refused_before_anything_is_written() {
    let w = world().await;
    let file = w.path("never.jsonl");
    for args in [
        vec!["--since", "last tuesday"],
        vec!["--since", "2026-02-01", "--until", "2026-01-01"],
    ] {
        let mut all = vec![
            "audit",
            "export",
            "--format",
            "jsonl",
            "-o",
            file.to_str().unwrap(),
        ];
        all.extend(args.iter().copied());
        let out = w.cli(&all).await;
        assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
        assert!(
            common::stderr(&out).contains("--since"),
            "{}",
            common::stderr(&out)
        );
        assert!(!file.exists() && !manifest_of(&file).exists());
    }
    // An existing file is never overwritten.
    std::fs::write(&file, "mine").unwrap();
    let out = w
        .cli(&[
            "audit",
            "export",
            "--format",
            "jsonl",
            "-o",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("already exists"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // A daemon without a signing key says how to make one.
    let d = w.path("").display().to_string();
    w.edit_config(
        &format!(
            "signing_key_file = \"{}/audit-signing.key\"",
            d.trim_end_matches('/')
        ),
        "",
    );
    let out = w
        .cli(&[
            "audit",
            "export",
            "--format",
            "jsonl",
            "-o",
            w.path("unsigned.jsonl").to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("[audit] signing_key_file") && err.contains("keys generate"),
        "{err}"
    );
    assert!(!w.path("unsigned.jsonl").exists());
}
