//! The `qbo-sim` command: runs the Intuit OAuth + QBO emulator as a process, for demos
//! and out-of-process tests. Controlled at run time through `/_sim/`.

use crate::SimError;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::{
    self as sim, FaultConfig, FaultKind, PreviousToken, Rotation, SimClient, SimEnvironment,
    SimOptions, Surface, DEFAULT_ACCESS_TOKEN_TTL_SECS, DEFAULT_HARD_LIMIT_SECS,
    DEFAULT_REFRESH_IDLE_SECS,
};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Emulates Intuit's OAuth 2.0 service (discovery, authorize, token, revoke)
/// and the QuickBooks Online companyinfo call, with a /_sim/ control API.
#[derive(Debug, Parser)]
#[command(name = "qbo-sim", bin_name = "qbo-sim", version)]
struct Cli {
    /// TCP port to listen on (0 picks a free port).
    #[arg(long, value_name = "N")]
    port: u16,

    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: IpAddr,

    /// When a refresh returns a new refresh token: daily (same token for 24 h
    /// after issue) or every-refresh.
    #[arg(long, value_name = "MODE", default_value = "daily", value_parser = parse_rotation)]
    rotation: Rotation,

    /// What a replaced refresh token does: grace-24h (still usable for 24 h)
    /// or invalid-at-once.
    #[arg(long, value_name = "POLICY", default_value = "grace-24h", value_parser = parse_previous)]
    previous_token: PreviousToken,

    /// Fraction (0.0 to 1.0) of token, revoke and companyinfo answers replaced
    /// by a fault.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    fault_rate: f64,

    /// Comma-separated fault kinds to draw from: 503, timeout, 429, garbage,
    /// lost (default: all of them when --fault-rate is above 0).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_fault)]
    faults: Vec<FaultKind>,

    /// Comma-separated endpoints the faults replace answers of: token, revoke,
    /// company_info (default: all three).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_surface)]
    fault_endpoints: Vec<Surface>,

    /// How long a timeout fault holds the connection before closing it.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    fault_timeout_hold_ms: u64,

    /// Artificial delay inside the token endpoint while a refresh token is in
    /// flight (makes overlapping refreshes of one token observable).
    #[arg(long, value_name = "N", default_value_t = 0)]
    token_latency_ms: u64,

    /// Access token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_ACCESS_TOKEN_TTL_SECS,
          value_parser = parse_positive)]
    access_token_ttl_secs: i64,

    /// Rolling refresh token idle window in seconds (restarts on each use).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REFRESH_IDLE_SECS,
          value_parser = parse_positive)]
    refresh_idle_secs: i64,

    /// Hard limit of a grant in seconds from the original consent.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HARD_LIMIT_SECS,
          value_parser = parse_positive)]
    hard_limit_secs: i64,

    /// Register an app key set as ENV:ID:SECRET:REDIRECT (ENV is sandbox or
    /// production; REDIRECT may be a comma-separated list). Repeatable; when
    /// given, replaces the two default clients.
    #[arg(long = "client", value_name = "ENV:ID:SECRET:REDIRECT", value_parser = parse_client)]
    clients: Vec<SimClient>,
}

fn parse_rotation(s: &str) -> Result<Rotation, SimError> {
    s.parse()
}

fn parse_previous(s: &str) -> Result<PreviousToken, SimError> {
    s.parse()
}

fn parse_fault(s: &str) -> Result<FaultKind, SimError> {
    s.parse()
}

fn parse_surface(s: &str) -> Result<Surface, SimError> {
    s.parse()
}

fn parse_rate(s: &str) -> Result<f64, SimError> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(SimError::from(format!("{v} is outside 0.0..=1.0")))
    }
}

fn parse_positive(s: &str) -> Result<i64, SimError> {
    match s.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(SimError::from(format!(
            "{s:?} is not a positive number of seconds"
        ))),
    }
}

fn parse_client(s: &str) -> Result<SimClient, SimError> {
    let mut parts = s.splitn(4, ':');
    let (Some(env), Some(id), Some(secret), Some(redirects)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SimError::from("expected ENV:ID:SECRET:REDIRECT"));
    };
    let environment: SimEnvironment = env.parse()?;
    if id.is_empty() || secret.is_empty() {
        return Err(SimError::from("client id and secret must not be empty"));
    }
    let redirect_uris: Vec<String> = redirects
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if redirect_uris.is_empty() {
        return Err(SimError::from("at least one redirect URI is needed"));
    }
    for uri in &redirect_uris {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err(SimError::from(format!(
                "redirect URI {uri:?} is not http(s)"
            )));
        }
        if uri.contains('?') || uri.contains('#') {
            return Err(SimError::from(format!(
                "redirect URI {uri:?} has a query or fragment (Intuit matches it exactly; pass context in state)"
            )));
        }
    }
    Ok(SimClient {
        client_id: id.to_string(),
        client_secret: secret.to_string(),
        environment,
        redirect_uris,
    })
}

impl Cli {
    fn into_options(self) -> Result<SimOptions, SimError> {
        if !self.faults.is_empty() && self.fault_rate == 0.0 {
            return Err(SimError::from(
                "--faults has no effect without a --fault-rate above 0",
            ));
        }
        if !self.fault_endpoints.is_empty() && self.fault_rate == 0.0 {
            return Err(SimError::from(
                "--fault-endpoints has no effect without a --fault-rate above 0",
            ));
        }
        let mut opts = SimOptions {
            bind: SocketAddr::new(self.host, self.port),
            rotation: self.rotation,
            previous_token: self.previous_token,
            access_token_ttl_secs: self.access_token_ttl_secs,
            refresh_idle_secs: self.refresh_idle_secs,
            hard_limit_secs: self.hard_limit_secs,
            token_latency: Duration::from_millis(self.token_latency_ms),
            faults: FaultConfig {
                rate: self.fault_rate,
                kinds: if self.faults.is_empty() && self.fault_rate > 0.0 {
                    FaultKind::ALL.to_vec()
                } else {
                    self.faults
                },
                timeout_hold: Duration::from_millis(self.fault_timeout_hold_ms),
                surfaces: self.fault_endpoints,
            },
            ..SimOptions::default()
        };
        if !self.clients.is_empty() {
            let mut ids: Vec<&str> = self.clients.iter().map(|c| c.client_id.as_str()).collect();
            ids.sort_unstable();
            if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
                return Err(SimError::from(format!(
                    "--client: client id {:?} is given twice",
                    w[0]
                )));
            }
            opts.clients = self.clients;
        }
        Ok(opts)
    }
}

/// Clap's message reduced to one line that names the flag.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("error").trim_end();
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::Strings(args)) if first.ends_with(':') => {
            format!("{first} {}", args.join(", "))
        }
        _ => first.to_string(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The whole `qbo-sim` process: parses its arguments, runs the emulator until a signal.
#[tokio::main]
pub async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("{}", one_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    let opts = match cli.into_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Per-request lines are debug events of the emulator; RUST_LOG overrides.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,qbo_sim=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let handle = match sim::start(opts).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "qbo-sim listening on {} discovery sandbox={} production={}",
        handle.base_url(),
        handle.discovery_url(SimEnvironment::Sandbox),
        handle.discovery_url(SimEnvironment::Production)
    );
    // Scripts wait for this line; make sure it leaves the pipe buffer.
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    tracing::info!("signal received, shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}
