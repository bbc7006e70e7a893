//! The command line: parse, load config, call the service, print, choose the exit code.

mod args;
mod client;
mod demo;
pub mod demo_world;
mod render;

pub use args::Cli;
use args::{AuditCommand, Command, DbCommand, KeysCommand};

use crate::audit::{AuditRecord, VerifyReport as AuditVerifyReport};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::identity::{Actor, Interface, Role};
use crate::lifecycle::import::ImportReport;
use crate::service::{
    self, ConnectionDetail, ConnectionView, RefreshReport, Request, Service, ServiceError,
    VerifyReport,
};
use crate::store::Store;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Exit codes, documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
    pub const INTERNAL: u8 = 4;
    pub const UNAVAILABLE: u8 = 5;
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
            ServiceError::Denied { .. } | ServiceError::Refused(_) => exit::DENIED,
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
    let is_client = !cli.embedded && !matches!(cli.command, Command::Serve | Command::Db(_));
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        // An operator without a config file reaches the daemon at its standard socket.
        Err(_) if is_client && cli.config.is_none() && no_config_anywhere() => {
            Config::client_defaults(Config::locate(None))
        }
        Err(e) => return Err(e.into()),
    };
    init_logging(&config);
    let request = match cli.command {
        Command::Db(DbCommand::Migrate) => {
            let store = Store::connect(&config.database()?.url, 1).await?;
            let n = store.migrate().await?;
            println!(
                "database {}: {n} migration(s) applied, schema up to date",
                crate::config::redact_url(&config.database()?.url)
            );
            return Ok(exit::OK);
        }
        Command::Serve => {
            crate::daemon::serve(config).await?;
            return Ok(exit::OK);
        }
        Command::Watch { json } => return watch(&config, json).await,
        Command::Import(a) => {
            let text = std::fs::read_to_string(&a.file).map_err(|e| Failure {
                code: exit::BAD_INPUT,
                message: format!("cannot read {}: {e}", a.file.display()),
            })?;
            (
                Request::Import {
                    file: a.file.display().to_string(),
                    text,
                    update: a.update,
                },
                a.json,
            )
        }
        Command::List(a) => {
            let status = a
                .status
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|m: String| ServiceError::Input(m))?;
            let environment = a
                .environment
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|m: String| ServiceError::Input(m))?;
            (
                Request::List {
                    status,
                    environment,
                },
                a.json,
            )
        }
        Command::Show(a) => (Request::Show { target: a.target }, a.json),
        Command::Refresh(a) => (
            Request::Refresh {
                targets: a.targets,
                due: a.due,
                all: a.all,
            },
            a.json,
        ),
        Command::Verify(a) => (Request::Verify { targets: a.targets }, a.json),
        Command::Audit(AuditCommand::Verify { json }) => (Request::AuditVerify, json),
        Command::Audit(AuditCommand::Tail { n, json }) => (Request::AuditTail { n }, json),
        Command::Keys(_) | Command::Demo { .. } => {
            unreachable!("handled before the configuration was loaded")
        }
    };
    let (request, json) = request;
    let (value, now) = if cli.embedded {
        let svc = Service::open(&config, Clock::System).await?;
        // Embedded mode: the account holding the key and the database is the admin.
        let me = Actor::current_process(Interface::Cli, Role::Admin);
        let v = svc.handle(&me, request.clone()).await?;
        (v, svc.engine().clock.now())
    } else {
        (
            client::call(&config.daemon.socket, &request).await?,
            chrono::Utc::now(),
        )
    };
    show(&request, value, json, now)
}

fn no_config_anywhere() -> bool {
    std::env::var_os(crate::config::ENV_CONFIG_PATH).is_none() && !Config::locate(None).exists()
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("unexpected reply shape: {e}"),
    })
}

/// Prints a reply exactly the same way whichever path it came by, and picks the exit code.
fn show(
    request: &Request,
    value: serde_json::Value,
    json: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u8, Failure> {
    match request {
        Request::Import { .. } => {
            let r: ImportReport = decode(value)?;
            if json {
                print_json(&r)?
            } else {
                println!("{}", render::import_report(&r))
            }
            Ok(exit::OK)
        }
        Request::List { .. } => {
            let rows: Vec<ConnectionView> = decode(value)?;
            if json {
                print_json(&rows)?
            } else {
                println!("{}", render::connections_table(&rows, now))
            }
            Ok(exit::OK)
        }
        Request::Show { .. } => {
            let d: ConnectionDetail = decode(value)?;
            if json {
                print_json(&d)?
            } else {
                println!("{}", render::detail(&d, now))
            }
            Ok(exit::OK)
        }
        Request::Refresh { .. } => {
            let reports: Vec<RefreshReport> = decode(value)?;
            if json {
                print_json(&reports)?
            } else {
                println!("{}", render::refresh_reports(&reports, now))
            }
            Ok(if service::all_refreshed(&reports) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Request::Verify { .. } => {
            let reports: Vec<VerifyReport> = decode(value)?;
            if json {
                print_json(&reports)?
            } else {
                println!("{}", render::verify_reports(&reports))
            }
            Ok(if reports.iter().all(|r| r.outcome.is_success()) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Request::AuditVerify => {
            let r: AuditVerifyReport = decode(value)?;
            if json {
                print_json(&r)?
            } else {
                println!("{}", render::audit_verify(&r))
            }
            Ok(if r.ok { exit::OK } else { exit::FAILED })
        }
        Request::AuditTail { .. } => {
            let rows: Vec<AuditRecord> = decode(value)?;
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
        Request::Watch | Request::WhoAmI => {
            print_json(&value)?;
            Ok(exit::OK)
        }
    }
}

/// `watch`: prints each change the daemon reports, as it commits.
async fn watch(config: &Config, json: bool) -> Result<u8, Failure> {
    client::stream(&config.daemon.socket, &Request::Watch, |v| {
        let mut out = std::io::stdout().lock();
        let _ = if json {
            writeln!(out, "{v}")
        } else {
            match serde_json::from_value::<crate::store::Change>(v.clone()) {
                Ok(c) => match c.connection_id {
                    Some(id) => writeln!(out, "audit #{}: connection {id} changed", c.audit_seq),
                    None => writeln!(out, "audit #{}", c.audit_seq),
                },
                Err(_) => writeln!(out, "{v}"),
            }
        };
        out.flush().is_ok()
    })
    .await?;
    Ok(exit::OK)
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
