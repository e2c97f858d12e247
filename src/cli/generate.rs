//! `mqtt-policy generate`: man pages and shell completions made from the same clap definition as the
//! program itself, so they cannot drift from it (as ripgrep's `rg --generate`). For packagers
//! (`scripts/package.sh` runs it): it is parsed before the program's own definition and is not part
//! of it, so no help text, man page or completion offers it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use super::{Cli, EXIT_ERROR, EXIT_OK};

/// `mqtt-policy generate (man|completions) DIR`.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt-policy generate",
    bin_name = "mqtt-policy generate",
    about = "Write mqtt-policy's man pages or shell completions (for packagers)"
)]
struct GenerateCli {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Write mqtt-policy.1 and one page per subcommand (mqtt-policy-check.1, ...) into DIR.
    Man {
        /// The folder to write into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write completions for bash (mqtt-policy.bash), zsh (_mqtt-policy) and fish (mqtt-policy.fish) into DIR.
    Completions {
        /// The folder to write into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// The shells completions are written for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Runs `generate` with `args` (the first is `generate` itself): writes what was asked for and prints
/// each file's path. Exit code 2 on bad usage or when a file cannot be written.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match GenerateCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let result = match &cli.what {
        What::Man { dir } => man(dir),
        What::Completions { dir } => completions(dir),
    };
    match result {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("mqtt-policy generate: {e}");
            EXIT_ERROR
        }
    }
}

/// The program's clap definition, as `mqtt-policy --help` shows it.
fn command() -> clap::Command {
    Cli::command()
}

/// Man pages for the program and each visible subcommand, section 1.
fn man(dir: &Path) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    clap_mangen::generate_to(command(), dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(listing(dir)?
        .into_iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mqtt-policy") && n.ends_with(".1"))
        })
        .collect())
}

/// Completion scripts under the names each shell looks for.
fn completions(dir: &Path) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = command();
    let name = cmd.get_name().to_string();
    SHELLS
        .iter()
        .map(|shell| {
            clap_complete::generate_to(*shell, &mut cmd, &name, dir)
                .map_err(|e| format!("{} completions into {}: {e}", shell, dir.display()))
        })
        .collect()
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_are_written_for_the_program_and_each_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let files = man(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for page in [
            "mqtt-policy.1",
            "mqtt-policy-check.1",
            "mqtt-policy-lint.1",
            "mqtt-policy-test.1",
            "mqtt-policy-passwd.1",
            "mqtt-policy-broker.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} missing: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("generate")),
            "generate has no page: {names:?}"
        );
        // The finding codes and the expectation file format are in their pages.
        let lint = fs::read_to_string(dir.path().join("mqtt-policy-lint.1")).unwrap();
        assert!(lint.contains("placeholder\\-inside\\-level"), "{lint}");
        let test = fs::read_to_string(dir.path().join("mqtt-policy-test.1")).unwrap();
        assert!(
            test.contains("[[case]]") && test.contains("with client id"),
            "{test}"
        );
    }

    #[test]
    fn completions_are_written_for_bash_zsh_and_fish() {
        let dir = tempfile::tempdir().unwrap();
        let files = completions(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["mqtt-policy.bash", "_mqtt-policy", "mqtt-policy.fish"]
        );
        let bash = fs::read_to_string(dir.path().join("mqtt-policy.bash")).unwrap();
        assert!(bash.contains("complete -F"), "{bash}");
        assert!(bash.contains("passwd"), "subcommands are completed");
        assert!(!bash.contains("generate"), "generate is not offered");
    }
}
