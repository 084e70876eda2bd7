//! `portcullis`: the server and its administrative commands.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use identity::audit::Actor;
use identity::{Identity, RequestMeta, Role, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use server::{Application, Config, startup, telemetry};
use std::io::BufRead;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Identity control plane for products with many surfaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage dashboard staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Manage environment admin keys for the management API.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Insert synthetic data, for benchmarks and demos.
    Seed {
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create an active staff member. The password is read from standard input (first line), or from
    /// the environment variable named by --password-env; never from the command line.
    Create {
        #[arg(long)]
        email: String,
        /// owner, operator, support or auditor
        #[arg(long)]
        role: String,
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key carrying a staff role. Prints the key once, alone on the last line.
    Create {
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
    },
    /// List keys (id, prefix, name, role, last use); never the keys themselves.
    List,
    /// Revoke a key by id; requests with it are refused from then on.
    Revoke {
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and report the first broken link, if any.
    Verify {
        /// First event number to check (default: the first).
        #[arg(long)]
        from: Option<i64>,
        /// Last event number to check (default: the newest).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Write the events of a filter to a file (CSV or NDJSON), oldest first, with a progress bar.
    Export {
        /// csv or ndjson
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        application_id: Option<String>,
        #[arg(long)]
        user_id: Option<String>,
        /// success or failure
        #[arg(long)]
        outcome: Option<String>,
    },
    /// Apply the retention period now (PORTCULLIS_AUDIT_RETENTION_DAYS; the server does this hourly):
    /// purge older events behind a signed checkpoint.
    Purge,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the signing keys (kid, algorithm, status); never the private parts.
    List,
    /// Rotate: next becomes current, current becomes previous, a new next is published.
    Rotate,
}

#[derive(Subcommand)]
enum SeedCommand {
    /// Add synthetic applications (audited, named "Seeded <type> app <n>…").
    Applications {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
    /// Append synthetic, chained audit events spread over the last 30 days (benchmarks, demos).
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
    /// Add synthetic active users (audited), all with one password, read like `staff create`'s.
    Users {
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        #[arg(long)]
        password_env: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    telemetry::init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open(&config).await?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::Staff {
            command:
                StaffCommand::Create {
                    email,
                    role,
                    password_env,
                },
        } => {
            let role = Role::parse(&role)?;
            let password = read_password(password_env.as_deref())?;
            let identity = open(&config).await?;
            let staff = identity::staff::create(
                &identity,
                &Actor::System,
                &cli_meta(),
                &email,
                role,
                password,
                Timestamp::now(),
            )
            .await?;
            println!(
                "Created {} ({}) with id {}.",
                staff.email,
                staff.role.as_str(),
                staff.id
            );
            Ok(())
        }
        Command::ApiKey {
            command: ApiKeyCommand::Create { role, name },
        } => {
            let role = Role::parse(&role)?;
            let identity = open(&config).await?;
            let key = identity::api_keys::create(
                &identity,
                &Actor::System,
                &cli_meta(),
                &name,
                role,
                Timestamp::now(),
            )
            .await?;
            println!(
                "Created API key {:?} ({}) with id {}. It is shown only this once:",
                key.name,
                key.role.as_str(),
                key.id
            );
            println!("{}", key.key.expose_secret());
            Ok(())
        }
        Command::ApiKey {
            command: ApiKeyCommand::List,
        } => {
            let identity = open(&config).await?;
            for k in identity::api_keys::list(&identity).await? {
                let state = match (k.revoked_at, k.last_used_at) {
                    (Some(t), _) => format!("revoked {}", t.rfc3339()),
                    (None, Some(t)) => format!("last used {}", t.rfc3339()),
                    (None, None) => "never used".to_owned(),
                };
                println!(
                    "{}  {}…  {:<8}  {}  ({state})",
                    k.id,
                    k.prefix,
                    k.role.as_str(),
                    k.name
                );
            }
            Ok(())
        }
        Command::ApiKey {
            command: ApiKeyCommand::Revoke { id },
        } => {
            let identity = open(&config).await?;
            identity::api_keys::revoke(
                &identity,
                &Actor::System,
                &cli_meta(),
                &id,
                Timestamp::now(),
            )
            .await?;
            println!("Revoked API key {id}.");
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { from, to },
        } => {
            let identity = open(&config).await?;
            let started = std::time::Instant::now();
            let head =
                identity::audit::list(&identity, &system_owner(), &Default::default(), None, 1)
                    .await?
                    .first()
                    .map_or(0, |r| r.seq);
            let total = (to.unwrap_or(head).min(head) - from.unwrap_or(1).max(1) + 1).max(0) as u64;
            let bar = |done: i64| progress_bar(done as u64, total, started);
            let report = identity::audit::verify_range_with(&identity, from, to, &bar).await?;
            eprintln!();
            let secs = started.elapsed().as_secs_f64();
            if let Some(cp) = report.checkpoint {
                println!("starting from the signed retention checkpoint at event #{cp}");
            }
            match (report.first_broken, report.checkpoint_problem) {
                (None, _) => {
                    println!(
                        "intact: {} events checked in {secs:.1} s ({:.0} events/s)",
                        report.checked,
                        report.checked as f64 / secs.max(1e-9)
                    );
                    Ok(())
                }
                (Some(_), Some(problem)) => {
                    bail!("broken: the retention checkpoint cannot be trusted: {problem}")
                }
                (Some(seq), None) => bail!(
                    "broken: the chain does not hold at event #{seq} ({} events before it are intact)",
                    report.checked
                ),
            }
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    format,
                    out,
                    category,
                    event,
                    application_id,
                    user_id,
                    outcome,
                },
        } => {
            let format = match format.as_str() {
                "csv" => server::http::audit_export::Format::Csv,
                "ndjson" => server::http::audit_export::Format::Ndjson,
                other => bail!("--format is csv or ndjson, not {other:?}"),
            };
            let identity = open(&config).await?;
            let filter = identity::audit::Filter {
                category,
                event,
                application_id,
                user_id,
                outcome,
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let mut export =
                identity::audit::export(&identity, &system_owner(), &filter, None).await?;
            let through = export.through;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let written = server::http::audit_export::write_all(
                &identity,
                &mut export,
                format,
                &mut writer,
                &|seq| progress_bar(seq as u64, through as u64, started),
            )
            .await?;
            std::io::Write::flush(&mut writer).context("writing the export")?;
            eprintln!();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "Wrote {written} events (through event #{through}) to {} in {secs:.1} s ({:.0} events/s).",
                out.display(),
                written as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Purge,
        } => {
            let identity = open(&config).await?;
            let days = config.settings.audit_retention_days;
            let purge = identity::audit_retention::apply(&identity, days, Timestamp::now()).await?;
            match purge.through_seq {
                Some(through) => println!(
                    "Purged {} events older than {days} days, through event #{through} ({} signed checkpoints).",
                    purge.purged, purge.checkpoints
                ),
                None => println!("Nothing older than {days} days to purge (0 keeps everything)."),
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let identity = open(&config).await?;
            for key in identity::keys::list(&identity, &system_owner()).await? {
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    key.kid,
                    key.alg,
                    key.status,
                    key.created_at.rfc3339()
                );
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let identity = open(&config).await?;
            let current = identity::keys::rotate(
                &identity,
                &identity::audit::Actor::System,
                None,
                &identity::RequestMeta::default(),
                Timestamp::now(),
            )
            .await?;
            println!("Rotated. Signing with {current} now.");
            Ok(())
        }
        Command::Seed {
            command: SeedCommand::Audit { count },
        } => {
            let identity = open(&config).await?;
            let started = std::time::Instant::now();
            let bar = |done: u64| progress_bar(done, count, started);
            identity::audit::seed(&identity, count, Timestamp::now(), &bar).await?;
            eprintln!();
            println!(
                "Added {count} audit events in {:.1} s.",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Seed {
            command: SeedCommand::Applications { count },
        } => {
            let identity = open(&config).await?;
            let started = std::time::Instant::now();
            identity::applications::seed(&identity, count, Timestamp::now()).await?;
            println!(
                "Added {count} applications in {:.1} s.",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Seed {
            command:
                SeedCommand::Users {
                    count,
                    password_env,
                },
        } => {
            let password = read_password(password_env.as_deref())?;
            let identity = open(&config).await?;
            let started = std::time::Instant::now();
            identity::users::seed(&identity, count, password, Timestamp::now()).await?;
            println!(
                "Added {count} users in {:.1} s.",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// The CLI acts as the system with an owner's reach (it runs on the server, with its configuration).
fn system_owner() -> identity::Principal {
    identity::Principal {
        role: Some(identity::Role::Owner),
        kind: identity::authz::PrincipalKind::ApiKey {
            api_key_id: "cli".to_owned(),
            name: "portcullis CLI".to_owned(),
        },
    }
}

async fn open(config: &Config) -> anyhow::Result<Identity> {
    Identity::open(
        &config.database_url,
        config.settings.clone(),
        config.master_key()?,
    )
    .await
    .map_err(|e| anyhow::anyhow!(app::ssr::error_chain(&e)))
}

fn cli_meta() -> RequestMeta {
    RequestMeta {
        ip: None,
        user_agent: Some(format!("portcullis-cli/{}", env!("CARGO_PKG_VERSION"))),
        request_id: None,
    }
}

fn read_password(env_var: Option<&str>) -> anyhow::Result<SecretString> {
    let password = match env_var {
        Some(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?
        }
        None => {
            eprintln!("Password (read from standard input):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    Ok(SecretString::from(password))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let url = app.public_url().to_owned();
    tracing::info!(%url, "Portcullis is listening");
    if identity::staff::count(&app.state.identity).await? == 0 {
        println!(
            "\nNo staff accounts yet. Create the first owner (password read from standard input):\n\n    \
             target/release/portcullis staff create --email you@example.com --role owner\n\n\
             then sign in at {url}/login\n"
        );
    } else {
        println!("\nPortcullis is running at {url}\n");
    }
    app.run_until_stopped(startup::shutdown_signal()).await?;
    Ok(())
}

/// A one-line progress bar on stderr: `[#####-----]  50%  500000/1000000  41230/s`.
fn progress_bar(done: u64, total: u64, started: std::time::Instant) {
    use std::io::Write;
    let width: u64 = 30;
    let filled = (done.min(total) * width)
        .checked_div(total)
        .unwrap_or(width);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {:>3}%  {done}/{total}  {rate:.0}/s ",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize),
        percent,
    );
    let _ = err.flush();
}
