//! The HTML report in a real browser: headless Chromium from Debian's packages, driven by
//! chromedriver over the W3C WebDriver protocol (JSON over HTTP, spoken here with ureq, the
//! HTTP client microcal already has for MLflow, rather than an async WebDriver crate and
//! its runtime). `.ci/run` installs chromium and chromium-driver and runs these tests.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

/// A chromedriver process and one browser session in it; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian's chromium-driver; .ci/run installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = ureq::get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
        };
        // The flags the workplace's probe uses: headless, no sandbox as root, and no
        // background connections (this machine's network is closed).
        let session = browser.post(
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--window-size=1400,1000"]
                },
                "goog:loggingPrefs": {"browser": "ALL"}
            }}}),
        );
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut response = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            (_, body) => agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status();
        let value: Value = response.body_mut().read_json().expect("JSON answer");
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.request("POST", path, Some(body))
    }

    fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
    }

    fn element(&self, css: &str) -> String {
        let found = self.post("/element", json!({"using": "css selector", "value": css}));
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
        self.post(&format!("/element/{id}/value"), json!({"text": text}));
    }

    /// The browser's console entries at level SEVERE (script errors among them).
    fn severe_log(&self) -> Vec<String> {
        self.post("/se/log", json!({"type": "browser"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect()
    }

    fn screenshot(&self, path: &Path) {
        let png = self.request("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The groups' values of the page's first numeric column `heading` from the visible rows,
/// in their order on the page.
fn column_values(browser: &Browser, heading: &str) -> Vec<f64> {
    let script = format!(
        "var th = Array.prototype.slice.call(document.querySelectorAll('#groups th.sort'))\
           .filter(function (h) {{ return h.textContent === '{heading}'; }})[0];\
         return Array.prototype.slice.call(document.querySelectorAll('#groups tbody tr'))\
           .filter(function (r) {{ return !r.hidden; }})\
           .map(function (r) {{ return r.cells[th.cellIndex].dataset.v; }});"
    );
    browser
        .script(&script)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect()
}

fn visible_rows(browser: &Browser) -> Vec<String> {
    browser
        .script(
            "return Array.prototype.slice.call(document.querySelectorAll('#groups tbody tr'))\
               .filter(function (r) { return !r.hidden; })\
               .map(function (r) { return r.textContent; });",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Writes the page of the committed wavelet-classifier rows (seven groups) into `dir`.
fn wavelet_page(dir: &Path) -> PathBuf {
    let page = dir.join("report.html");
    let out = microcal(&[
        "report",
        "--format",
        "html",
        "--jobs-of",
        "experiments/seed_wavelet_ml.toml",
        "--by",
        "model.kind,model.classifier",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    page
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver; .ci/run installs them and runs it"]
fn in_chromium_the_report_renders_sorts_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let page = wavelet_page(dir.path());
    let groups = stdout(&microcal(&[
        "report",
        "--format",
        "csv",
        "--jobs-of",
        "experiments/seed_wavelet_ml.toml",
        "--by",
        "model.kind,model.classifier",
    ]))
    .lines()
    .count()
        - 1;
    assert_eq!(groups, 7, "the seven classifiers of seed_wavelet_ml");

    let browser = Browser::start();
    browser.post("/url", json!({"url": format!("file://{}", page.display())}));
    let started = Instant::now();
    while browser.script("return document.documentElement.dataset.ready || ''") != "yes" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the page's script never finished: {:?}",
            browser.severe_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(browser.severe_log(), Vec::<String>::new(), "script errors");

    // One row per group, best ROC AUC first.
    let aucs = column_values(&browser, "ROC AUC");
    assert_eq!(aucs.len(), groups);
    assert!(aucs.windows(2).all(|w| w[0] >= w[1]), "{aucs:?}");
    let charts = browser.script("return document.querySelectorAll('details.group svg').length");
    assert!(charts.as_u64().unwrap() >= 2 * groups as u64, "{charts}");

    // A click on a header orders the rows by it, a second click reverses them.
    browser.click("#groups th.sort[title='sort by ROC AUC']");
    let ascending = column_values(&browser, "ROC AUC");
    assert!(
        ascending.windows(2).all(|w| w[0] <= w[1]) && ascending != aucs,
        "{ascending:?}"
    );
    browser.click("#groups th.sort[title='sort by model.classifier']");
    let names: Vec<String> = visible_rows(&browser);
    let classifier_order: Vec<&str> = ["decision-tree", "knn", "logistic", "naive-bayes"]
        .into_iter()
        .filter(|c| names.iter().any(|n| n.contains(c)))
        .collect();
    let positions: Vec<usize> = classifier_order
        .iter()
        .map(|c| names.iter().position(|n| n.contains(c)).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "sorted by name: {names:?}"
    );

    // Typing a filter narrows the rows; a column's own box filters on that column.
    browser.type_into("#filter", "svm");
    let rows = visible_rows(&browser);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("svm"));
    browser.type_into("#filter", "");
    assert_eq!(visible_rows(&browser).len(), groups);
    browser.type_into("#groups tr.filters input[placeholder='model.kind']", "mlp");
    let rows = visible_rows(&browser);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("wavelet-mlp"));
    assert_eq!(
        browser.script("return document.getElementById('shown').textContent"),
        "1"
    );
    assert_eq!(browser.severe_log(), Vec::<String>::new(), "script errors");
}

/// The committed page of every result, as the README shows it; the screenshot is written
/// to `target/screenshots/report.png` (and over `docs/images/report.png` when
/// MICROCAL_UPDATE_SCREENSHOT is set).
#[test]
#[ignore = "needs Debian's chromium and chromium-driver; .ci/run installs them and runs it"]
fn in_chromium_the_committed_index_renders_without_errors() {
    let index = repo().join("results/index.html");
    let browser = Browser::start();
    browser.post(
        "/url",
        json!({"url": format!("file://{}", index.display())}),
    );
    let started = Instant::now();
    while browser.script("return document.documentElement.dataset.ready || ''") != "yes" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the page's script never finished: {:?}",
            browser.severe_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(browser.severe_log(), Vec::<String>::new(), "script errors");
    let rows = visible_rows(&browser).len();
    let groups = stdout(&microcal(&["report", "--format", "csv"]))
        .lines()
        .count()
        - 1;
    assert_eq!(rows, groups, "one row per group of the whole table");
    let shot = repo().join("target/screenshots/report.png");
    browser.screenshot(&shot);
    if std::env::var_os("MICROCAL_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&shot, repo().join("docs/images/report.png")).unwrap();
    }
}
