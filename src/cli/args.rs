//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "qbo-console",
    version,
    about = "Keeps QuickBooks Online OAuth connections alive and records who touched them",
    after_help = "Exit codes: 0 everything asked succeeded; 1 an operation failed (a refresh, a verify, a damaged audit chain); \
                  2 bad input (usage, configuration, unknown tenant, bad import file); 3 permission denied; 4 internal or database error; \
                  5 no daemon answers (start `qbo-console serve`, or use --embedded)."
)]
pub struct Cli {
    /// Configuration file (else $QBO_CONSOLE_CONFIG, else ./qbo-console.toml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Run the operation in this process instead of asking the daemon (needs the key, the
    /// client secrets and the database; recorded in the audit log all the same)
    #[arg(long, global = true)]
    pub embedded: bool,

    /// Without one, the console opens on a terminal; elsewhere this help is printed
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the console: every connection live, with its token clocks (`?` lists the keys)
    Tui,
    /// Import existing connections from a JSON array or a CSV file of any size (every row is
    /// checked before any is written)
    Import(ImportArgs),
    /// List connections with their token clocks (never token values)
    List(ListArgs),
    /// Show one connection and its recent audit events
    Show(ShowArgs),
    /// Refresh access tokens now
    Refresh(RefreshArgs),
    /// Call CompanyInfo to prove connections work; records last sync status
    Verify(VerifyArgs),
    /// Revoke tenants' grants at Intuit, then destroy their local tokens (admin)
    Revoke(RevokeArgs),
    /// Delete tenants revoked longer ago than [retention] revoked_days; their audit history stays (admin)
    Purge(PurgeArgs),
    /// Make a reconnect link for a tenant, or with --new for a company not connected yet (support, admin)
    ///
    /// Prints {base_url}/connect/{id} ([public] base_url). The link is single use and expires
    /// ([public] link_expires, 7 days by default); `link cancel N` withdraws it.
    Link(LinkArgs),
    /// List the open reconnect links, or follow campaigns (support, admin)
    Links {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        /// One campaign (`link --where`): how many of its links were opened, completed, expired
        #[arg(long, value_name = "ID", conflicts_with = "campaigns")]
        campaign: Option<String>,
        /// The newest campaigns, with their counts
        #[arg(long)]
        campaigns: bool,
    },
    /// Run the daemon: scheduled refreshes, the operators' socket, health and metrics
    Serve,
    /// Print changes (refreshes, verifies, imports, refusals) as the daemon commits them
    Watch {
        /// One JSON object per change
        #[arg(long)]
        json: bool,
    },
    /// Read and check the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Database maintenance
    #[command(subcommand)]
    Db(DbCommand),
    /// Encryption keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The console over a world of its own, with nothing to set up (a walk-through without a terminal)
    ///
    /// The built-in Intuit emulator, the daemon and about 200 tenants in every state on a
    /// temporary SQLite database, all in this process, removed on exit. `+` in the console
    /// moves the emulator's and the daemon's clocks an hour. Without a terminal, or with
    /// --script, a narrated walk-through of the credential core instead.
    Demo(DemoArgs),
    /// Connections that will die within N days if nothing changes: when, why, and the
    /// action that would save each (sorted by date)
    Forecast(ForecastArgs),
    /// Intuit-wide failures the daemon recognised as one incident: scope, class, connections, sample intuit_tids
    ///
    /// While an incident lasts, its environment's refreshes stop but for probes; when it
    /// ends they catch up, most urgent first. `incidents show ID` lists its connections.
    Incidents(IncidentsArgs),
    /// Check this installation and name the fix for each problem (run it as the daemon's account)
    ///
    /// Config and referenced files with their modes, keys, the database (reachable,
    /// migrated, writable, free space), the audit chain's head, the socket's directory and
    /// group, listeners, TLS certificates, each environment's token endpoint and clock skew,
    /// redirect URIs. Exit 0: nothing failed (warnings may be shown); 1: a check failed;
    /// 2: the configuration cannot be read.
    Doctor {
        /// Print {ok, checks: [{check, status, detail, fix}]} as JSON
        #[arg(long)]
        json: bool,
    },
    /// One Markdown file (or --json) for an Intuit support ticket about one connection: its
    /// Intuit calls with intuit_tid, fingerprints, backoff and configuration facts, never a
    /// secret (support, admin)
    SupportBundle(SupportBundleArgs),
    /// Reports for reviewers
    #[command(subcommand)]
    Report(ReportCommand),
    /// Service API keys for the token API (admin)
    #[command(subcommand)]
    Apikey(ApikeyCommand),
}

