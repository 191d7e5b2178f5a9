//! `microcal bench cnn --experiment FILE --with-reference` times a file's network and the
//! reference network in turns and ends with the file's training speed as a share of the
//! reference's.

mod common;

use common::*;

/// The value of `key=` in the machine-readable last line.
fn value(line: &str, key: &str) -> f64 {
    let field = line
        .split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    field.parse().unwrap_or_else(|_| panic!("{key}={field}"))
}

#[test]
fn a_file_is_timed_beside_the_reference_network() {
    let out = microcal(&[
        "bench",
        "cnn",
        "--repeats",
        "2",
        "--experiment",
        "tools/bench/reference_batchnorm.toml",
        "--with-reference",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("reference-batchnorm"), "{text}");
    assert!(text.contains("reference CNN: "), "{text}");
    assert!(text.contains("timed in turns"), "{text}");
    let rounds = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("training share of the reference network's images/s, round by round: ")
        })
        .unwrap_or_else(|| panic!("no shares:\n{text}"));
    let shares: Vec<f64> = rounds.split(' ').map(|s| s.parse().unwrap()).collect();
    assert_eq!(shares.len(), 2, "{rounds}");
    let last = text.lines().last().unwrap();
    let (file, reference) = (
        value(last, "train_images_per_s"),
        value(last, "reference_train_images_per_s"),
    );
    assert!(file > 0.0 && reference > 0.0, "{last}");
    assert!(value(last, "reference_infer_images_per_s") > 0.0, "{last}");
    // With two rounds, the share is the mean of the rounds' shares (their median), which
    // lies between them.
    let share = value(last, "train_share_of_reference");
    let (low, high) = (shares[0].min(shares[1]), shares[0].max(shares[1]));
    assert!(
        share >= low - 0.006 && share <= high + 0.006,
        "{share} vs {rounds}"
    );
}

#[test]
fn the_reference_alone_cannot_be_timed_beside_itself() {
    let out = microcal(&["bench", "cnn", "--repeats", "1", "--with-reference"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("--experiment"), "{}", stderr(&out));
}
