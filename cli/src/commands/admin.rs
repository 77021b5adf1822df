//! `weft admin`: what an operator does to a coordinator's state, on its host. `backup`
//! copies the SQLite state database while the coordinator runs; `restore` puts a backup
//! in place of a stopped coordinator's. (On PostgreSQL, `pg_dump` and `pg_restore` do
//! both: see the README.)

use std::path::PathBuf;
use std::process::ExitCode;

use weft_coordinator::store::sqlite::backup::{self, Copied};

/// Flags of `weft admin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Admin,
}

#[derive(Debug, clap::Subcommand)]
enum Admin {
    /// Copy the coordinator's state database (SQLite) to a new file, while it runs: a
    /// consistent copy as of one commit.
    Backup {
        /// The coordinator's --state-dir.
        #[arg(long, default_value = "weft-state", value_name = "DIR")]
        state_dir: PathBuf,
        /// The new file.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Put a backup in place of a state directory's database; its coordinator must be
    /// stopped. A coordinator started on it then takes up the jobs that had not ended.
    Restore {
        /// The backup.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The state directory to restore into.
        #[arg(long, default_value = "weft-state", value_name = "DIR")]
        state_dir: PathBuf,
        /// Replace a database already there (its coordinator stopped).
        #[arg(long)]
        replace: bool,
    },
}

/// Runs the admin command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Admin::Backup { state_dir, to } => {
            let copied = backup::backup(&state_dir, &to)?;
            println!(
                "backed up {} to {}: {}",
                state_dir.display(),
                to.display(),
                said(&copied)
            );
        }
        Admin::Restore {
            from,
            state_dir,
            replace,
        } => {
            let copied = backup::restore(&from, &state_dir, replace)?;
            println!(
                "restored {} into {}: {}",
                from.display(),
                state_dir.display(),
                said(&copied)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn said(copied: &Copied) -> String {
    format!(
        "{} jobs ({} not ended), schema {}, {} bytes",
        copied.jobs, copied.unfinished, copied.schema, copied.bytes
    )
}
