//! The command line: parse, load config, call the service, print, choose the exit code.

mod apikey;
mod args;
mod audit_export;
mod db;
mod demo;
mod demo_console;
pub mod demo_world;
mod doctor;
pub mod forecast;
mod import;
mod incidents;
mod links;
mod list_stream;
pub(crate) mod render;
mod reports;
mod revoke;

pub use args::Cli;
use args::{AuditCommand, Command, DbCommand, KeysCommand};

use qbo_core::clock::Clock;
use qbo_core::config::{Config, ConfigError};
use qbo_core::domain::InvalidValue;
use qbo_service::{
    self as service, Actor, Client, ClientError, Interface, ListQuery, LocalClient, RefreshOutcome,
    Request, Role, Selection, Service, SocketClient, Target, VerifyOutcome,
};
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

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Unavailable { .. } | ClientError::ConnectionLost { .. } => {
                exit::UNAVAILABLE
            }
            ClientError::Denied { .. } => exit::DENIED,
            ClientError::NotFound(_) | ClientError::Ambiguous(_) | ClientError::Input(_) => {
                exit::BAD_INPUT
            }
            ClientError::Protocol(_) | ClientError::Internal(_) => exit::INTERNAL,
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
    let mut cli = <Cli as clap::Parser>::parse();
    let command = match cli.command.take() {
        Some(c) => c,
        // Bare `qbo-console`: the console for someone at a terminal, the help for a script.
        None if qbo_tui::is_interactive() => Command::Tui,
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::SUCCESS;
        }
    };
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
    match runtime.block_on(run(cli, command)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Errors quote names and Intuit's details, so they pass the terminal guard too.
            let line = f.message.replace('\n', " ");
            eprintln!("error: {}", qbo_core::text::Safe(&line));
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

/// The crates the product's code lives in since the workspace split: a log target is the
/// module path, so a filter written for the one crate of before (`qbo_console=debug`, as
/// the example configuration once said) would otherwise reach the CLI alone.
const OUR_CRATES: [&str; 7] = [
    "qbo_console",
    "qbo_core",
    "qbo_store",
    "qbo_engine",
    "qbo_service",
    "qbo_daemon",
    "qbo_tui",
];

/// A `[log] level` filter with each directive for the whole product (`qbo_console` or
/// `qbo_console=LEVEL`) given to every crate of it.
pub(crate) fn log_filter(spec: &str) -> String {
    spec.split(',')
        .map(|d| {
            let (target, level) = match d.trim().split_once('=') {
                Some((t, l)) => (t.trim(), Some(l.trim())),
                None => (d.trim(), None),
            };
            if target != "qbo_console" {
                return d.to_string();
            }
            OUR_CRATES
                .iter()
                .map(|c| match level {
                    Some(l) => format!("{c}={l}"),
                    None => c.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Refuses an existing log file that every account can read: it names tenants and realms.
/// While the console has the terminal, nothing is logged to it (a line on stderr would be
/// drawn over the table): the console logs only to `[log] file`, if one is configured.
fn init_logging(cfg: &Config, console: bool) -> Result<(), ConfigError> {
    let mut spec =
        log_filter(&std::env::var("QBO_CONSOLE_LOG").unwrap_or_else(|_| cfg.log.level.clone()));
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
    let new_files = qbo_core::file_modes::NewFiles {
        group: cfg.daemon.file_group.as_deref(),
    };
    let file = match &cfg.log.file {
        Some(p) => new_files.open_log(p)?.map_err(|e| {
            eprintln!(
                "warning: cannot open log file {}: {e}; logging to {}",
                p.display(),
                if console {
                    "nowhere while the console runs"
                } else {
                    "stderr"
                }
            )
        }),
        None => Err(()),
    }
    .ok();
    if console && file.is_none() {
        return Ok(());
    }
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
    Ok(())
}

async fn run(cli: Cli, command: Command) -> Result<u8, Failure> {
    match &command {
        Command::Keys(KeysCommand::Generate {
            out,
            fingerprint_from,
        }) => return keys_generate(out.as_deref(), fingerprint_from.as_deref()),
        // Offline verification needs no configuration, no database and no daemon: whoever
        // received the file runs it with the public key alone.
        Command::Audit(AuditCommand::Verify {
            export: Some(file),
            pubkey,
            json,
        }) => return audit_export::verify_file(file, pubkey.as_deref(), *json),
        // Checks the configuration itself: it must run when the configuration does not.
        Command::Doctor { json } => return doctor::run(cli.config.as_deref(), *json).await,
        Command::Demo(a) => {
            // The console needs a keyboard and a screen; anything else reads the story.
            if qbo_tui::is_interactive() && !a.script {
                demo_console::run(a.keep, a.tenants.into()).await?;
            } else {
                demo::run(a.keep).await?;
            }
            return Ok(exit::OK);
        }
        _ => {}
    }
    let is_client = !cli.embedded
        && !matches!(
            command,
            Command::Serve | Command::Db(_) | Command::Keys(KeysCommand::Rotate { .. })
        );
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        // An operator without a config file reaches the daemon at its standard socket.
        Err(_) if is_client && cli.config.is_none() && no_config_anywhere() => {
            Config::client_defaults(Config::locate(None))
        }
        Err(e) => return Err(e.into()),
    };
    init_logging(&config, matches!(command, Command::Tui))?;
    // `list --jsonl` prints the same objects as `--json`, one per line.
    let lines = matches!(&command, Command::List(a) if a.jsonl);
    let request = match command {
        Command::Tui => return console(&config, cli.embedded).await,
        Command::Db(DbCommand::Migrate { dry_run: true }) => {
            let pending = qbo_service::pending_migrations(&config).await?;
            let shown = qbo_core::text::redact_url(&config.database()?.url);
            if pending.is_empty() {
                println!("database {shown}: schema up to date, nothing to apply");
            } else {
                println!(
                    "database {shown}: {} migration(s) would be applied, in order:",
                    pending.len()
                );
                for (v, d) in pending {
                    println!("  {v:04} {d}");
                }
            }
            return Ok(exit::OK);
        }
        Command::Db(DbCommand::Migrate { dry_run: false }) => {
            let n = qbo_service::migrate_database(&config).await?;
            println!(
                "database {}: {n} migration(s) applied, schema up to date",
                qbo_core::text::redact_url(&config.database()?.url)
            );
            return Ok(exit::OK);
        }
        Command::Db(DbCommand::Backup { file, json }) => {
            let client = make_client(&config, cli.embedded).await?;
            return db::backup(client.as_ref(), file, json).await;
        }
        Command::Db(DbCommand::RestoreCheck { file, json }) => {
            let client = make_client(&config, cli.embedded).await?;
            return db::restore_check(client.as_ref(), file, json).await;
        }
        Command::Doctor { .. } => unreachable!("doctor runs before the configuration is loaded"),
        Command::Db(DbCommand::Restore { file, yes }) => {
            return db::restore(&config, file, yes).await;
        }
        Command::Db(DbCommand::VerifyBackup { file, pubkey, json }) => {
            return db::verify(file, pubkey, json);
        }
        Command::Serve => {
            qbo_daemon::serve(config).await?;
            return Ok(exit::OK);
        }
        Command::Watch { json } => return watch(&config, json).await,
        Command::Keys(KeysCommand::Rotate {
            new_key,
            pace,
            json,
        }) => return keys_rotate(&config, &new_key, pace, json).await,
        Command::Keys(KeysCommand::Status { json }) => (Request::KeysStatus, json),
        Command::Forecast(a) => match (a.json, a.limit) {
            (true, None) => (Request::ForecastStream { days: a.days }, true),
            (json, limit) => (
                Request::Forecast {
                    days: a.days,
                    limit: limit.or((!json).then_some(forecast::SHOWN)),
                },
                json,
            ),
        },
        Command::Import(a) => {
            let size = import::check(&a)?;
            let client = make_client(&config, cli.embedded).await?;
            return import::run(client.as_ref(), a, size).await;
        }
        Command::List(mut a) => {
            // `--status` says what the STATUS column says (`failing` apart from `active`):
            // the lifecycle state narrows the read where it can (an index), and the
            // console's `status:` term says the rest.
            let condition: Option<qbo_service::Condition> = a
                .status
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|m: InvalidValue| ClientError::Input(format!("list --status: {}", m.0)))?;
            let status = condition.and_then(qbo_service::Condition::lifecycle);
            if let Some(c) = condition.filter(|c| {
                matches!(
                    c,
                    qbo_service::Condition::Failing
                        | qbo_service::Condition::Active
                        | qbo_service::Condition::Expiring
                )
            }) {
                let term = format!("status:{c}");
                a.filter = Some(match a.filter.take() {
                    Some(f) => format!("{f} {term}"),
                    None => term,
                });
            }
            let environment = a
                .environment
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|m: InvalidValue| ClientError::Input(m.0))?;
            // JSON is written as it is read, a page at a time, in constant memory; the
            // table needs every row for its column widths and is read whole.
            if a.json || a.jsonl {
                (
                    Request::ListStream {
                        status,
                        environment,
                        filter: a.filter,
                        limit: a.limit,
                    },
                    true,
                )
            } else {
                (
                    Request::List {
                        status,
                        environment,
                        filter: a.filter,
                        limit: a.limit,
                    },
                    false,
                )
            }
        }
        Command::Show(a) => (Request::Show { target: a.target }, a.json),
        Command::Refresh(a) => (
            Request::Refresh {
                targets: a.targets,
                due: a.due,
                all: a.all,
                filter: a.filter,
                expect: a.expect,
            },
            a.json,
        ),
        Command::Verify(a) => (
            Request::Verify {
                targets: a.targets,
                filter: a.filter,
                expect: a.expect,
            },
            a.json,
        ),
        Command::Audit(AuditCommand::Verify { json, .. }) => (Request::AuditVerify, json),
        Command::Audit(AuditCommand::Export(a)) => {
            // Checked before a database is opened: bad input leaves nothing behind.
            let (filter, format) = audit_export::filter_of(&a)?;
            let client = make_client(&config, cli.embedded).await?;
            return audit_export::export(client.as_ref(), filter, format, a.output.as_deref())
                .await;
        }
        Command::Audit(AuditCommand::Pubkey) => {
            let client = make_client(&config, cli.embedded).await?;
            println!("{}", client.audit_pubkey().await?);
            return Ok(exit::OK);
        }
        Command::Audit(AuditCommand::Archive { json }) => {
            let client = make_client(&config, cli.embedded).await?;
            return audit_export::archive(client.as_ref(), json).await;
        }
        Command::Audit(AuditCommand::Quarantine { from, json }) => {
            let client = make_client(&config, cli.embedded).await?;
            return audit_export::quarantine(client.as_ref(), from, json).await;
        }
        Command::Audit(AuditCommand::Tail {
            n,
            json,
            tenant,
            actor,
            action,
            outcome,
        }) => {
            if tenant.is_none() && actor.is_none() && action.is_none() && outcome.is_none() {
                // Written as it is read, a page at a time: any N in constant memory.
                (Request::AuditTailStream { n }, json)
            } else {
                (
                    Request::AuditPage {
                        before_seq: None,
                        limit: n,
                        tenant,
                        actor,
                        action,
                        outcome,
                    },
                    json,
                )
            }
        }
        Command::Revoke(a) => {
            let call = revoke::RevokeCall {
                request: service::RevokeRequest {
                    targets: a.targets,
                    filter: a.filter,
                    local_only_reason: a.local_only.then(|| a.reason.unwrap_or_default()),
                    dry_run: false,
                    expect: a.expect,
                },
                yes: a.yes,
                json: a.json,
            };
            // Checked before a database is opened: a refusal leaves nothing behind.
            revoke::check_can_confirm(&call)?;
            let client = make_client(&config, cli.embedded).await?;
            return revoke::revoke(client.as_ref(), call).await;
        }
        Command::Incidents(a) => {
            let client = make_client(&config, cli.embedded).await?;
            return incidents::run(client.as_ref(), a).await;
        }
        Command::Link(a) if a.filter.is_some() => {
            // The file is made (new, 0600) before anything is asked: a name already
            // taken refuses the campaign before a single link exists.
            let call = links::CampaignCall::parse(a)?;
            let client = make_client(&config, cli.embedded).await?;
            return links::campaign(client.as_ref(), call).await;
        }
        Command::Link(a) => links::request(a)?,
        Command::Links {
            json,
            campaign,
            campaigns,
        } if campaign.is_some() || campaigns => {
            let id = campaign
                .as_deref()
                .map(service::campaigns::campaign_number)
                .transpose()
                .map_err(ClientError::from)?;
            let client = make_client(&config, cli.embedded).await?;
            return links::campaigns(client.as_ref(), id, json).await;
        }
        Command::Links { json, .. } => (Request::Links, json),
        Command::Apikey(a) => {
            // Checked before a database is opened: bad input leaves nothing behind.
            let call = apikey::ApikeyCall::parse(a)?;
            let client = make_client(&config, cli.embedded).await?;
            return apikey::run(client.as_ref(), call).await;
        }
        Command::Purge(a) => {
            let client = make_client(&config, cli.embedded).await?;
            return revoke::purge(client.as_ref(), a.yes, a.json).await;
        }
        Command::SupportBundle(a) => {
            // Checked before a database is opened: bad input leaves nothing behind.
            if let Some(since) = &a.since {
                qbo_service::support_since(since).map_err(ClientError::from)?;
            }
            let client = make_client(&config, cli.embedded).await?;
            return reports::support_bundle(client.as_ref(), a).await;
        }
        Command::Report(args::ReportCommand::Posture { format }) => {
            let client = make_client(&config, cli.embedded).await?;
            return reports::posture(client.as_ref(), &format).await;
        }
        Command::Keys(KeysCommand::Generate { .. }) | Command::Demo(_) => {
            unreachable!("handled before the configuration was loaded")
        }
    };
    let (request, json) = request;
    // Checked before a database is opened: bad input leaves nothing behind.
    let selection = match &request {
        Request::Refresh {
            targets,
            due,
            all,
            filter,
            expect,
        } => Some(
            Selection::from_flags(targets.clone(), *due, *all, filter.clone(), *expect)
                .map_err(ClientError::from)?,
        ),
        Request::Verify {
            targets,
            filter: Some(filter),
            expect,
        } if targets.is_empty() => Some(Selection::Matching {
            filter: filter.clone(),
            expect: *expect,
        }),
        _ => None,
    };
    let client = make_client(&config, cli.embedded).await?;
    if let Request::ListStream {
        status,
        environment,
        filter,
        limit,
    } = request
    {
        let query = ListQuery {
            status,
            environment,
            filter,
            limit,
        };
        return list_stream::print(client.as_ref(), query, lines).await;
    }
    if let Request::AuditTailStream { n } = request {
        return print_audit_stream(client.as_ref(), n, json).await;
    }
    if let Request::ForecastStream { days } = request {
        return forecast::print_stream(client.as_ref(), days).await;
    }
    perform(client.as_ref(), request, selection, json).await
}

/// The daemon's socket, or (`--embedded`) the service in this process.
async fn make_client(config: &Config, embedded: bool) -> Result<Box<dyn Client>, Failure> {
    Ok(if embedded {
        let svc = Service::open(config, Clock::System).await?;
        // Embedded mode: the account holding the key and the database is the admin.
        let me = Actor::current_process(Interface::Cli, Role::Admin);
        Box::new(LocalClient::new(svc, me))
    } else {
        Box::new(SocketClient::new(config.daemon.socket.clone()).declaring(Interface::Cli))
    })
}

/// The console, on the daemon's socket or (`--embedded`) in this process as admin.
async fn console(config: &Config, embedded: bool) -> Result<u8, Failure> {
    // A mistake in [tui.keys] is a configuration error, named before the screen changes.
    qbo_tui::keymap::Keymap::with_overrides(&config.tui.keys).map_err(|m| Failure {
        code: exit::BAD_INPUT,
        message: m.0,
    })?;
    qbo_tui::theme::Theme::dark()
        .with_colors(&config.tui.colors)
        .map_err(|m| Failure {
            code: exit::BAD_INPUT,
            message: m.0,
        })?;
    if !qbo_tui::is_interactive() {
        return Err(Failure {
            code: exit::BAD_INPUT,
            message: "the console needs a terminal on standard input and output; from a script, use `list --json` or `watch --json`".into(),
        });
    }
    let client: std::sync::Arc<dyn Client> = if embedded {
        let svc = Service::open(config, Clock::System).await?;
        let me = Actor::current_process(Interface::Tui, Role::Admin);
        std::sync::Arc::new(LocalClient::new(svc, me))
    } else {
        std::sync::Arc::new(
            SocketClient::new(config.daemon.socket.clone()).declaring(Interface::Tui),
        )
    };
    let opts = qbo_tui::ConsoleOptions {
        embedded,
        ..qbo_tui::ConsoleOptions::from_config(config)
    };
    qbo_tui::run(client, opts).await?;
    Ok(exit::OK)
}

fn no_config_anywhere() -> bool {
    std::env::var_os(qbo_core::config::ENV_CONFIG_PATH).is_none() && !Config::locate(None).exists()
}

/// Asks the client and prints the answer, the same way whichever client it is, and picks
/// the exit code.
async fn perform(
    client: &dyn Client,
    request: Request,
    selection: Option<Selection>,
    json: bool,
) -> Result<u8, Failure> {
    let now = chrono::Utc::now();
    match request {
        Request::List {
            status,
            environment,
            filter,
            limit,
        } => {
            let rows = client
                .list(ListQuery {
                    status,
                    environment,
                    filter,
                    limit,
                })
                .await?;
            if json {
                print_json(&rows)?
            } else {
                println!("{}", render::connections_table(&rows, now))
            }
            Ok(exit::OK)
        }
        Request::Show { target } => {
            let d = client.show(target).await?;
            if json {
                print_json(&d)?
            } else {
                println!("{}", render::detail(&d, now))
            }
            Ok(exit::OK)
        }
        Request::Refresh { targets, .. } => {
            let selection = selection.unwrap_or(Selection::Named(targets));
            let reports = client.refresh(selection).await?;
            if json {
                print_json(&reports)?
            } else {
                println!("{}", render::refresh_reports(&reports, now))
            }
            for r in &reports {
                if let RefreshOutcome::Error { detail } = &r.outcome {
                    report_error(&r.target, detail);
                }
            }
            Ok(if service::all_refreshed(&reports) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Request::Verify { targets, .. } => {
            let selection = selection.unwrap_or(Selection::Named(targets));
            let reports = client.verify(selection).await?;
            if json {
                print_json(&reports)?
            } else {
                println!("{}", render::verify_reports(&reports))
            }
            for r in &reports {
                if let VerifyOutcome::Error { detail } = &r.outcome {
                    report_error(&r.target, detail);
                }
            }
            Ok(if reports.iter().all(|r| r.outcome.is_success()) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Request::AuditVerify => {
            let r = client.audit_verify().await?;
            if json {
                print_json(&r)?
            } else {
                println!("{}", render::audit_verify(&r))
            }
            Ok(if r.ok { exit::OK } else { exit::FAILED })
        }
        Request::WhoAmI => {
            print_json(&client.whoami().await?)?;
            Ok(exit::OK)
        }
        Request::KeysStatus => {
            let s = client.keys_status().await?;
            if json {
                print_json(&s)?
            } else {
                println!("{}", render::key_status(&s))
            }
            Ok(exit::OK)
        }
        Request::Forecast { days, limit } => {
            let f = client.forecast(days, limit).await?;
            if json {
                print_json(&f)?
            } else {
                println!("{}", forecast::render(&f))
            }
            Ok(exit::OK)
        }
        Request::Session { event } => {
            client.session(event).await?;
            Ok(exit::OK)
        }
        Request::AuditPage {
            before_seq,
            limit,
            tenant,
            actor,
            action,
            outcome,
        } => {
            // `audit tail` with a filter: the latest `limit` matching events, read a page at a
            // time (a page holds at most `MAX_PAGE`), printed oldest first like the tail.
            let mut query = service::AuditQuery {
                before_seq,
                limit: 0,
                tenant,
                actor,
                action,
                outcome,
            };
            let mut rows = Vec::new();
            let wanted = limit.clamp(1, 100_000);
            loop {
                query.limit = (wanted - rows.len() as i64).min(service::MAX_AUDIT_PAGE);
                let page = client.audit_page(query.clone()).await?;
                rows.extend(page.events);
                match page.next_before_seq {
                    Some(before) if (rows.len() as i64) < wanted => query.before_seq = Some(before),
                    _ => break,
                }
            }
            rows.reverse();
            print_audit(&rows, json)?;
            Ok(exit::OK)
        }
        r @ (Request::Link { .. } | Request::Links | Request::LinkCancel { .. }) => {
            links::perform(client, r, json, now).await
        }
        Request::Watch => unreachable!("watch is handled before a request is built"),
        Request::Window(_) => unreachable!("no verb asks for a window: the console does"),
        Request::ListStream { .. } => unreachable!("list --json is streamed before perform"),
        Request::ForecastStream { .. } => {
            unreachable!("forecast --json is streamed before perform")
        }
        Request::AuditTail { .. } | Request::AuditTailStream { .. } => {
            unreachable!("audit tail is streamed before perform")
        }
        Request::LinksStream => unreachable!("links asks for Links and streams it itself"),
        Request::LinkCampaign { .. } | Request::Campaigns | Request::Campaign { .. } => {
            unreachable!("campaigns are made and shown before perform")
        }
        Request::Incidents | Request::Incident { .. } => {
            unreachable!("incidents are shown before perform")
        }
        Request::DbBackup { .. } | Request::DbRestoreCheck { .. } => {
            unreachable!("db verbs run before perform")
        }
        Request::Import { .. } | Request::ImportStream { .. } => {
            unreachable!("import streams its file before perform")
        }
        Request::AuditExport { .. }
        | Request::AuditPubkey
        | Request::AuditArchive
        | Request::AuditQuarantine { .. } => {
            unreachable!(
                "audit export, pubkey, archive and quarantine are handled before a request is built"
            )
        }
        Request::ApikeyCreate { .. } | Request::ApikeyList | Request::ApikeyRevoke { .. } => {
            unreachable!("apikey is handled before a request is built")
        }
        Request::Revoke { .. }
        | Request::Purge { .. }
        | Request::SupportBundle { .. }
        | Request::Posture => {
            unreachable!("revoke, purge and the reports are handled before a request is built")
        }
    }
}

/// Audit events, oldest first: one JSON object a line, or the tail's text.
/// `audit tail -n N`: each event written as it arrives, a JSON line or a text line.
async fn print_audit_stream(client: &dyn Client, n: i64, json: bool) -> Result<u8, Failure> {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut sink = |r: &service::AuditRecord| -> std::io::Result<()> {
        if json {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")
        } else {
            out.write_all(render::audit_lines(std::slice::from_ref(r)).as_bytes())
        }
    };
    client.audit_tail_each(n, &mut sink).await?;
    out.flush().map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("cannot write the audit log: {e}"),
    })?;
    Ok(exit::OK)
}

fn print_audit(rows: &[service::AuditRecord], json: bool) -> Result<(), Failure> {
    if json {
        let mut out = std::io::stdout().lock();
        for r in rows {
            let line = serde_json::to_string(r).map_err(|e| Failure {
                code: exit::INTERNAL,
                message: e.to_string(),
            })?;
            let _ = writeln!(out, "{line}");
        }
    } else {
        print!("{}", render::audit_lines(rows));
    }
    Ok(())
}

/// An error on one connection of a bulk operation is ours, not Intuit's verdict: besides
/// its place in the report, it goes to stderr like any other error.
fn report_error(t: &Target, detail: &str) {
    eprintln!(
        "error: {} ({}:{}): {}",
        qbo_core::text::Safe(&t.tenant),
        t.environment,
        t.realm_id,
        qbo_core::text::Safe(&detail.replace('\n', " "))
    );
}

/// `watch`: prints each change the daemon reports, as it commits. Always the daemon's: an
/// in-process service would hear only its own commits.
async fn watch(config: &Config, json: bool) -> Result<u8, Failure> {
    use futures_util::StreamExt;
    let client = SocketClient::new(config.daemon.socket.clone()).declaring(Interface::Cli);
    let mut events = client.watch().await?;
    while let Some(ev) = events.next().await {
        let ev = ev?;
        let mut out = std::io::stdout().lock();
        let _ = if json {
            match serde_json::to_string(&ev) {
                Ok(line) => writeln!(out, "{line}"),
                Err(e) => {
                    return Err(Failure {
                        code: exit::INTERNAL,
                        message: e.to_string(),
                    })
                }
            }
        } else {
            match render::watch_event(&ev) {
                Some(line) => writeln!(out, "{line}"),
                None => Ok(()),
            }
        };
        if out.flush().is_err() {
            break;
        }
    }
    Ok(exit::OK)
}

/// `keys rotate`: in this process, beside the daemon, on the same database. Each
/// connection is re-sealed under the lease a refresh takes, so the two never race.
async fn keys_rotate(
    config: &Config,
    new_key: &std::path::Path,
    pace: std::time::Duration,
    json: bool,
) -> Result<u8, Failure> {
    let key = qbo_core::vault::read_key_file(new_key, "keys rotate --new-key")?;
    let new_id = qbo_core::vault::token_key_id(&key);
    drop(key);
    let svc = Service::open(config, Clock::System).await?;
    let me = Actor::current_process(Interface::Cli, Role::Admin);
    let report = svc.rotate_keys(&me, &new_id, pace).await?;
    if json {
        print_json(&report)?
    } else {
        println!("{}", render::rotation_report(&report))
    }
    for f in &report.failed {
        eprintln!(
            "error: connection {}: {}",
            f.connection_id,
            qbo_core::text::Safe(&f.detail.replace('\n', " "))
        );
    }
    Ok(if report.complete {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn keys_generate(
    out: Option<&std::path::Path>,
    fingerprint_from: Option<&std::path::Path>,
) -> Result<u8, Failure> {
    let key = match fingerprint_from {
        None => qbo_core::vault::generate_key(),
        Some(token_key) => {
            let token_key =
                qbo_core::vault::read_key_file(token_key, "keys generate --fingerprint-from")?;
            qbo_core::vault::encode_key(&qbo_core::vault::legacy_fingerprint_key(&token_key))
        }
    };
    match out {
        None => println!("{}", key.as_str()),
        Some(path) => {
            let mut f = qbo_core::file_modes::create_secret_file(path).map_err(|e| Failure {
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_filter_for_the_whole_product_reaches_every_crate() {
        let f = super::log_filter("warn,qbo_console=debug,sqlx=warn");
        for c in super::OUR_CRATES {
            assert!(f.contains(&format!("{c}=debug")), "{f}");
        }
        assert!(f.starts_with("warn,") && f.ends_with(",sqlx=warn"), "{f}");
        assert_eq!(super::log_filter("qbo_engine=debug"), "qbo_engine=debug");
    }
}
