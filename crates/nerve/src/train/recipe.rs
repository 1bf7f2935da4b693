//! Recipes: a reproduced result as a TOML file of command options, with what it reproduces.
//!
//! Top-level keys are the long options of a `nerve` subcommand, written with dashes or
//! underscores (`epochs = 3`, `learn_beta = true`); a `[recipe]` table says what the options
//! reproduce, and the figure to compare with:
//!
//! ```toml
//! dataset = "fashion-mnist"
//! arch = "FC128-FC500"
//! population = 50
//!
//! [recipe]
//! name = "population-coding-fmnist"
//! label = "500 outputs, populations of 50"
//! source = "https://github.com/jeshraghian/snntorch/blob/master/examples/tutorial_pop.ipynb"
//! metric = "test accuracy"
//! figure = 82.7
//! goal = ">= 82.7"
//! notes = "Where and why the options differ from the source."
//!
//! [[recipe.rows]]          # further rows of the same table: the same options, some changed
//! label = "10 outputs"
//! figure = 61.9
//! args = ["--arch", "FC128-FC10", "--population", "1"]
//! ```
//!
//! Which keys exist is the command's business: [`Recipe::check_options`] refuses any other,
//! naming the key and the file.
//!
//! ```
//! use nerve::train::recipe::Recipe;
//!
//! let recipe = Recipe::parse("epochs = 3\nlearn_beta = true\n[recipe]\nfigure = 98.5\n", "r.toml")?;
//! assert_eq!(recipe.to_args::<&str>(&[]), ["--epochs=3", "--learn-beta"]); // in key order
//! assert!(recipe.check_options(&["epochs", "learn-beta"]).is_ok());
//! let err = recipe.check_options(&["epochs"]).unwrap_err().to_string();
//! assert!(err.contains("r.toml") && err.contains("learn_beta"), "{err}");
//! # Ok::<(), nerve::Error>(())
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// What a recipe reproduces: its `[recipe]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecipeMeta {
    /// The recipe's name (its file name without `.toml`, by convention).
    #[serde(default)]
    pub name: String,
    /// Where the reproduced figure comes from (a tutorial or paper URL).
    #[serde(default)]
    pub source: String,
    /// What the recipe's own row shows (its table label).
    #[serde(default)]
    pub label: String,
    /// What the run reports: `test accuracy` (percent) or `relative error`.
    #[serde(default)]
    pub metric: String,
    /// The source's figure for the metric.
    pub figure: Option<f64>,
    /// What counts as reproduced, e.g. `>= 82.7`.
    #[serde(default)]
    pub goal: String,
    /// Where and why the recipe differs from its source.
    #[serde(default)]
    pub notes: String,
    /// Further rows: the same options with some changed on the command line.
    #[serde(default)]
    pub rows: Vec<RecipeRow>,
}

/// A further row of a recipe's table: extra command-line arguments and the source's figure.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecipeRow {
    /// What the row shows.
    pub label: String,
    /// The source's figure for this row.
    pub figure: Option<f64>,
    /// Arguments appended to the recipe's options (they override them).
    #[serde(default)]
    pub args: Vec<String>,
}

/// A recipe file: its options, in key order, and its `[recipe]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The file it was read from.
    pub path: PathBuf,
    /// Options as `(key as written, value)`; a flag's value is `None` (set) and flags set to
    /// `false` are left out.
    pub options: Vec<(String, Option<String>)>,
    /// What the recipe reproduces (empty when the file has no `[recipe]` table).
    pub meta: RecipeMeta,
}

/// The option a key names: dashes for underscores, as on the command line.
pub fn option_name(key: &str) -> String {
    key.replace('_', "-")
}

impl Recipe {
    /// Reads and parses a recipe file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses recipe text; `path` names the file in errors.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let table: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| {
            Error::format(
                path,
                format!("not valid TOML: {}", one_line(&e.to_string())),
            )
        })?;
        let mut options = Vec::new();
        let mut meta = RecipeMeta::default();
        for (key, value) in table {
            if key == "recipe" {
                meta = value.try_into().map_err(|e: toml::de::Error| {
                    Error::format(path, format!("[recipe]: {}", one_line(&e.to_string())))
                })?;
                continue;
            }
            let text = match value {
                toml::Value::Boolean(true) => None,
                toml::Value::Boolean(false) => continue,
                toml::Value::String(s) => Some(s),
                toml::Value::Integer(i) => Some(i.to_string()),
                toml::Value::Float(f) if f.is_finite() => Some(f.to_string()),
                other => {
                    return Err(Error::format(
                        path,
                        format!(
                            "option '{key}': a {} is not an option value (use a string, number \
                             or boolean)",
                            other.type_str()
                        ),
                    ))
                }
            };
            options.push((key, text));
        }
        Ok(Self {
            path: path.to_path_buf(),
            options,
            meta,
        })
    }

    /// Refuses the first key that is not one of `known` (long option names, with dashes) or
    /// that names an option twice (`lr` and `lr`, or `learn_beta` and `learn-beta`).
    pub fn check_options<S: AsRef<str>>(&self, known: &[S]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (key, _) in &self.options {
            let name = option_name(key);
            if !known.iter().any(|k| k.as_ref() == name) {
                return Err(Error::format(
                    &self.path,
                    format!("unknown option '{key}' (a recipe sets the command's long options)"),
                ));
            }
            if !seen.insert(name) {
                return Err(Error::format(
                    &self.path,
                    format!("option '{key}' is set twice"),
                ));
            }
        }
        Ok(())
    }

    /// The options as command-line arguments (`--name=value`, or `--name` for a flag), leaving out those named in `given` (set on the
    /// command line, which overrides the file).
    pub fn to_args<S: AsRef<str>>(&self, given: &[S]) -> Vec<String> {
        let mut args = Vec::new();
        for (key, value) in &self.options {
            let name = option_name(key);
            if given.iter().any(|g| g.as_ref() == name) {
                continue;
            }
            // `--name=value`, so a value that starts with a dash stays a value.
            args.push(match value {
                Some(v) => format!("--{name}={v}"),
                None => format!("--{name}"),
            });
        }
        args
    }
}

/// An error message on one line (TOML errors quote the source over several).
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_arguments_and_the_command_line_wins() {
        let r = Recipe::parse(
            "lr = 2e-3\nsteps = 1\narch = \"FC128-FC500\"\nlearn-beta = false\ncheckpointing = true\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            r.to_args(&["steps"]),
            ["--arch=FC128-FC500", "--checkpointing", "--lr=0.002"]
        );
    }

    #[test]
    fn bad_files_name_the_problem_on_one_line() {
        let err = |text: &str| Recipe::parse(text, "bad.toml").unwrap_err().to_string();
        let e = err("epochs = [1, 2]");
        assert!(
            e.contains("bad.toml") && e.contains("'epochs'") && e.contains("array"),
            "{e}"
        );
        let e = err("epochs = ");
        assert!(
            e.starts_with("bad.toml: not valid TOML") && !e.contains('\n'),
            "{e}"
        );
        let e = err("[recipe]\nfigur = 1.0");
        assert!(e.contains("[recipe]") && e.contains("figur"), "{e}");
        let r = Recipe::parse("lr = 1\nl_r = 2", "twice.toml").unwrap();
        assert!(r.check_options(&["lr", "l-r"]).is_ok());
        let r = Recipe::parse("learn_beta = true\nlearn-beta = true", "twice.toml").unwrap();
        let e = r.check_options(&["learn-beta"]).unwrap_err().to_string();
        assert!(e.contains("set twice"), "{e}");
    }
}
