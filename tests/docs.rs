//! The documentation stays true: the key reference is what the code generates, every key a
//! committed experiment uses is in it, every link in the README and docs/ resolves, the
//! README stays short, and completions and man pages come out for both programs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use microcal::config::{flatten_config, Experiment};
use microcal::reference::{experiment_file_reference, REFERENCE_COMMAND};

#[test]
fn the_key_reference_is_generated_from_the_code() {
    let committed = fs::read_to_string(repo().join("docs/experiment-file.md")).unwrap();
    assert!(
        committed == experiment_file_reference(),
        "docs/experiment-file.md is stale: run `{REFERENCE_COMMAND}`"
    );
    let printed = microcal(&["reference"]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(stdout(&printed), committed);
}

#[test]
fn every_key_the_committed_experiments_use_is_in_the_reference() {
    let reference = experiment_file_reference();
    let mut checked = 0;
    for file in toml_files(&repo().join("experiments")) {
        let exp = Experiment::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
        for (config, _) in exp.configs().unwrap() {
            for (key, _) in flatten_config(&config) {
                // Classifier parameters are documented per classifier, as model.params.KEY.
                assert!(
                    reference.contains(&format!("| `{key}` |")),
                    "{key} (from {}) is missing from the reference",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(reference.contains("| `extends` |"));
    assert!(reference.contains("| `search.halving.min_epochs` |"));
}

#[test]
fn the_runner_help_points_to_the_reference() {
    let help = microcal_run(&["--help"]);
    assert!(stdout(&help).contains("docs/experiment-file.md"));
    assert!(repo().join("docs/experiment-file.md").is_file());
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![
        repo().join("README.md"),
        repo().join("CHANGELOG.md"),
        repo().join("results/README.md"),
    ];
    let mut docs: Vec<_> = fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// `[text](target)` links of a Markdown text, outside code spans and blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_link_in_the_readme_and_docs_resolves() {
    let mut checked = 0;
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                panic!(
                    "{}: external link {link}: the docs work offline",
                    file.display()
                );
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            assert!(
                target.exists(),
                "{}: link {link} points to nothing",
                file.display()
            );
            if !fragment.is_empty() {
                let text = fs::read_to_string(&target).unwrap();
                assert!(
                    anchors(&text).iter().any(|a| a == fragment),
                    "{}: link {link}: no heading #{fragment} in {}",
                    file.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} links");
}

#[test]
fn the_readme_is_short_and_names_the_two_commands() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines");
    assert!(readme.contains("experiments/quickstart.toml"));
    assert!(readme.contains("cargo test"));
    let ci = fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.contains("cargo test"),
        ".ci/run runs the README's test command"
    );
}

#[test]
fn completions_print_for_bash_zsh_and_fish_and_cover_both_programs() {
    for shell in ["bash", "zsh", "fish"] {
        let out = microcal(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        for word in ["microcal-run", "plan", "show", "reference", "completions"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    // bash itself loads the script and registers both programs.
    let out = microcal(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("microcal.bash");
    fs::write(&script, stdout(&out)).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p microcal && complete -p microcal-run",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(stdout(&check).lines().count(), 2);
}

#[test]
fn man_pages_are_written_for_both_programs() {
    let dir = tempfile::tempdir().unwrap();
    let out = microcal(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for page in ["microcal.1", "microcal-run.1", "microcal-report.1"] {
        let text = fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let run = fs::read_to_string(dir.path().join("microcal-run.1")).unwrap();
    assert!(run.contains("show"), "the runner's page lists its flags");
}

#[test]
fn the_readme_example_plans_nine_jobs() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a TOML example");
    assert!(example.lines().count() <= 14, "a short example");
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("base")).unwrap();
    fs::copy(
        repo().join("experiments/base/real-data.toml"),
        dir.path().join("base/real-data.toml"),
    )
    .unwrap();
    let file = dir.path().join("example.toml");
    fs::write(&file, example).unwrap();
    let jobs = Experiment::load(&file, &[])
        .unwrap_or_else(|e| panic!("{e}"))
        .jobs(|_| Ok::<_, anyhow::Error>("any data".to_string()))
        .unwrap();
    assert_eq!(jobs.len(), 9, "3 families x 3 seeds, as the README says");
}
