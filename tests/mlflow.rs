//! MLflow against a real `mlflow server` on 127.0.0.1, installed by pip into a virtual
//! environment (target/mlflow-venv, from tools/mlflow-requirements.txt) that this test makes
//! when `.ci/run` has not: export, re-export, live logging during a sweep, a forced rerun,
//! and a server that is down or never answers.

mod common;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// The `mlflow` program of the test's virtual environment, made on first use.
fn mlflow_program() -> PathBuf {
    if let Some(p) = std::env::var_os("MICROCAL_MLFLOW") {
        return PathBuf::from(p);
    }
    let venv = repo().join("target/mlflow-venv");
    let program = venv.join("bin/mlflow");
    if !program.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "-r"])
                .arg(repo().join("tools/mlflow-requirements.txt"))
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot make the MLflow virtual environment in {}",
            venv.display()
        );
    }
    program
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tracking server with its store in `dir`; stopped on drop.
struct Server {
    child: Child,
    uri: String,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Server {
        let child = Command::new(mlflow_program())
            .process_group(0)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mlflow server starts");
        let uri = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{uri}/health")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "mlflow server did not come up"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Server { child, uri }
    }

    fn api(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/api/2.0/mlflow/{path}", self.uri);
        let mut response = match body {
            Some(b) => ureq::post(&url).send_json(b),
            None => ureq::get(&url).call(),
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        response.body_mut().read_json().unwrap()
    }

    /// Every active run of the experiment called `name`: (job_id tag, run).
    fn runs(&self, name: &str) -> Vec<(String, Value)> {
        let id = self.api(
            &format!("experiments/get-by-name?experiment_name={name}"),
            None,
        )["experiment"]["experiment_id"]
            .as_str()
            .unwrap()
            .to_string();
        let found = self.api(
            "runs/search",
            Some(json!({"experiment_ids": [id], "max_results": 1000})),
        );
        found["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|run| {
                let job = tag(&run, "job_id").unwrap_or_default();
                (job, run)
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server's workers are its children: stop the whole process group, so the port
        // is really closed for the "server down" part.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn tag(run: &Value, key: &str) -> Option<String> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
        .map(str::to_string)
}

fn field<'a>(run: &'a Value, kind: &str, key: &str) -> Option<&'a Value> {
    run["data"][kind]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)
        .map(|m| &m["value"])
}

fn quickstart(table: &Path, epochs: usize, mlflow: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_microcal-run"));
    command
        .args(["experiments/quickstart.toml", "--results"])
        .arg(table)
        .args(["--set", &format!("train.epochs={epochs}")])
        .current_dir(repo())
        .env_remove("MLFLOW_TRACKING_URI");
    if let Some(uri) = mlflow {
        command.env("MLFLOW_TRACKING_URI", uri);
    }
    command.output().unwrap()
}

fn export(table: &Path, uri: &str) -> std::process::Output {
    microcal(&[
        "export",
        "mlflow",
        "--tracking-uri",
        uri,
        "--results",
        table.to_str().unwrap(),
    ])
}

