//! The workspace's crates are the layers the README draws: each depends only on crates
//! below it, `qbo-sim` on none of ours, and no interface (daemon, console, CLI) on the
//! store or the engine, so a call that reaches past the service does not compile. This
//! checks the README's table against every `Cargo.toml`, so neither can drift.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const START: &str = "<!-- layers:start -->";
const END: &str = "<!-- layers:end -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `qbo-*` crates a manifest's `[dependencies]` names (dev-dependencies aside: tests may
/// reach any layer).
fn our_dependencies(manifest: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut name = None;
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section == "[package]" && line.starts_with("name = ") {
            name = Some(
                line.trim_start_matches("name = ")
                    .trim_matches('"')
                    .to_string(),
            );
        }
        if section == "[dependencies]" && line.starts_with("qbo-") {
            deps.push(line.split([' ', '.', '=']).next().unwrap().to_string());
        }
    }
    deps.sort();
    (name.expect("a [package] name"), deps)
}

/// Every package of the workspace: the root and each `crates/*`.
fn manifests() -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let (name, deps) = our_dependencies(&root().join("Cargo.toml"));
    out.insert(name, (".".to_string(), deps));
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let m = e.path().join("Cargo.toml");
        if m.exists() {
            let (name, deps) = our_dependencies(&m);
            let folder = format!("crates/{}", e.file_name().to_string_lossy());
            out.insert(name, (folder, deps));
        }
    }
    out
}

/// The README's table, bottom layer first: (crate, folder, what it depends on).
fn readme_layers() -> Vec<(String, String, Vec<String>)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(START).expect("README.md has the layers table") + START.len();
    let end = start + readme[start..].find(END).expect("the layers table ends");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let strip = |s: &str| s.trim_matches('`').to_string();
            let mut deps: Vec<String> = cells[2]
                .split(',')
                .map(|d| strip(d.trim()))
                .filter(|d| d.starts_with("qbo-"))
                .collect();
            deps.sort();
            (strip(cells[0]), strip(cells[1]), deps)
        })
        .collect()
}

#[test]
fn the_readme_draws_the_crates_as_their_manifests_declare_them() {
    let declared = manifests();
    let drawn = readme_layers();
    let mut drawn_names: Vec<&str> = drawn.iter().map(|(n, _, _)| n.as_str()).collect();
    drawn_names.sort();
    let declared_names: Vec<&str> = declared.keys().map(String::as_str).collect();
    assert_eq!(
        drawn_names, declared_names,
        "README.md's layers table and the workspace's packages differ"
    );
    for (name, folder, deps) in &drawn {
        let (f, d) = &declared[name];
        assert_eq!(folder, f, "{name}'s folder");
        assert_eq!(
            deps, d,
            "{name}'s dependencies on our crates: README.md says {deps:?}, Cargo.toml {d:?}"
        );
    }
}

#[test]
fn every_crate_depends_only_on_layers_below_it() {
    let drawn = readme_layers();
    let rank: BTreeMap<&str, usize> = drawn
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| (n.as_str(), i))
        .collect();
    for (name, deps) in manifests().iter().map(|(n, (_, d))| (n, d)) {
        for d in deps {
            assert!(
                rank[d.as_str()] < rank[name.as_str()],
                "{name} depends on {d}, which the README draws above it"
            );
        }
    }
    let m = manifests();
    assert!(
        m["qbo-sim"].1.is_empty(),
        "qbo-sim must depend on none of our crates"
    );
    for interface in ["qbo-console", "qbo-daemon", "qbo-tui"] {
        for below in ["qbo-store", "qbo-engine"] {
            assert!(
                !m[interface].1.iter().any(|d| d == below),
                "{interface} is an interface: it reaches the layers below through qbo-service only, not {below}"
            );
        }
    }
}

