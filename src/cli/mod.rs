//! The command line: parse, load config, call the service, print, choose the exit code.

mod args;
mod demo;
mod render;

pub use args::Cli;
use args::{AuditCommand, Command, DbCommand, KeysCommand};

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::identity::{Actor, Interface, Role};
use crate::service::{self, Selection, Service, ServiceError};
use crate::store::{ConnectionFilter, Store};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Exit codes, documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
    pub const INTERNAL: u8 = 4;
}

/// A failure on its way to the terminal: one line, and the exit code it deserves.
struct Failure {
    code: u8,
    message: String,
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure {
            code: exit::BAD_INPUT,
            message: e.0,
        }
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::Denied { .. } => exit::DENIED,
            ServiceError::NotFound(_) | ServiceError::Ambiguous(_) | ServiceError::Input(_) => {
                exit::BAD_INPUT
            }
            ServiceError::Internal(_) => exit::INTERNAL,
        };
        Failure {
            code,
            message: one_line(&e),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if let Some(c) = e.downcast_ref::<ConfigError>() {
            return Failure {
                code: exit::BAD_INPUT,
                message: c.0.clone(),
            };
        }
        Failure {
            code: exit::INTERNAL,
            message: format!("{e:#}"),
        }
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', " ")
}

pub fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message.replace('\n', " "));
            ExitCode::from(f.code)
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

fn init_logging(cfg: &Config) {
    let mut spec = std::env::var("QBO_CONSOLE_LOG").unwrap_or_else(|_| cfg.log.level.clone());
    // PostgreSQL notices ("relation already exists, skipping") are not the operator's concern.
    if !spec.contains("sqlx") {
        spec.push_str(",sqlx=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: log filter {spec:?} is invalid ({e}); using \"warn\"");
        tracing_subscriber::EnvFilter::new("warn")
    });
    let json = cfg.log.format == "json";
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let file = cfg.log.file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| {
                eprintln!(
                    "warning: cannot open log file {}: {e}; logging to stderr",
                    p.display()
                )
            })
            .ok()
    });
    let _ = match (file, json) {
        (Some(f), true) => builder
            .json()
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (Some(f), false) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (None, true) => builder.json().with_writer(std::io::stderr).try_init(),
        (None, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Keys(KeysCommand::Generate { out }) => return keys_generate(out.as_deref()),
        Command::Demo { keep } => {
            demo::run(*keep).await?;
            return Ok(exit::OK);
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    if let Command::Db(DbCommand::Migrate) = &cli.command {
        let store = Store::connect(&config.database.url, 1).await?;
        let n = store.migrate().await?;
        println!(
            "database {}: {n} migration(s) applied, schema up to date",
            crate::config::redact_url(&config.database.url)
        );
        return Ok(exit::OK);
    }
    let svc = Service::open(&config, Clock::System).await?;
    // Embedded mode: the account holding the key and the database is the admin.
    let me = Actor::current_process(Interface::Cli, Role::Admin);
    let now = || svc.engine().clock.now();
    match cli.command {
        Command::Import(a) => {
            let text = std::fs::read_to_string(&a.file).map_err(|e| Failure {
                code: exit::BAD_INPUT,
                message: format!("cannot read {}: {e}", a.file.display()),
            })?;
            let report = svc
                .import(&me, &text, &a.file.display().to_string(), a.update)
                .await?;
            if a.json {
                print_json(&report)?;
            } else {
                println!("{}", render::import_report(&report));
            }
            Ok(exit::OK)
        }
        Command::List(a) => {
            let filter = ConnectionFilter {
                status: a
                    .status
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|m: String| ServiceError::Input(m))?,
                environment: a
                    .environment
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|m: String| ServiceError::Input(m))?,
            };
            let rows = svc.list(&me, &filter).await?;
            if a.json {
                print_json(&rows)?;
            } else {
                println!("{}", render::connections_table(&rows, now()));
            }
            Ok(exit::OK)
        }
        Command::Show(a) => {
            let d = svc.show(&me, &a.target).await?;
            if a.json {
                print_json(&d)?;
            } else {
                println!("{}", render::detail(&d, now()));
            }
            Ok(exit::OK)
        }
        Command::Refresh(a) => {
            let sel = if a.all {
                Selection::All
            } else if a.due {
                Selection::Due
            } else {
                Selection::Named(a.targets)
            };
            let reports = svc.refresh(&me, &sel).await?;
            if a.json {
                print_json(&reports)?;
            } else {
                println!("{}", render::refresh_reports(&reports, now()));
            }
            Ok(if service::all_refreshed(&reports) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Verify(a) => {
            let reports = svc.verify(&me, &a.targets).await?;
            if a.json {
                print_json(&reports)?;
            } else {
                println!("{}", render::verify_reports(&reports));
            }
            Ok(if reports.iter().all(|r| r.outcome.is_success()) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Audit(AuditCommand::Verify { json }) => {
            let r = svc.audit_verify(&me).await?;
            if json {
                print_json(&r)?;
            } else {
                println!("{}", render::audit_verify(&r));
            }
            Ok(if r.ok { exit::OK } else { exit::FAILED })
        }
        Command::Audit(AuditCommand::Tail { n, json }) => {
            let rows = svc.audit_tail(&me, n).await?;
            if json {
                let mut out = std::io::stdout().lock();
                for r in &rows {
                    let line = serde_json::to_string(r).map_err(|e| Failure {
                        code: exit::INTERNAL,
                        message: e.to_string(),
                    })?;
                    let _ = writeln!(out, "{line}");
                }
            } else {
                print!("{}", render::audit_lines(&rows));
            }
            Ok(exit::OK)
        }
        Command::Db(_) | Command::Keys(_) | Command::Demo { .. } => {
            unreachable!("handled before the service was opened")
        }
    }
}

fn keys_generate(out: Option<&std::path::Path>) -> Result<u8, Failure> {
    let key = crate::vault::generate_key();
    match out {
        None => println!("{}", key.as_str()),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Failure {
                    code: exit::BAD_INPUT,
                    message: if e.kind() == std::io::ErrorKind::AlreadyExists {
                        format!(
                            "{} already exists; refusing to overwrite a key (move it away first)",
                            path.display()
                        )
                    } else {
                        format!("cannot create {}: {e}", path.display())
                    },
                })?;
            writeln!(f, "{}", key.as_str())
                .and_then(|_| f.sync_all())
                .map_err(|e| Failure {
                    code: exit::INTERNAL,
                    message: format!("cannot write {}: {e}", path.display()),
                })?;
            eprintln!("wrote a new 256-bit key to {} (mode 0600)", path.display());
        }
    }
    Ok(exit::OK)
}
