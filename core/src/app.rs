//! The apps that ship inside weft, as a job names them and the coordinator checks them: an
//! [`App`] is a name and its arguments; [`APPS`] says, for each app, the arguments it takes,
//! how it checks them and the partitioner it prefers. Workers run them
//! (`worker/src/programs/apps`).
//!
//! A new app is its worker implementation, its registration beside it, and one entry in
//! [`APPS`]: the wire, the store, the command line and the dashboard carry any name and
//! arguments as they are.

use std::collections::BTreeMap;

use crate::spec::{PartitionerKind, SpecError};

/// An app's arguments, by name.
pub type AppArgs = BTreeMap<String, String>;

/// A built-in app a job runs, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Its name, as `--app` takes it.
    pub name: String,
    /// Its arguments, as `--arg NAME=VALUE` gives them.
    pub args: AppArgs,
}

impl App {
    /// The app called `name`, with no arguments.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            args: AppArgs::new(),
        }
    }

    /// This app with the argument `name` set to `value`.
    pub fn with_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.insert(name.into(), value.into());
        self
    }

    /// The argument called `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.get(name).map(String::as_str)
    }

    /// What weft knows of this app, if it is one.
    pub fn kind(&self) -> Option<&'static AppKind> {
        APPS.iter().find(|kind| kind.name == self.name)
    }

    /// Checks that the app exists, that it is given exactly the arguments it needs (an
    /// empty value is none: older peers send an empty `pattern` for "no pattern"), and that
    /// they are valid.
    pub fn check(&self) -> Result<(), SpecError> {
        let kind = self.kind().ok_or_else(|| SpecError::UnknownApp(self.name.clone()))?;
        let given = |name: &str| self.arg(name).is_some_and(|value| !value.is_empty());
        if let Some(arg) = kind.args.iter().find(|arg| !given(arg.name)) {
            return Err(SpecError::MissingArgument {
                app: kind.name,
                arg: arg.name,
                what: arg.what,
            });
        }
        if let Some(name) = self.args.keys().find(|name| !kind.args.iter().any(|a| a.name == *name)) {
            return Err(SpecError::UnexpectedArgument {
                app: kind.name,
                arg: name.clone(),
                takes: kind.takes(),
            });
        }
        (kind.check)(self)
    }
}

/// What the coordinator knows of an app without running it.
#[derive(Debug)]
pub struct AppKind {
    /// Its name, as `--app` takes it.
    pub name: &'static str,
    /// The arguments it needs (all of them).
    pub args: &'static [AppArg],
    /// How its jobs' map output is split unless they say (`--partitioner`).
    pub partitioner: PartitionerKind,
    /// Checks the arguments' values (they are there: [`App::check`] saw to it).
    pub check: fn(&App) -> Result<(), SpecError>,
}

impl AppKind {
    /// The arguments it takes, for a message: `pattern=REGEX`, or `no arguments`.
    fn takes(&self) -> String {
        match self.args {
            [] => "no arguments".to_string(),
            args => args
                .iter()
                .map(|a| format!("{}={}", a.name, a.what))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// An argument an app needs.
#[derive(Debug)]
pub struct AppArg {
    /// Its name.
    pub name: &'static str,
    /// What its value is, in a word: `REGEX`.
    pub what: &'static str,
}

/// The apps that ship inside weft.
pub const APPS: &[AppKind] = &[
    // word, count.
    AppKind {
        name: "wordcount",
        args: &[],
        partitioner: PartitionerKind::Hash,
        check: no_check,
    },
    // word, `N doc1,doc2,...`.
    AppKind {
        name: "indexer",
        args: &[],
        partitioner: PartitionerKind::Hash,
        check: no_check,
    },
    // input file path, number of lines matching `pattern`.
    AppKind {
        name: "grep",
        args: &[AppArg {
            name: "pattern",
            what: "REGEX",
        }],
        partitioner: PartitionerKind::Hash,
        check: check_pattern,
    },
    // The input lines, globally sorted bytewise: ranges of keys make the parts in order
    // the sorted input.
    AppKind {
        name: "sort",
        args: &[],
        partitioner: PartitionerKind::Range,
        check: no_check,
    },
];

/// The names `--app` accepts.
pub fn app_names() -> Vec<&'static str> {
    APPS.iter().map(|kind| kind.name).collect()
}

fn no_check(_: &App) -> Result<(), SpecError> {
    Ok(())
}

/// grep's pattern is a regular expression (Rust `regex` syntax).
fn check_pattern(app: &App) -> Result<(), SpecError> {
    let pattern = app.arg("pattern").unwrap_or_default();
    match regex::bytes::Regex::new(pattern) {
        Ok(_) => Ok(()),
        Err(e) => Err(SpecError::BadArgument {
            app: "grep",
            arg: "pattern",
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_checked_against_what_it_takes() {
        assert_eq!(App::new("wordcount").check(), Ok(()));
        assert_eq!(App::new("grep").with_arg("pattern", "a|b").check(), Ok(()));
        let unknown = App::new("pagerank").check().unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown app \"pagerank\": the built-in apps are wordcount, indexer, grep, sort"
        );
        let missing = App::new("grep").check().unwrap_err();
        assert_eq!(missing.to_string(), "the grep app needs --arg pattern=REGEX");
        let empty = App::new("grep").with_arg("pattern", "").check().unwrap_err();
        assert_eq!(empty, missing, "an empty value is none");
        let unexpected = App::new("sort").with_arg("pattern", "x").check().unwrap_err();
        assert_eq!(
            unexpected.to_string(),
            "the sort app takes no argument \"pattern\": it takes no arguments"
        );
        let bad = App::new("grep").with_arg("pattern", "(").check().unwrap_err();
        assert!(
            bad.to_string().starts_with("invalid pattern for the grep app: "),
            "{bad}"
        );
    }

    #[test]
    fn every_app_has_one_entry() {
        let mut names = app_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), APPS.len());
    }
}