#[derive(Debug, Args)]
pub struct SupportBundleArgs {
    /// Tenant name, realm id, or environment:realm_id
    pub target: String,
    /// How far back: a duration such as 30d, 12h or 90m (default 30d)
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Write to this file (mode 0600) instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// JSON instead of Markdown
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The answers Intuit's app assessment asks for, from the live configuration and
    /// database: scopes, redirect URIs, encryption and keys, roles, the audit chain,
    /// retention, outbound endpoints (auditor, admin)
    Posture {
        /// md (Markdown) or json
        #[arg(long, value_name = "FORMAT", default_value = "md", value_parser = ["md", "json"])]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key for a service; the key is printed once and stored only as a hash
    Create {
        /// The service that will use the key (named in the audit log as service:NAME)
        name: String,
        /// A realm id the key may read (repeat for several; none: every realm)
        #[arg(long = "realm", value_name = "R")]
        realms: Vec<String>,
        /// The one environment the key may read: sandbox or production (default both)
        #[arg(long = "env", value_name = "E")]
        environment: Option<String>,
        /// Print as JSON: key, id, name, realms, environment
        #[arg(long)]
        json: bool,
    },
    /// List the keys: id, service, scope, created, revoked (never the keys)
    List {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; the token API refuses it at once
    Revoke {
        /// The key's id, as `apikey list` shows it
        id: i64,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the temporary directory (database, key, config, log) after the console closes;
    /// with the walk-through, keep the emulator and the daemon running until Ctrl-C
    #[arg(long)]
    pub keep: bool,
    /// Print the narrated walk-through even on a terminal
    #[arg(long)]
    pub script: bool,
    /// How many tenants the console's world holds (the walk-through always has six)
    #[arg(long, value_name = "N", default_value_t = 200, conflicts_with = "script",
          value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub tenants: u16,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON array or CSV with header: tenant, realm_id, environment, refresh_token
    /// [, access_token, access_expires_at, refresh_expires_at, company_name]
    pub file: PathBuf,
    /// Replace the tokens of (environment, realm_id) pairs that already exist
    #[arg(long)]
    pub update: bool,
    /// Leave alone the rows that start before line N (an import that stopped while writing
    /// names the line to go on from)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub from_line: usize,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status, as the STATUS column says it: pending, active, failing, expiring,
    /// needs_reconnect, revoking, revoked (`active` leaves out the failing ones)
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only this environment: sandbox or production
    #[arg(long = "env", value_name = "E")]
    pub environment: Option<String>,
    /// Only the connections this filter matches, in the console's filter language
    /// (`status:needs_reconnect idle>90d`), judged by the daemon's clock
    #[arg(long = "where", value_name = "FILTER")]
    pub filter: Option<String>,
    /// At most N rows (the first that match, in the listing's order)
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print as a JSON array of connection objects, written as they are read (constant
    /// memory whatever the number of connections)
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print one JSON connection object per line (JSON Lines), written as they are read
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Tenant name, realm id, or environment:realm_id
    pub target: String,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["targets", "due", "all"])))]
pub struct RefreshArgs {
    /// Tenant names, realm ids, or environment:realm_id
    pub targets: Vec<String>,
    /// Every live connection whose access token expires within [scheduler] refresh_before_expiry
    #[arg(long, conflicts_with_all = ["targets", "all"])]
    pub due: bool,
    /// Every live connection
    #[arg(long, conflicts_with_all = ["targets", "due"])]
    pub all: bool,
    /// Every connection this filter selects, in the console's filter language
    #[arg(long = "where", value_name = "FILTER", conflicts_with_all = ["targets", "due", "all"])]
    pub filter: Option<String>,
    /// With --where: the count you expect it to select; another count refuses, doing nothing
    #[arg(long, value_name = "N", requires = "filter")]
    pub expect: Option<u64>,
    /// Print as a JSON array of outcomes
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Tenant names, realm ids, or environment:realm_id
    #[arg(required_unless_present = "filter")]
    pub targets: Vec<String>,
    /// Every connection this filter selects, in the console's filter language
    #[arg(long = "where", value_name = "FILTER", conflicts_with = "targets")]
    pub filter: Option<String>,
    /// With --where: the count you expect it to select; another count refuses, doing nothing
    #[arg(long, value_name = "N", requires = "filter")]
    pub expect: Option<u64>,
    /// Print as a JSON array of outcomes
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Tenant names, realm ids, or environment:realm_id
    #[arg(required_unless_present = "filter")]
    pub targets: Vec<String>,
    /// Every connection this filter matches, in the console's filter language
    /// (`status:needs_reconnect idle>90d`); lists them, and revokes only with --yes
    #[arg(long = "where", value_name = "FILTER", conflicts_with = "targets")]
    pub filter: Option<String>,
    /// With --where: the count you expect it to select; another count refuses, revoking nothing
    #[arg(long, value_name = "N", requires = "filter")]
    pub expect: Option<u64>,
    /// Revoke without the typed confirmation (required without a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Forget the tokens locally without Intuit's confirmation, on record (needs --reason)
    #[arg(long, requires = "reason")]
    pub local_only: bool,
    /// Why the tokens are forgotten without Intuit (recorded in the audit log)
    #[arg(long, value_name = "TEXT", requires = "local_only")]
    pub reason: Option<String>,
    /// Print as a JSON array of outcomes
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub cancel: Option<LinkCommand>,
    /// Tenant name, realm id, or environment:realm_id of the connection to bring back
    #[arg(required_unless_present_any = ["new", "filter"], conflicts_with_all = ["new", "filter"])]
    pub target: Option<String>,
    /// A campaign: one link for every connection this filter selects (the console's filter
    /// language), written with --csv for a mail merge
    #[arg(
        long = "where",
        value_name = "FILTER",
        requires = "csv",
        conflicts_with = "new"
    )]
    pub filter: Option<String>,
    /// With --where: the CSV file to create (mode 0600; it must not exist). It holds live
    /// links: a secret until sent
    #[arg(long, value_name = "FILE", requires = "filter")]
    pub csv: Option<std::path::PathBuf>,
    /// With --where: the count you confirmed; nothing is made if the filter selects another
    #[arg(long, value_name = "N", requires = "filter")]
    pub expect: Option<u64>,
    /// Invite a company that has no connection yet (its row appears as pending)
    #[arg(long, requires_all = ["tenant", "environment"])]
    pub new: bool,
    /// With --new: the tenant name the company will have
    #[arg(long, value_name = "NAME", requires = "new")]
    pub tenant: Option<String>,
    /// With --new: sandbox or production
    #[arg(long = "env", value_name = "ENV", requires = "new")]
    pub environment: Option<String>,
    /// How long the link stays valid (for example 2d, 12h; at most 90d)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub expires: Option<std::time::Duration>,
    /// Print {url, expires_at, connection_id} as JSON (with --where: the campaign and
    /// the connections left out, without the links)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Withdraw an open link by its number (as `links` shows it)
    Cancel {
        /// The link's number
        id: String,
        /// Print the cancelled link as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete them; without it, only list what would be deleted
    #[arg(long)]
    pub yes: bool,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first bad sequence number and the kind of damage.
    /// With --export, check an exported file against its manifest instead (no
    /// configuration and no database needed)
    Verify {
        /// Print as JSON
        #[arg(long)]
        json: bool,
        /// An exported file; its manifest FILE.manifest.json must lie beside it
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The public key the manifest must be signed by (what `audit pubkey` prints), or a
        /// file holding it; without it only the manifest's own key is checked
        #[arg(long, value_name = "KEY", requires = "export")]
        pubkey: Option<String>,
    },
    /// Export a slice of the log with a signed manifest beside it (auditor, admin)
    Export(ExportArgs),
    /// Print the public key that verifies export manifests
    Pubkey,
    /// Archive events older than [retention] audit_days to [retention] archive_dir, then
    /// remove them from the database (admin; the daemon also does this daily)
    Archive {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Move the rows stored past the chain head (which block every audited action) to the
    /// quarantine table, kept forever, and let the chain continue from its last good head;
    /// records `chain repaired` with the removed rows' hashes (admin)
    Quarantine {
        /// The first row stored past the head, as `audit verify` names it; any other
        /// sequence number is refused and nothing changes
        #[arg(long, value_name = "SEQ")]
        from: i64,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the latest events, oldest first
    Tail {
        /// How many events
        #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
        n: i64,
        /// Print as JSON lines, one event per line
        #[arg(long)]
        json: bool,
        /// Only events about a tenant whose name contains this (any case)
        #[arg(long, value_name = "TEXT")]
        tenant: Option<String>,
        /// Only events by an account whose name contains this (any case)
        #[arg(long, value_name = "TEXT")]
        actor: Option<String>,
        /// Only events whose action contains this: refresh, verify, import, console, …
        #[arg(long, value_name = "TEXT")]
        action: Option<String>,
        /// Only events with this outcome
        #[arg(long, value_name = "OUTCOME", value_parser = ["ok", "failed", "denied"])]
        outcome: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// jsonl (one event a line, as `audit tail --json`) or csv (RFC 4180, for spreadsheets)
    #[arg(long, value_name = "FORMAT", value_parser = ["jsonl", "csv"])]
    pub format: String,
    /// The file to write (never overwritten); its manifest goes to FILE.manifest.json.
    /// Default: audit-export-<UTC time>.<format> in the current directory
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only events at or after this time: RFC 3339, a date (2026-01-31), or a duration
    /// before now (30d)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events before this time (same forms as --since)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only events about a tenant whose name contains this (any case)
    #[arg(long, value_name = "TEXT")]
    pub tenant: Option<String>,
    /// Only events about this realm id
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Only events by an account whose name contains this (any case)
    #[arg(long, value_name = "TEXT")]
    pub actor: Option<String>,
    /// Only events whose action contains this (any case)
    #[arg(long, value_name = "TEXT")]
    pub action: Option<String>,
    /// Only events with this outcome
    #[arg(long, value_name = "OUTCOME", value_parser = ["ok", "failed", "denied"])]
    pub outcome: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending schema migrations
    Migrate {
        /// List what would be applied, and apply nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Take an online snapshot of the SQLite database while serve runs (admin)
    ///
    /// The daemon writes FILE (new, mode 0600) and FILE.manifest.json beside it, signed like
    /// audit exports. The keys are not in the backup: keep them apart (README: Backups).
    Backup {
        /// The backup file to create
        file: PathBuf,
        /// Print the manifest as JSON
        #[arg(long)]
        json: bool,
    },
    /// What restoring a backup now would cost, connection by connection, without a call to Intuit (admin)
    RestoreCheck {
        /// The backup file
        file: PathBuf,
        /// Print the drill as JSON (every connection's verdict)
        #[arg(long)]
        json: bool,
    },
    /// Put a backup in place of the SQLite database, serve stopped (admin)
    ///
    /// Checks the backup against its manifest, prints the restore drill, keeps the current
    /// database beside it (FILE.before-restore-TIME) and records the restore in the audit
    /// log with the drill's figures. Without --yes it only shows the drill.
    Restore {
        /// The backup file
        file: PathBuf,
        /// Restore (without it, only the drill is shown)
        #[arg(long)]
        yes: bool,
    },
    /// Check a backup against its signed manifest, offline
    VerifyBackup {
        /// The backup file (its manifest is FILE.manifest.json)
        file: PathBuf,
        /// The daemon's public key (`audit pubkey`); without it the key the manifest names
        #[arg(long, value_name = "KEY")]
        pubkey: Option<String>,
        /// Print the manifest as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a token encryption key or fingerprint key (base64 of 32 random bytes)
    Generate {
        /// Write the key to this new file with mode 0600 instead of printing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Instead of a random key, the fingerprint key an install without
        /// `[vault] fingerprint_key_file` derives from this token key file, so its existing
        /// fingerprints stay valid (needs --out)
        #[arg(long, value_name = "KEY_FILE", requires = "out")]
        fingerprint_from: Option<PathBuf>,
    },
    /// Re-seal every stored token under the new key, beside a running daemon; rerun to
    /// resume after an interruption (the key must already be [vault] key_file)
    Rotate {
        /// The new key file, as named by [vault] key_file
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
        /// Wait this long between connections (for example 20ms), to leave the database to
        /// the scheduler on a busy installation
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "0s")]
        pace: std::time::Duration,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Which key ids seal the stored tokens, how many under each, the fingerprint key's id,
    /// and whether a rotation is complete (admin, auditor)
    Status {
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub show: Option<IncidentsCommand>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// One incident with the connections it held back and how each is now
    Show {
        /// The incident's number, as `incidents` lists it
        id: String,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// The horizon in days (else [forecast] days, 30 by default)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: Option<u32>,
    /// Print the forecast (items and the last alerts) as JSON: every risk, in connection
    /// order, written as it is found (with --limit: the soonest N, soonest first)
    #[arg(long)]
    pub json: bool,
    /// Only the soonest N risks (the text shows 200 without it)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}