/// Source files under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_engine_is_reached_only_inside_the_service() {
    let mut files = Vec::new();
    for dir in [
        "src",
        "crates/daemon/src",
        "crates/console/src",
        "tests",
        "benches",
    ] {
        sources(&root().join(dir), &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| !p.ends_with("layers.rs"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("engine()"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "engine() is called outside the service crate: {offenders:?}"
    );
}

/// `Service::lifecycle_for_tests` exists only under the `test-support` feature that the
/// tests' dev-dependency turns on: product code that called it would pass `cargo test`
/// and fail to build for release, so no crate's own source may name it.
#[test]
fn only_tests_and_benches_reach_under_the_service() {
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        sources(&e.path().join("src"), &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| !p.ends_with("crates/service/src/lib.rs"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("lifecycle_for_tests")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "product code reaches the engine through the tests' door: {offenders:?}"
    );
}

/// Issue 23, item 6: errors are types, not strings, wherever they cross a module. A
/// visible function (`pub`, `pub(crate)`, `pub(super)`) returning `Result<_, String>`, a
/// `FromStr`/`TryFrom` whose error is a `String`, or a visible field holding such a result
/// is refused; a private helper inside one module may still build its message as text.
#[test]
fn no_error_crosses_a_module_as_a_bare_string() {
    let mut files = Vec::new();
    for dir in ["src", "crates"] {
        sources(&root().join(dir), &mut files);
    }
    let mut offenders = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let visible = l.starts_with("pub ") || l.starts_with("pub(");
            let string_error = result_errors(l).iter().any(|e| e == "String");
            let string_assoc =
                l.starts_with("type Err = String;") || l.starts_with("type Error = String;");
            if (visible && string_error) || string_assoc {
                offenders.push(format!("{}:{}: {l}", p.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "errors crossing a module as bare strings (give them the layer's error type):\n{}",
        offenders.join("\n")
    );
}

/// The error type of every `Result<T, E>` written on `line` (its last argument at the top
/// level of the angle brackets).
fn result_errors(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("Result<") {
        let body = &rest[at + "Result<".len()..];
        let (mut depth, mut last_comma) = (0usize, None);
        for (i, c) in body.char_indices() {
            match c {
                '<' | '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => last_comma = Some(i),
                '>' if depth == 0 => {
                    if let Some(k) = last_comma {
                        out.push(body[k + 1..i].trim().to_string());
                    }
                    break;
                }
                '>' => depth -= 1,
                _ => {}
            }
        }
        rest = body;
    }
    out
}

#[test]
fn the_error_type_of_a_result_is_read_from_its_last_argument() {
    assert_eq!(
        result_errors("pub fn f() -> Result<(), String> {"),
        ["String"]
    );
    assert_eq!(
        result_errors(
            "pub fn f(m: &BTreeMap<String, String>) -> Result<Map<String, String>, SimError> {"
        ),
        ["SimError"]
    );
    assert_eq!(
        result_errors("pub x: std::result::Result<Vec<(u8, String)>, String>,"),
        ["String"]
    );
}

/// Issue 23, item 2: the service hands interfaces its own views and the core's shared
/// shapes, never a store row or a lifecycle type. A visible item of the service (a
/// re-export, a signature, a field) that names `qbo_store::` or `qbo_engine::` is refused;
/// so is a public type of the service reached by a `pub use` of those crates.
#[test]
fn the_service_shows_no_store_row_or_lifecycle_type() {
    let mut files = Vec::new();
    sources(&root().join("crates/service/src"), &mut files);
    let mut offenders = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let visible = l.starts_with("pub ") || l.starts_with("pub(crate) use");
            let public = l.starts_with("pub ") && !l.starts_with("pub(");
            // The client and the protocol are what interfaces hold: they may not name the
            // layers below at all, not even privately.
            let interface_facing =
                p.components().any(|c| c.as_os_str() == "client") || p.ends_with("protocol.rs");
            let names_below = l.contains("qbo_store") || l.contains("qbo_engine");
            if names_below && ((public && visible) || interface_facing) {
                offenders.push(format!("{}:{}: {l}", p.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the service shows a store or engine type to interfaces:\n{}",
        offenders.join("\n")
    );
}
