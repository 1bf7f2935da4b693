//! `--config FILE`: a recipe's options (see `nerve::train::recipe`) placed before the command
//! line's own, so anything given on the command line overrides the file.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Command;
use nerve::train::recipe::Recipe;
use nerve::Result;

/// The help text of every command's `--config`.
pub const CONFIG_HELP: &str = "A recipe: a TOML file setting this command's long options \
     (dashes or underscores, e.g. `epochs = 3`), with an optional [recipe] table; options \
     given on the command line override the file's";

/// The arguments with the recipe named by `--config FILE` (or `--config=FILE`) expanded in
/// place, and the recipe's path; the arguments unchanged when there is none, or when the
/// command named does not take `--config` (clap then reports it).
pub fn expand(cli: Command, args: Vec<OsString>) -> Result<(Vec<OsString>, Option<PathBuf>)> {
    let text: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(file) = config_value(&text) else {
        return Ok((args, None));
    };
    // Follow the subcommand names to the command whose options the recipe sets.
    let mut command = cli;
    let mut at = 1;
    while let Some(sub) = text
        .get(at)
        .and_then(|name| command.find_subcommand(name).cloned())
    {
        command = sub;
        at += 1;
    }
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|&l| l != "config")
        .map(str::to_string)
        .collect();
    if known.len()
        == command
            .get_arguments()
            .filter(|a| a.get_long().is_some())
            .count()
    {
        return Ok((args, None));
    }
    let path = PathBuf::from(file);
    let recipe = Recipe::load(&path)?;
    recipe.check_options(&known)?;
    let given: Vec<String> = text[at..]
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let mut expanded: Vec<OsString> = args[..at].to_vec();
    expanded.extend(recipe.to_args(&given).into_iter().map(OsString::from));
    expanded.extend(args[at..].iter().cloned());
    Ok((expanded, Some(path)))
}

/// Prints which recipe a run follows (its name and source when the file says), so a log says
/// where its options came from.
pub fn announce(config: Option<&std::path::Path>) {
    let Some(path) = config else { return };
    match Recipe::load(path) {
        Ok(r) if !r.meta.source.is_empty() => {
            println!("recipe: {} ({})", path.display(), r.meta.source)
        }
        _ => println!("recipe: {}", path.display()),
    }
}

/// The value of `--config FILE` or `--config=FILE`, if given.
fn config_value(args: &[String]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == "--config" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--config=").map(str::to_string)
        }
    })
}
