//! The HTML page as a file: self-contained, deterministic, with working links and every
//! part the issue names. (Its behaviour in a browser: tests/browser.rs.)

mod common;

use std::path::Path;

use common::*;

fn hrefs(page: &str) -> Vec<&str> {
    page.split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect()
}

#[test]
fn the_page_is_self_contained_and_its_artefact_links_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let page_path = dir.path().join("pages/seed.html");
    std::fs::create_dir_all(page_path.parent().unwrap()).unwrap();
    let out = microcal(&[
        "report",
        "--format",
        "html",
        "--jobs-of",
        "experiments/seed_cnn.toml",
        "--jobs-of",
        "experiments/search_wavelet.toml",
        "--out",
        page_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&page_path).unwrap();
    for remote in ["http://", "https://", "src=", "@import", "url("] {
        let outside: Vec<&str> = page
            .match_indices(remote)
            .map(|(i, _)| &page[i.saturating_sub(40)..(i + 60).min(page.len())])
            .filter(|context| !context.contains("http://www.w3.org/2000/svg"))
            .collect();
        assert!(
            outside.is_empty(),
            "network reference {remote}: {outside:?}"
        );
    }
    for part in [
        "id=\"provenance\"",
        "id=\"groups\"",
        "p vs best",
        "ROC (mean ± 1 s.d.)",
        "Confusion, summed over 5 runs",
        "loss per epoch (mean of 5)",
        "Optimisation history: search-wavelet",
        "Trials of search-wavelet",
        "<script>",
    ] {
        assert!(page.contains(part), "the page lacks {part}");
    }
    let links: Vec<&str> = hrefs(&page)
        .into_iter()
        .filter(|h| !h.starts_with('#'))
        .collect();
    assert!(links.len() >= 5 * 4, "{} links", links.len());
    for link in &links {
        assert!(
            page_path.parent().unwrap().join(link).exists(),
            "{link} does not resolve from {}",
            page_path.display()
        );
    }
    // The same rows give the same bytes.
    let again = microcal(&[
        "report",
        "--format",
        "html",
        "--jobs-of",
        "experiments/seed_cnn.toml",
        "--jobs-of",
        "experiments/search_wavelet.toml",
    ]);
    let from_repo = stdout(&again);
    assert_eq!(
        from_repo.replace("results/runs/", ""),
        page.replace(&links_prefix(&page), ""),
    );
}

/// The folder prefix the page's artefact links share (up to and including `runs/`).
fn links_prefix(page: &str) -> String {
    let link = hrefs(page)
        .into_iter()
        .find(|h| h.ends_with("/config.toml"))
        .unwrap();
    link[..link.find("runs/").unwrap() + "runs/".len()].to_string()
}

#[test]
fn the_committed_index_is_the_page_of_every_row() {
    let out = run_bin(
        env!("CARGO_BIN_EXE_microcal"),
        &["report", "--results", "results.csv", "--format", "html"],
        &repo().join("results"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(repo().join("results/index.html")).unwrap();
    assert!(
        stdout(&out) == committed,
        "results/index.html is stale: run tools/make_results.sh"
    );
    for link in hrefs(&committed)
        .into_iter()
        .filter(|h| !h.starts_with('#'))
    {
        assert!(
            Path::new(&repo().join("results")).join(link).exists(),
            "{link}"
        );
    }
}
