//! `apikey create | list | revoke` on the command line.

use super::args::ApikeyCommand;
use super::{exit, print_json, Failure};
use qbo_core::domain::Environment;
use qbo_core::text::Safe;
use qbo_service::{ApiKeyRecord, Client};

pub(super) enum ApikeyCall {
    Create {
        name: String,
        realms: Vec<String>,
        environment: Option<Environment>,
        json: bool,
    },
    List {
        json: bool,
    },
    Revoke {
        id: i64,
        json: bool,
    },
}

impl ApikeyCall {
    pub(super) fn parse(cmd: ApikeyCommand) -> Result<ApikeyCall, Failure> {
        Ok(match cmd {
            ApikeyCommand::Create {
                name,
                realms,
                environment,
                json,
            } => ApikeyCall::Create {
                name,
                realms,
                environment: environment.as_deref().map(str::parse).transpose().map_err(
                    |m: qbo_core::domain::InvalidValue| Failure {
                        code: exit::BAD_INPUT,
                        message: format!("--env: {m}"),
                    },
                )?,
                json,
            },
            ApikeyCommand::List { json } => ApikeyCall::List { json },
            ApikeyCommand::Revoke { id, json } => ApikeyCall::Revoke { id, json },
        })
    }
}

fn scope(k: &ApiKeyRecord) -> String {
    let realms = if k.realms.is_empty() {
        "every realm".to_string()
    } else {
        k.realms.join(",")
    };
    let env = k.environment.map_or("both".to_string(), |e| e.to_string());
    format!("{realms} ({env})")
}

pub(super) async fn run(client: &dyn Client, call: ApikeyCall) -> Result<u8, Failure> {
    match call {
        ApikeyCall::Create {
            name,
            realms,
            environment,
            json,
        } => {
            let k = client.apikey_create(name, realms, environment).await?;
            if json {
                print_json(&k)?;
            } else {
                println!("api key {} for service {}:\n{}", k.id, Safe(&k.name), k.key);
                eprintln!(
                    "This is the only time the key is shown; it is stored only as a hash. Give it to the service as `Authorization: Bearer KEY`."
                );
            }
        }
        ApikeyCall::List { json } => {
            let keys = client.apikey_list().await?;
            if json {
                print_json(&keys)?;
            } else {
                println!(
                    "{:>4}  {:<24} {:<32} {:<20} REVOKED",
                    "ID", "SERVICE", "MAY READ", "CREATED"
                );
                for k in &keys {
                    println!(
                        "{:>4}  {:<24} {:<32} {:<20} {}",
                        k.id,
                        Safe(&k.name).to_string(),
                        scope(k),
                        k.created_at.format("%Y-%m-%d %H:%M"),
                        k.revoked_at
                            .map_or("-".to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
                    );
                }
            }
        }
        ApikeyCall::Revoke { id, json } => {
            let k = client.apikey_revoke(id).await?;
            if json {
                print_json(&k)?;
            } else {
                println!("api key {} of service {} revoked", k.id, Safe(&k.name));
            }
        }
    }
    Ok(exit::OK)
}
