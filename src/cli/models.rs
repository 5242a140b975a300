//! `precis models`: the presets `--model` accepts, from the built-in catalogue.

use std::process::ExitCode;

use precis::loading::catalogue::Catalogue;

use super::output::write_stdout;

/// `precis models`: the presets `--model` accepts.
pub fn run() -> anyhow::Result<ExitCode> {
    let mut text = format!(
        "{:<24} {:<36} {:>7} {:>7} {:>9}  {}\n",
        "NAME", "REPO", "WINDOW", "PARAMS", "DOWNLOAD", "DESCRIPTION"
    );
    for preset in Catalogue::all()? {
        text.push_str(&format!(
            "{:<24} {:<36} {:>7} {:>6}M {:>6} MB  {}\n",
            preset.name,
            preset.repo,
            preset.window,
            preset.parameters_millions,
            preset.download_mb,
            preset.description
        ));
    }
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
