//! `microcal bench layers` measures every layer kind against its convolution and ends with a
//! machine-readable line.

mod common;

use common::*;

#[test]
fn bench_layers_times_every_kind_against_a_convolution() {
    let out = microcal(&["bench", "layers", "--repeats", "1", "--steps", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let kinds = [
        "batchnorm",
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "sigmoid",
        "tanh",
        "dropout",
        "maxpool",
        "maxpool 3/2",
        "avgpool",
        "globalavgpool",
        "residual (around a conv)",
    ];
    for kind in kinds {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{kind}: ")))
            .unwrap_or_else(|| panic!("no row for {kind}:\n{text}"));
        let ratios: Vec<f64> = row[kind.len() + 2..]
            .split(" (")
            .next()
            .unwrap()
            .split(", ")
            .map(|r| r.parse().unwrap())
            .collect();
        assert_eq!(ratios.len(), 2, "{row}");
        assert!(ratios.iter().all(|r| r.is_finite() && *r >= 0.0), "{row}");
    }
    let last = text.lines().last().unwrap();
    let worst: Vec<f64> = last
        .split(' ')
        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    assert!(last.starts_with("worst_train_ratio="), "{last}");
    assert_eq!(worst.len(), 2);
    assert!(worst[0] > 0.0 && worst[1] > 0.0, "{last}");
}
