//! The Slurm launcher on a real single-node Slurm (tools/slurm-local.sh): a 4-task array
//! gives the rows a local run gives, and after a task is killed mid-job, submitting again
//! completes the table with nothing lost or duplicated.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use microcal::runner::Shard;

/// One cluster at a time in this process: the tests would otherwise share ports and cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A single-node cluster in a folder, stopped (every daemon, by its pid) when dropped.
struct Cluster {
    dir: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Cluster {
    fn start(dir: &Path) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let started = STARTED.fetch_add(1, Ordering::SeqCst);
        let port = 7000 + (std::process::id() % 200) * 4 + (started % 2) * 2;
        let out = Command::new("bash")
            .arg(repo().join("tools/slurm-local.sh"))
            .args(["start", dir.to_str().unwrap(), &port.to_string()])
            .output()
            .expect("bash runs");
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            _turn: turn,
        };
        assert!(
            out.status.success(),
            "cluster did not start: {}",
            stderr(&out)
        );
        cluster
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("tools/slurm-local.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

/// 12 jobs of about two seconds each (3 families × 2 levels × 2 seeds).
fn sweep(dir: &Path) -> PathBuf {
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        "name = \"slurm-sweep\"\n[data]\nsource = \"synthetic\"\nsynthetic_train_per_class = 100\n\
         synthetic_test_per_class = 20\n[model]\nkind = \"wavelet-mlp\"\n[model.mlp]\nhidden = [256, 64]\n\
         [train]\nepochs = 2500\nseeds = [0, 1]\n[grid]\n\"model.wavelet.family\" = [\"haar\", \"db2\", \"db4\"]\n\
         \"model.wavelet.level\" = [2, 3]\n",
    )
    .unwrap();
    file
}

/// Asserts two tables' numbers are equal, showing the first difference only.
fn assert_same(
    got: &BTreeMap<String, Vec<(String, String)>>,
    want: &BTreeMap<String, Vec<(String, String)>>,
    what: &str,
) {
    let got_ids: Vec<_> = got.keys().collect();
    let want_ids: Vec<_> = want.keys().collect();
    assert_eq!(got_ids, want_ids, "{what}: job ids");
    for (id, cells) in got {
        let diff: Vec<_> = cells.iter().filter(|c| !want[id].contains(c)).collect();
        assert!(
            diff.is_empty() && cells.len() == want[id].len(),
            "{what}: job {id}: {diff:?}"
        );
    }
}

fn launch(cluster: &Cluster, file: &Path, table: &Path, wait: bool) -> Output {
    let mut c = cluster.command(env!("CARGO_BIN_EXE_microcal-run"));
    c.args([
        "--launcher",
        "slurm",
        "--tasks",
        "4",
        "--results",
        table.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    if wait {
        c.arg("--wait");
    }
    c.current_dir(repo()).output().unwrap()
}

/// The number after `word ` in `text`.
fn id_after(text: &str, word: &str) -> String {
    text.split(word)
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `{word}` in {text}"))
        .to_string()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Slurm (slurmctld, slurmd, munge) and root; .ci/run installs them and runs it"]
fn a_slurm_array_gives_the_local_rows_and_resumes_after_a_killed_task() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let file = sweep(dir.path());

    let local = dir.path().join("local/results.csv");
    let out = microcal_run(&[
        file.to_str().unwrap(),
        "--jobs",
        "1",
        "--results",
        local.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = numbers(&local);
    assert_eq!(expected.len(), 12);

    // One array, waited for: the same rows as the local run.
    let table = dir.path().join("slurm/results.csv");
    let out = launch(&cluster, &file, &table, true);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("12 jobs: 12 ran (0 of them failed), 0 missing"),
        "{}",
        stdout(&out)
    );
    // The summary after --wait is `microcal status`'s, from the merged table.
    assert!(
        stdout(&out).contains("done=12 running=0 failed=0 todo=0"),
        "{}",
        stdout(&out)
    );
    assert_same(&numbers(&table), &expected, "one array");
    for id in expected.keys() {
        assert!(table
            .with_file_name("runs")
            .join(id)
            .join("predictions.csv")
            .exists());
    }

    // Kill one task in the middle of its second job.
    let table = dir.path().join("killed/results.csv");
    let out = launch(&cluster, &file, &table, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (array, merge) = (id_after(&text, "array job "), id_after(&text, "merge job "));
    let folder = PathBuf::from(text.trim().rsplit(" in ").next().unwrap());
    let per_task: Vec<usize> = (0..4)
        .map(|i| {
            let shard = Shard { index: i, count: 4 };
            expected.keys().filter(|id| shard.contains(id)).count()
        })
        .collect();
    let most = *per_task.iter().max().unwrap();
    assert!(most >= 2, "{per_task:?}");
    let victim = per_task.iter().position(|&n| n == most).unwrap();
    let task_table = folder.join(format!("task-{victim}/results.csv"));
    let mut seen = Vec::new();
    wait_until(
        &format!("task {victim}'s first row in {}", task_table.display()),
        || {
            let rows = if task_table.exists() {
                read_csv(&task_table).1.len()
            } else {
                0
            };
            if seen.last() != Some(&rows) {
                seen.push(rows);
                eprintln!("task {victim}: {rows} rows");
            }
            rows >= 1
        },
    );
    assert!(
        *seen.last().unwrap() < most,
        "task {victim} ended before it could be killed"
    );
    let killed = cluster
        .command("scancel")
        .args(["--signal=KILL", "--full", &format!("{array}_{victim}")])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until("the array and the merge to end", || {
        let out = cluster
            .command("squeue")
            .args(["-h", "-j", &format!("{array},{merge}")])
            .output()
            .unwrap();
        !out.status.success() || stdout(&out).trim().is_empty()
    });
    let partial = numbers(&table);
    assert!(partial.len() < 12, "the killed task's last job is missing");
    let expected_part: BTreeMap<_, _> = expected
        .iter()
        .filter(|(id, _)| partial.contains_key(*id))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_same(&partial, &expected_part, "after the kill");

    // Submitting again runs only what is missing and completes the table.
    let out = launch(&cluster, &file, &table, true);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_same(&numbers(&table), &expected, "resubmitted");
    drop(cluster);
    let leftover = Command::new("pgrep")
        .args(["-f", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        stdout(&leftover).trim().is_empty(),
        "daemons left running: {}",
        stdout(&leftover)
    );
}

#[test]
#[ignore = "needs Slurm (slurmctld, slurmd, munge) and root; .ci/run installs them and runs it"]
fn a_search_runs_across_slurm_tasks_and_gives_the_local_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let file = dir.path().join("search.toml");
    std::fs::write(
        &file,
        "name = \"slurm-search\"\n[data]\nsource = \"synthetic\"\nimage_size = 32\n\
         synthetic_train_per_class = 150\nsynthetic_test_per_class = 8\nsplit = \"kfold\"\nfolds = 3\n\
         [model]\nkind = \"wavelet-mlp\"\n[model.wavelet]\nfamily = \"haar\"\nlevel = 2\n\
         [train]\nepochs = 9\n[search]\ntrials = 4\nbatch = 2\n[search.space]\n\
         \"train.lr\" = { log_uniform = [1e-3, 1e-1] }\n[search.halving]\nmin_epochs = 3\n",
    )
    .unwrap();
    let local = dir.path().join("local/results.csv");
    let out = microcal_run(&[file.to_str().unwrap(), "--results", local.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = numbers(&local);

    let table = dir.path().join("slurm/results.csv");
    let mut c = cluster.command(env!("CARGO_BIN_EXE_microcal-run"));
    c.args(["--launcher", "slurm", "--tasks", "1", "--wait", "--results"])
        .args([table.to_str().unwrap(), file.to_str().unwrap()]);
    let out = c.current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_same(&numbers(&table), &expected, "search on Slurm");

    // Two tasks share each round's trials (claims in the launch folder, each reading the
    // other's table): the merged rows are the local ones, each job once.
    let table = dir.path().join("slurm2/results.csv");
    let mut c = cluster.command(env!("CARGO_BIN_EXE_microcal-run"));
    c.args(["--launcher", "slurm", "--tasks", "2", "--wait", "--results"])
        .args([table.to_str().unwrap(), file.to_str().unwrap()]);
    let out = c.current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_same(&numbers(&table), &expected, "search on two Slurm tasks");
    assert_eq!(
        read_csv(&table).1.len(),
        read_csv(&local).1.len(),
        "no job twice"
    );
    // Which task ran what is up to Slurm's scheduling; the launch folder's logs tell.
    let launches = std::fs::read_dir(dir.path().join("slurm2/slurm")).unwrap();
    for launch in launches.flatten() {
        for task in 0..2 {
            let log = std::fs::read_to_string(launch.path().join(format!("task-{task}.log")))
                .unwrap_or_default();
            eprintln!("task {task}: {}", log.lines().last().unwrap_or("(no log)"));
        }
    }
}

#[test]
#[ignore = "needs Slurm (slurmctld, slurmd, munge) and root; .ci/run installs them and runs it"]
fn a_slurm_stop_ends_its_own_processes_by_pid_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let log = dir.path().join("sleep-%j.out");
    let submit = cluster
        .command("sbatch")
        .args(["--output", log.to_str().unwrap(), "--wrap", "sleep 300"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(submit.status.success(), "{}", stderr(&submit));
    // Wait for the job's processes, then note them and their slurmstepd.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job_pids: Vec<u32> = loop {
        let list = cluster
            .command("scontrol")
            .arg("listpids")
            .output()
            .unwrap();
        let pids: Vec<u32> = stdout(&list)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if !pids.is_empty() {
            break pids;
        }
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::sleep(Duration::from_millis(200));
    };
    let parents = Command::new("ps")
        .args(["-o", "ppid=", "-p"])
        .arg(job_pids[0].to_string())
        .output()
        .unwrap();
    let stepd: u32 = stdout(&parents).trim().parse().unwrap();
    // An unrelated process whose command line matches the pattern the script once killed by.
    let mut decoy = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a 'slurmstepd {}' sleep 120",
            cluster.dir.display()
        ))
        .spawn()
        .unwrap();
    let stop = Command::new("bash")
        .arg(repo().join("tools/slurm-local.sh"))
        .args(["stop", cluster.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", stderr(&stop));
    let alive = |pid: u32| microcal::host::process_alive(pid) == Some(true);
    assert!(
        alive(decoy.id()),
        "the stop killed a process by its command line"
    );
    for pid in job_pids.iter().chain([&stepd]) {
        assert!(
            !alive(*pid),
            "process {pid} of the cluster outlived the stop"
        );
    }
    decoy.kill().unwrap();
    decoy.wait().unwrap();
}

#[test]
#[ignore = "needs Slurm (slurmctld, slurmd, munge) and root; .ci/run installs them and runs it"]
fn rerun_failed_through_slurm_replaces_only_the_failed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("experiments/quickstart.toml");
    let table = dir.path().join("results.csv");
    let local = microcal_run(&[
        file.to_str().unwrap(),
        "--results",
        table.to_str().unwrap(),
        "--set",
        "train.epochs=2",
    ]);
    assert!(local.status.success(), "{}", stderr(&local));
    let want = numbers(&table);
    let ids: Vec<String> = want.keys().cloned().collect();
    let t = microcal::results::ResultsTable::new(&table);
    let (_, rows) = t.read().unwrap();
    for row in rows.iter().filter(|r| r.get("job_id") == Some(&ids[2])) {
        let mut failed = row.clone();
        failed.push("status", "failed");
        t.upsert(&failed).unwrap();
    }
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let mut c = cluster.command(env!("CARGO_BIN_EXE_microcal-run"));
    c.args([
        "--launcher",
        "slurm",
        "--tasks",
        "2",
        "--wait",
        "--rerun-failed",
        "--results",
        table.to_str().unwrap(),
        "--set",
        "train.epochs=2",
        file.to_str().unwrap(),
    ]);
    let out = c.current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_same(&numbers(&table), &want, "after --rerun-failed on Slurm");
}