#[test]
#[ignore = "needs pip and PyPI: makes a venv with MLflow (tools/mlflow-requirements.txt); .ci/run runs it"]
fn with_mlflow_export_reexport_live_logging_and_a_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port);

    // Export: one run per row, with params, metrics, history steps, tags and artefacts.
    let table = dir.path().join("first.csv");
    let run = quickstart(&table, 2, None);
    assert!(run.status.success(), "{}", stderr(&run));
    let (header, rows) = read_csv(&table);
    let ids = column(&header, &rows, "job_id");
    let out = export(&table, &server.uri);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("4 runs posted, 0 jobs already there, 8 artefact files uploaded"),
        "{}",
        stdout(&out)
    );
    let runs = server.runs("quickstart");
    assert_eq!(runs.len(), 4);
    let mut jobs: Vec<&str> = runs.iter().map(|(j, _)| j.as_str()).collect();
    jobs.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(jobs, expected);
    let (job, run) = &runs[0];
    let row = rows
        .iter()
        .find(|r| column(&header, std::slice::from_ref(r), "job_id")[0] == job)
        .unwrap();
    let cell = |name: &str| column(&header, std::slice::from_ref(row), name)[0].to_string();
    assert_eq!(run["info"]["status"], "FINISHED");
    assert_eq!(
        field(run, "params", "model.wavelet.family").and_then(Value::as_str),
        Some(cell("model.wavelet.family").as_str())
    );
    assert_eq!(
        field(run, "params", "train.epochs").and_then(Value::as_str),
        Some("2")
    );
    let auc = field(run, "metrics", "auc")
        .and_then(Value::as_f64)
        .unwrap();
    assert!((auc - cell("auc").parse::<f64>().unwrap()).abs() < 1e-9);
    assert_eq!(tag(run, "git_rev"), Some(cell("git_rev")));
    assert_eq!(tag(run, "data.fingerprint"), Some(cell("data.fingerprint")));
    assert_eq!(tag(run, "status").as_deref(), Some("ok"));
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let history = server.api(
        &format!("metrics/get-history?run_id={run_id}&metric_key=train_loss"),
        None,
    );
    let steps: Vec<i64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2], "one train_loss per epoch");
    let artefacts = server.api(&format!("artifacts/list?run_id={run_id}"), None);
    let names: Vec<&str> = artefacts["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["config.toml", "predictions.csv"]);

    // Re-export: every job is found by its tag and skipped.
    let out = export(&table, &server.uri);
    assert!(
        stdout(&out).contains("0 runs posted, 4 jobs already there"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.runs("quickstart").len(), 4);

    // Live logging: each job is posted as it finishes; a forced rerun replaces its runs.
    let live = dir.path().join("live.csv");
    let run = quickstart(&live, 1, Some(&server.uri));
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!stderr(&run).contains("MLflow"), "{}", stderr(&run));
    assert_eq!(server.runs("quickstart").len(), 8);
    let out = export(&live, &server.uri);
    assert!(
        stdout(&out).contains("0 runs posted, 4 jobs already there"),
        "{}",
        stdout(&out)
    );
    let mut forced = Command::new(env!("CARGO_BIN_EXE_microcal-run"));
    let rerun = forced
        .args(["experiments/quickstart.toml", "--force", "--results"])
        .arg(&live)
        .args(["--set", "train.epochs=1"])
        .current_dir(repo())
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(
        server.runs("quickstart").len(),
        8,
        "replaced, not duplicated"
    );

    // A server that is down: the sweep succeeds, its rows are in the table, and a warning
    // says how to export them later; exported later, they arrive.
    drop(server);
    let down = dir.path().join("down.csv");
    let run = quickstart(&down, 3, Some(&format!("http://127.0.0.1:{port}")));
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(read_csv(&down).1.len(), 4);
    let warning = stderr(&run);
    assert!(
        warning.contains("did not answer") && warning.contains("microcal export mlflow"),
        "{warning}"
    );
    assert_eq!(
        warning.matches("MLflow logging is off").count(),
        1,
        "one warning: {warning}"
    );

    // A server that accepts connections and never answers: the sweep still ends.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_uri = format!("http://{}", silent.local_addr().unwrap());
    let stalled = dir.path().join("stalled.csv");
    let run = quickstart(&stalled, 4, Some(&silent_uri));
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(read_csv(&stalled).1.len(), 4);
    assert!(
        stderr(&run).contains("MLflow logging is off"),
        "{}",
        stderr(&run)
    );
    drop(silent);

    let server = Server::start(dir.path(), port);
    let out = export(&down, &server.uri);
    assert!(
        stdout(&out).contains("4 runs posted, 0 jobs already there"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.runs("quickstart").len(), 12);
}

#[test]
fn export_names_a_missing_server_and_a_bad_uri() {
    let dir = tempfile::tempdir().unwrap();
    let table = quickstart_table(dir.path(), 1);
    let port = free_port();
    let out = export(&table, &format!("http://127.0.0.1:{port}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did not answer") && stderr(&out).contains("mlflow server"),
        "{}",
        stderr(&out)
    );
    let out = export(&table, "127.0.0.1:5000");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("http://"), "{}", stderr(&out));
}
