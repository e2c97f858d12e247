//! Asking for a password twice, as `mosquitto_passwd` does.
//!
//! On a terminal, echo is turned off by running `stty -echo` on our standard input and restored afterwards
//! with the settings `stty -g` saved (this keeps `unsafe` termios calls out of the program). If `stty`
//! cannot be run, the password is read with echo on, after a warning. Interrupting the program at the
//! prompt (Ctrl-C) can leave echo off; `stty sane` or `reset` turns it back on.
//!
//! When standard input is not a terminal, each password is one line read from it.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

use crate::policy::passwd::edit::{self, PasswordError};

/// Why no password was obtained; the message is what `mosquitto_passwd` prints.
#[derive(Debug, PartialEq, Eq)]
pub enum PromptError {
    /// An empty line, or end of input.
    Empty,
    /// The two entries differ.
    Mismatch,
    /// 65536 bytes or more.
    TooLong,
    /// Reading failed.
    Io(String),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptError::Empty => f.write_str("Empty password."),
            PromptError::Mismatch => f.write_str("Passwords do not match."),
            PromptError::TooLong => write!(f, "{}", PasswordError::TooLong),
            PromptError::Io(e) => write!(f, "Unable to read the password: {e}"),
        }
    }
}

/// Terminal echo switched off for as long as this lives.
struct EchoOff {
    saved: String,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        let saved = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())?;
        let saved = String::from_utf8(saved.stdout).ok()?.trim().to_owned();
        let off = Command::new("stty")
            .arg("-echo")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        off.success().then_some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .status();
    }
}

/// Prints `prompt` and reads one line: without echo on a terminal, trailing `\r`/`\n` removed.
fn read_one(prompt: &str, terminal: bool) -> Result<Vec<u8>, PromptError> {
    let mut stdout = io::stdout();
    let _ = write!(stdout, "{prompt}");
    let _ = stdout.flush();
    let echo_off = if terminal {
        let guard = EchoOff::new();
        if guard.is_none() {
            eprintln!("Warning: cannot turn off terminal echo (stty failed); the password will be visible.");
        }
        guard
    } else {
        None
    };
    let mut line = Vec::new();
    let read = io::stdin().lock().read_until(b'\n', &mut line);
    drop(echo_off);
    let _ = writeln!(stdout);
    read.map_err(|e| PromptError::Io(e.to_string()))?;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    if line.is_empty() {
        return Err(PromptError::Empty);
    }
    if edit::validate_password(&line).is_err() {
        return Err(PromptError::TooLong);
    }
    Ok(line)
}

/// Asks for the password and its confirmation (`Password: ` / `Reenter password: `).
pub fn read_password_twice() -> Result<Vec<u8>, PromptError> {
    let terminal = io::stdin().is_terminal();
    let first = read_one("Password: ", terminal)?;
    let second = read_one("Reenter password: ", terminal)?;
    if first != second {
        return Err(PromptError::Mismatch);
    }
    Ok(first)
}
