//! Report and figures from a results table made by a real (synthetic-data) run.

mod common;

use common::*;
use std::fs;

#[test]
fn report_and_figures_from_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let table = quickstart_table(dir.path(), 3);
    let t = table.to_str().unwrap();

    let md = microcal(&["report", "--results", t]);
    assert!(md.status.success(), "{}", stderr(&md));
    let text = stdout(&md);
    assert!(
        text.starts_with("| model.wavelet.family | runs | failed | accuracy |"),
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        2 + 2,
        "header, rule, one line per family"
    );
    assert!(text.contains(" ± "));
    let tex = stdout(&microcal(&[
        "report",
        "--results",
        t,
        "--format",
        "latex",
        "--filter",
        "model.wavelet.family=haar",
    ]));
    assert!(
        tex.contains("\\toprule")
            && tex.contains("\\bottomrule")
            && tex.matches("\\\\\n").count() == 2,
        "{tex}"
    );
    let csv = stdout(&microcal(&[
        "report",
        "--results",
        t,
        "--format",
        "csv",
        "--by",
        "seed",
    ]));
    assert_eq!(csv.lines().count(), 3, "{csv}");

    let out = dir.path().join("figures");
    let (header, rows) = read_csv(&table);
    let job = column(&header, &rows, "job_id")[0].to_string();
    let figs = microcal(&[
        "figures",
        "--results",
        t,
        "--out",
        out.to_str().unwrap(),
        "--samples",
        &job,
    ]);
    assert!(figs.status.success(), "{}", stderr(&figs));
    let listed: Vec<String> = stdout(&figs).lines().map(str::to_string).collect();
    for kind in [
        "_roc.png",
        "_roc.svg",
        "_confusion.png",
        "_learning.png",
        "roc_groups.png",
        &format!("samples_{job}.png"),
    ] {
        assert!(
            listed.iter().any(|p| p.ends_with(kind)),
            "no {kind} in {listed:?}"
        );
    }
    for path in &listed {
        let bytes = fs::read(path).unwrap();
        assert!(bytes.len() > 2000, "{path} is suspiciously small");
        if path.ends_with(".png") {
            assert_eq!(&bytes[1..4], b"PNG");
        } else {
            assert!(String::from_utf8_lossy(&bytes).contains("<svg"));
        }
    }
}
