//! Train/evaluation partitions: the given split, its mirror, stratified and group k-fold.

use std::collections::BTreeMap;

use super::SplitKind;
use super::{DataError, Dataset, Origin};
use crate::rng::Rng;

/// Sample indices for one job. Anything fitted (standardisation, the model) sees `train` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub train: Vec<usize>,
    /// What the job's headline metrics are computed on (Test, or the held-out fold).
    pub eval: Vec<usize>,
    /// For k-fold splits: the untouched Test part, also scored by every fold's model.
    pub test: Option<Vec<usize>>,
}

impl Partition {
    /// The partition of a job evaluated on validation data (see `Evaluate::Validation`):
    /// Test is dropped; a fixed split's training part is split into rows to fit on and a
    /// stratified hold-out of `fraction` to evaluate on.
    pub fn validation_only(
        self,
        data: &Dataset,
        kind: SplitKind,
        fraction: f64,
        seed: u64,
    ) -> Partition {
        match kind {
            SplitKind::Kfold | SplitKind::GroupKfold => Partition { test: None, ..self },
            SplitKind::Given | SplitKind::Swapped => {
                let (train, eval) = holdout(data, &self.train, fraction, seed);
                Partition {
                    train,
                    eval,
                    test: None,
                }
            }
        }
    }
}

/// Builds the partition of `kind` for `fold` (k-fold kinds only).
pub fn make_split(
    data: &Dataset,
    kind: SplitKind,
    folds: usize,
    split_seed: u64,
    fold: Option<usize>,
) -> Result<Partition, DataError> {
    let train_part = data.indices_of(Origin::Train);
    let test_part = data.indices_of(Origin::Test);
    let partition = match kind {
        SplitKind::Given => Partition {
            train: train_part,
            eval: test_part,
            test: None,
        },
        SplitKind::Swapped => Partition {
            train: test_part,
            eval: train_part,
            test: None,
        },
        SplitKind::Kfold | SplitKind::GroupKfold => {
            let fold =
                fold.ok_or_else(|| DataError::Split("a k-fold split needs a fold index".into()))?;
            let assignment = if kind == SplitKind::Kfold {
                stratified_folds(data, &train_part, folds, split_seed)?
            } else {
                group_folds(data, &train_part, folds, split_seed)?
            };
            let (mut train, mut eval) = (Vec::new(), Vec::new());
            for (&i, &f) in train_part.iter().zip(&assignment) {
                if f == fold {
                    eval.push(i);
                } else {
                    train.push(i);
                }
            }
            Partition {
                train,
                eval,
                test: (!test_part.is_empty()).then_some(test_part),
            }
        }
    };
    for (name, part) in [
        ("training", &partition.train),
        ("evaluation", &partition.eval),
    ] {
        if data.labels(part).iter().all(|&l| l == 0) || data.labels(part).iter().all(|&l| l == 1) {
            return Err(DataError::Split(format!(
                "the {name} part has {} images and not both labels",
                part.len()
            )));
        }
    }
    Ok(partition)
}

/// Fold of each index: per label, a seeded shuffle dealt round-robin, so every fold gets
/// the class balance of the whole (as scikit-learn's `StratifiedKFold(shuffle=True)`).
fn stratified_folds(
    data: &Dataset,
    indices: &[usize],
    folds: usize,
    seed: u64,
) -> Result<Vec<usize>, DataError> {
    let mut assignment = vec![0; indices.len()];
    let mut rng = Rng::derived(seed, "stratified-kfold");
    for label in [0u8, 1] {
        let mut positions: Vec<usize> = (0..indices.len())
            .filter(|&p| data.samples[indices[p]].label == label)
            .collect();
        if positions.len() < folds {
            return Err(DataError::Split(format!(
                "{folds} folds need at least {folds} images of label {label}, found {}",
                positions.len()
            )));
        }
        rng.shuffle(&mut positions);
        for (k, p) in positions.into_iter().enumerate() {
            assignment[p] = k % folds;
        }
    }
    Ok(assignment)
}

