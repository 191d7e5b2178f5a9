//! Results that reproduce anywhere: ids that follow the data's content and not its path, rows
//! and artefacts free of machine paths, the migration of tables made under the old ids, and
//! a fresh clone elsewhere that reproduces every committed table and figure.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use microcal::config::{DataConfig, Experiment};
use microcal::runner::legacy_job_id;

/// An experiment file in `dir/exp/` reading the folder `dir/data` through a relative root.
fn write_experiment(dir: &Path) -> PathBuf {
    let file = dir.join("exp/e.toml");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(
        &file,
        "name = \"portable\"\n[data]\nsource = \"folder\"\nroot = \"../data\"\nimage_size = 16\n\
         [model]\nkind = \"baseline\"\n[train]\nseeds = [0, 1]\n[output]\nresults = \"../out/results.csv\"\n",
    )
    .unwrap();
    file
}

fn plan_ids(file: &Path) -> Vec<String> {
    let out = run_bin(
        env!("CARGO_BIN_EXE_microcal-run"),
        &["--plan", file.to_str().unwrap()],
        file.parent().unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn ids_follow_the_data_content_not_its_path() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("MICROCAL_CACHE_DIR", cache.path());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        write_folder(&dir.join("data"));
        write_experiment(dir);
    }
    let ids = plan_ids(&a.path().join("exp/e.toml"));
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ids,
        plan_ids(&b.path().join("exp/e.toml")),
        "same data elsewhere"
    );

    // A changed image, then a changed label, each give new ids.
    let image = b.path().join("data/Train/0/m0_0.pgm");
    write_pgm(&image, 16, 16, |_, _| 1);
    let edited = plan_ids(&b.path().join("exp/e.toml"));
    assert!(edited.iter().all(|id| !ids.contains(id)), "{edited:?}");
    let relabelled = b.path().join("data/Train/1/m0_0.pgm");
    fs::rename(&image, &relabelled).unwrap();
    let moved = plan_ids(&b.path().join("exp/e.toml"));
    assert!(moved
        .iter()
        .all(|id| !ids.contains(id) && !edited.contains(id)));
}