/// Fold of each index such that all images of a group share a fold: groups in seeded random
/// order, largest first, each to the fold with fewest images so far (scikit-learn's
/// `GroupKFold` balancing, with a seed).
fn group_folds(
    data: &Dataset,
    indices: &[usize],
    folds: usize,
    seed: u64,
) -> Result<Vec<usize>, DataError> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (p, &i) in indices.iter().enumerate() {
        groups
            .entry(data.samples[i].group.as_str())
            .or_default()
            .push(p);
    }
    if groups.len() < folds {
        return Err(DataError::Split(format!(
            "{folds} folds need at least {folds} groups, found {} (check data.group_pattern)",
            groups.len()
        )));
    }
    let mut order: Vec<Vec<usize>> = groups.into_values().collect();
    Rng::derived(seed, "group-kfold").shuffle(&mut order);
    order.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut sizes = vec![0usize; folds];
    let mut assignment = vec![0; indices.len()];
    for group in order {
        let target = (0..folds).min_by_key(|&f| sizes[f]).expect("folds >= 1");
        sizes[target] += group.len();
        for p in group {
            assignment[p] = target;
        }
    }
    Ok(assignment)
}

/// Stratified hold-out of `fraction` of `indices` (for validation), by seed.
/// Returns (kept for training, held out).
pub fn holdout(
    data: &Dataset,
    indices: &[usize],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    if fraction <= 0.0 {
        return (indices.to_vec(), Vec::new());
    }
    let mut rng = Rng::derived(seed, "validation-holdout");
    let (mut keep, mut held) = (Vec::new(), Vec::new());
    for label in [0u8, 1] {
        let mut members: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| data.samples[i].label == label)
            .collect();
        rng.shuffle(&mut members);
        // At least one of each class is held out and one kept; a class with a single
        // member keeps it for training.
        let n_held = if members.len() < 2 {
            0
        } else {
            ((members.len() as f64 * fraction).round() as usize).clamp(1, members.len() - 1)
        };
        held.extend_from_slice(&members[..n_held]);
        keep.extend_from_slice(&members[n_held..]);
    }
    keep.sort_unstable();
    held.sort_unstable();
    (keep, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Sample;

    fn toy(n_train: usize, groups: usize) -> Dataset {
        let mut samples = Vec::new();
        for i in 0..n_train + 10 {
            samples.push(Sample {
                id: format!("s{i}"),
                label: (i % 2) as u8,
                origin: if i < n_train {
                    Origin::Train
                } else {
                    Origin::Test
                },
                group: format!("g{}", i % groups),
                rows: 1,
                cols: 1,
                pixels: vec![0.0],
                content_hash: i as u64,
            });
        }
        Dataset::new(samples)
    }

    #[test]
    fn kfold_partitions_train_and_keeps_test_aside() {
        let d = toy(50, 7);
        let mut seen = Vec::new();
        for fold in 0..5 {
            let p = make_split(&d, SplitKind::Kfold, 5, 3, Some(fold)).unwrap();
            assert_eq!(p.train.len() + p.eval.len(), 50);
            assert_eq!(p.test.as_ref().unwrap().len(), 10);
            assert!(p.train.iter().all(|i| !p.eval.contains(i)));
            let pos = p.eval.iter().filter(|&&i| d.samples[i].label == 1).count();
            assert_eq!(pos, 5, "stratified: each fold has half positives");
            seen.extend(p.eval);
        }
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn group_kfold_keeps_groups_together() {
        let d = toy(60, 9);
        for fold in 0..3 {
            let p = make_split(&d, SplitKind::GroupKfold, 3, 1, Some(fold)).unwrap();
            for &i in &p.eval {
                assert!(p
                    .train
                    .iter()
                    .all(|&j| d.samples[j].group != d.samples[i].group));
            }
        }
    }

    #[test]
    fn too_many_folds_is_a_clear_error() {
        let d = toy(20, 2);
        let err = make_split(&d, SplitKind::GroupKfold, 5, 0, Some(0)).unwrap_err();
        assert!(err.to_string().contains("at least 5 groups"), "{err}");
    }

    #[test]
    fn given_and_swapped_mirror_each_other() {
        let d = toy(20, 2);
        let g = make_split(&d, SplitKind::Given, 5, 0, None).unwrap();
        let s = make_split(&d, SplitKind::Swapped, 5, 0, None).unwrap();
        assert_eq!((g.train.clone(), g.eval.clone()), (s.eval, s.train));
        assert_eq!(g.eval.len(), 10);
    }

    #[test]
    fn holdout_is_stratified_and_disjoint() {
        let d = toy(40, 2);
        let idx = d.indices_of(Origin::Train);
        let (keep, held) = holdout(&d, &idx, 0.25, 0);
        assert_eq!(held.len(), 10);
        assert_eq!(keep.len(), 30);
        assert_eq!(held.iter().filter(|&&i| d.samples[i].label == 1).count(), 5);
    }
}