#[test]
fn rows_and_artefacts_hold_no_machine_paths() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(&dir.path().join("data"));
    let file = write_experiment(dir.path());
    let out = run_bin(
        env!("CARGO_BIN_EXE_microcal-run"),
        &[file.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = dir.path().join("out/results.csv");
    let (header, rows) = read_csv(&table);
    assert_eq!(column(&header, &rows, "data.root"), vec!["../data"; 2]);
    assert!(column(&header, &rows, "data.fingerprint")
        .iter()
        .all(|f| f.starts_with("sha256:")));
    assert_eq!(
        column(&header, &rows, "microcal_version"),
        vec![env!("CARGO_PKG_VERSION"); 2]
    );
    let rev = column(&header, &rows, "git_rev")[0];
    assert!(!rev.is_empty(), "the build's revision is recorded");
    let here = dir.path().to_string_lossy().into_owned();
    let mut files = vec![table.clone()];
    for run in fs::read_dir(dir.path().join("out/runs")).unwrap() {
        for f in fs::read_dir(run.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    for f in &files {
        // Saved models are binary: look for the path in their bytes too.
        let text = String::from_utf8_lossy(&fs::read(f).unwrap()).into_owned();
        assert!(!text.contains(&here), "{} holds {here}", f.display());
    }
    // A job's config.toml runs as an experiment of its own from its folder: same job id.
    let id = column(&header, &rows, "job_id")[0];
    let config = dir.path().join("out/runs").join(id).join("config.toml");
    let rerun = plan_ids(&config);
    assert_eq!(rerun, vec![id.to_string()]);
}

#[test]
fn version_names_the_revision() {
    for out in [microcal_run(&["--version"]), microcal(&["--version"])] {
        let text = stdout(&out);
        assert!(
            text.contains(env!("CARGO_PKG_VERSION")) && text.contains("(git "),
            "{text}"
        );
    }
}

fn identity(data: &DataConfig) -> anyhow::Result<String> {
    Ok(microcal::data::fingerprint(data)?)
}

#[test]
fn a_table_with_legacy_ids_is_migrated_without_touching_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(&dir.path().join("data"));
    let file = write_experiment(dir.path());
    let f = file.to_str().unwrap();
    let out = run_bin(env!("CARGO_BIN_EXE_microcal-run"), &[f], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let table = dir.path().join("out/results.csv");
    let today = fs::read_to_string(&table).unwrap();

    // Turn it into what the old scheme wrote: absolute data root, old ids, no fingerprint.
    let absolute = dir
        .path()
        .join("data")
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let jobs = Experiment::load(&file, &[])
        .unwrap()
        .jobs(identity)
        .unwrap();
    let mut legacy = today.clone();
    for job in &jobs {
        let old = legacy_job_id(job, Some(&absolute));
        legacy = legacy.replace(&job.id, &old);
        let runs = dir.path().join("out/runs");
        fs::rename(runs.join(&job.id), runs.join(&old)).unwrap();
    }
    legacy = legacy.replace(",../data,", &format!(",{absolute},"));
    // Nor did the old scheme end its rows with a check (the last field).
    legacy = legacy
        .lines()
        .map(|line| format!("{}\n", line.rsplit_once(',').unwrap().0))
        .collect();
    assert!(today.lines().next().unwrap().ends_with(",row_check"));
    assert_ne!(legacy, today);
    fs::write(&table, &legacy).unwrap();

    let migrate = |extra: &[&str]| {
        let mut args = vec!["migrate-ids", "--results", table.to_str().unwrap()];
        args.extend_from_slice(extra);
        run_bin(env!("CARGO_BIN_EXE_microcal"), &args, dir.path())
    };
    // Without the experiment that made the rows, nothing matches and nothing is written.
    let other = dir.path().join("exp/other.toml");
    fs::write(
        &other,
        fs::read_to_string(&file)
            .unwrap()
            .replace("seeds = [0, 1]", "seeds = [5]"),
    )
    .unwrap();
    let refused = migrate(&[other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("match no job"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(fs::read_to_string(&table).unwrap(), legacy);

    let done = migrate(&[f]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(stdout(&done).contains("2 rows given new ids (2 artefact folders moved)"));
    assert_eq!(fs::read_to_string(&table).unwrap(), today, "byte for byte");
    for job in &jobs {
        let config = dir
            .path()
            .join("out/runs")
            .join(&job.id)
            .join("config.toml");
        assert!(fs::read_to_string(config)
            .unwrap()
            .contains("root = \"../../../data\""));
    }
    let again = migrate(&[f]);
    assert!(stdout(&again)
        .contains("0 rows given new ids (0 artefact folders moved), 2 already current"));
}

#[test]
fn figures_refuse_a_partial_set_and_name_the_missing_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results.csv");
    let t = table.to_str().unwrap();
    // Values with dots once cut file names short, so two groups wrote one file.
    let file = dir.path().join("dots.toml");
    fs::write(
        &file,
        "name = \"dots\"\n[data]\nsource = \"synthetic\"\nsynthetic_train_per_class = 20\n\
         synthetic_test_per_class = 10\n[model]\nkind = \"wavelet-mlp\"\n[train]\nepochs = 2\n\
         [grid]\n\"model.wavelet.family\" = [\"bior2.4\", \"bior2.6\"]\n",
    )
    .unwrap();
    let run = microcal_run(&[file.to_str().unwrap(), "--results", t]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out = dir.path().join("figures");
    let figs = microcal(&["figures", "--results", t, "--out", out.to_str().unwrap()]);
    assert!(figs.status.success(), "{}", stderr(&figs));
    let listed: Vec<String> = stdout(&figs).lines().map(str::to_string).collect();
    let on_disk = fs::read_dir(&out).unwrap().count();
    assert_eq!(
        listed.len(),
        on_disk,
        "every file written is its own: {listed:?}"
    );
    assert!(
        listed.iter().any(|p| p.contains("bior2.4_roc.png")),
        "{listed:?}"
    );

    let (header, rows) = read_csv(&table);
    let gone = column(&header, &rows, "job_id")[1].to_string();
    fs::remove_dir_all(dir.path().join("runs").join(&gone)).unwrap();
    let fresh = dir.path().join("fresh");
    let refused = microcal(&["figures", "--results", t, "--out", fresh.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains(&gone), "{}", stderr(&refused));
    assert!(!fresh.exists(), "nothing drawn");
}

#[test]
fn unknown_report_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let table = quickstart_table(dir.path(), 1);
    let t = table.to_str().unwrap();
    for args in [
        ["report", "--results", t, "--by", "model.wavelet.famly"],
        [
            "report",
            "--results",
            t,
            "--filter",
            "model.wavelet.famly=db5",
        ],
        ["figures", "--results", t, "--by", "model.wavelet.famly"],
    ] {
        let out = microcal(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("unknown column `model.wavelet.famly`")
                && err.contains("model.wavelet.family"),
            "{err}"
        );
    }
}

/// The real data beside the checkout, or a note that the test cannot run.
fn shared() -> PathBuf {
    let shared = repo().join("../shared");
    assert!(
        shared.join("data/microcal/Train").is_dir(),
        "this test needs the real data at {}",
        shared.display()
    );
    shared.canonicalize().unwrap()
}

#[test]
#[ignore = "needs the real data in ../shared/data/microcal; .ci/run runs it when the data is there"]
fn on_real_data_a_fresh_clone_elsewhere_reproduces_every_committed_result() {
    let shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let place = dir.path().join("somewhere/else");
    fs::create_dir_all(&place).unwrap();
    std::os::unix::fs::symlink(&shared, place.join("shared")).unwrap();
    let clone = place.join("microcal");
    let git = |args: &[&str], cwd: &Path| {
        let out = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out)
    };
    git(
        &[
            "clone",
            "--quiet",
            repo().to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
        dir.path(),
    );

    let files: Vec<String> = fs::read_dir(clone.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            p.strip_prefix(&clone)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["--plan".to_string()];
    args.extend(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let plan = run_bin(env!("CARGO_BIN_EXE_microcal-run"), &args, &clone);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let text = stdout(&plan);
    let total = text.lines().last().unwrap();
    assert!(
        total.contains(" 0 to run,"),
        "jobs to run on a fresh clone:\n{}",
        text.lines()
            .filter(|l| l.contains(" todo "))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let make = Command::new("bash")
        .arg("tools/make_results.sh")
        .env("MICROCAL", env!("CARGO_BIN_EXE_microcal"))
        .current_dir(&clone)
        .output()
        .unwrap();
    assert!(make.status.success(), "{}", stderr(&make));
    let status = git(&["status", "--porcelain"], &clone);
    assert!(
        status.is_empty(),
        "make_results.sh changed the clone:\n{status}"
    );
}

#[test]
fn committed_results_hold_no_absolute_paths() {
    let mut stack = vec![repo().join("results")];
    let mut checked = 0;
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue; // images
        };
        checked += 1;
        for prefix in ["/work/", "/tmp/", "/home/", "/root/", "/Users/"] {
            assert!(
                !text.contains(&format!(",{prefix}")) && !text.contains(&format!("\"{prefix}")),
                "{} holds an absolute path ({prefix})",
                path.display()
            );
        }
    }
    assert!(checked > 10, "only {checked} text files under results/");
}
