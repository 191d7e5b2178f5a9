//! Job ids that mean "these numbers": a hash of everything that can change a job's result and
//! of nothing else.
//!
//! In: the resolved configuration's keys that apply to the job (see [`key_applies`]) and
//! differ from their defaults, the data's identity (a content fingerprint, not its path), the
//! seed and the fold. Out: labels (`name`, `description`), the data root as written, output
//! paths, the spelling of numbers (`-0.0` is `0.0`, `1e-3` is `0.001`), and keys left at their
//! defaults, so that adding a field with a default keeps every existing id.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::job::dotted_config as dotted;
use super::schema::ExperimentConfig;
use super::validate::resolve;
use crate::models::key_applies;

/// Keys that name or locate a job without changing its numbers.
const LABELS: &[&str] = &["name", "description", "data.root"];

/// Keys that choose what the defaults are: always part of the id.
const CHOOSERS: &[&str] = &["data.source", "model.kind", "model.classifier"];

/// Bumped when the rule below changes meaning; part of every id.
const SCHEME: u32 = 2;

/// First 16 hex digits of SHA-256 over the job's identity (see the module doc).
pub(crate) fn job_id(
    config: &ExperimentConfig,
    data_identity: &str,
    seed: u64,
    fold: Option<usize>,
) -> String {
    let identity = json!({
        "scheme": SCHEME,
        "config": identity_keys(config),
        "data": data_identity,
        "seed": seed,
        "fold": fold,
    });
    let digest = Sha256::digest(identity.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The dotted keys that enter the id, with canonical values.
fn identity_keys(config: &ExperimentConfig) -> BTreeMap<String, Value> {
    let (kind, source, split) = (config.model.kind, config.data.source, config.data.split);
    // Any learner fits on fewer rows when a hold-out is evaluated on or chooses the threshold.
    let holdout = config.data.evaluate == crate::data::Evaluate::Validation
        || config.train.threshold
            == crate::train::Threshold::Rule(crate::train::ThresholdRule::Youden);
    select(dotted(config), &dotted(&defaults_for(config)), |key| {
        key_applies(kind, source, split, key) || (holdout && key == "train.validation_fraction")
    })
}

/// Keeps the keys that apply, are not labels and differ from their default; a key the
/// defaults have and the config lacks is recorded as null.
fn select(
    mut values: BTreeMap<String, Value>,
    defaults: &BTreeMap<String, Value>,
    applies: impl Fn(&str) -> bool,
) -> BTreeMap<String, Value> {
    let counts = |key: &str| !LABELS.contains(&key) && key != "train.seeds" && applies(key);
    for key in defaults.keys() {
        if !values.contains_key(key) && counts(key) {
            values.insert(key.clone(), Value::Null);
        }
    }
    values.retain(|key, value| {
        CHOOSERS.contains(&key.as_str()) || (counts(key) && defaults.get(key) != Some(value))
    });
    values
}

/// The configuration a file gets when it names only the data source, the model kind and its
/// classifier: every other key at its default.
fn defaults_for(config: &ExperimentConfig) -> ExperimentConfig {
    let mut minimal = json!({
        "name": "",
        "data": { "source": config.data.source },
        "model": { "kind": config.model.kind },
    });
    if let Some(classifier) = config.model.classifier {
        minimal["model"]["classifier"] = json!(classifier);
    }
    let parsed: ExperimentConfig =
        serde_json::from_value(minimal).expect("a source and a kind make a complete config");
    resolve(parsed, std::path::Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Experiment;

    fn ids(text: &str, data: &str) -> Vec<String> {
        let exp = Experiment::from_str(text, std::path::Path::new("e.toml"), &[]).unwrap();
        exp.jobs(|_| Ok::<_, crate::config::ConfigError>(data.to_string()))
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect()
    }

    const BASE: &str = r#"
name = "a"
[data]
source = "synthetic"
[model]
kind = "wavelet-mlp"
[train]
epochs = 5
weight_decay = 0.0
seeds = [0, 1]
"#;

    #[test]
    fn labels_spelling_and_defaults_leave_the_id_alone() {
        let base = ids(BASE, "d");
        assert_eq!(base.len(), 2);
        assert_ne!(base[0], base[1], "seeds differ");
        let relabelled = BASE.replace("name = \"a\"", "name = \"b\"\ndescription = \"new\"");
        assert_eq!(ids(&relabelled, "d"), base, "name and description");
        assert_eq!(ids(&BASE.replace("0.0", "-0.0"), "d"), base, "-0.0 vs 0.0");
        let spelled = BASE.replace("epochs = 5", "epochs = 5\nlr = 1e-3\nbatch_size = 32");
        assert_eq!(ids(&spelled, "d"), base, "defaults written out");
        let output = format!("{BASE}[output]\nresults = \"elsewhere.csv\"\n");
        assert_eq!(ids(&output, "d"), base, "output path");
    }

    #[test]
    fn what_changes_numbers_changes_the_id() {
        let base = ids(BASE, "d");
        assert_ne!(ids(BASE, "other data"), base, "data identity");
        assert_ne!(ids(&BASE.replace("epochs = 5", "epochs = 6"), "d"), base);
        let family = format!("{BASE}[model.wavelet]\nfamily = \"haar\"\n");
        assert_ne!(ids(&family, "d"), base);
    }

    #[test]
    fn settings_a_model_does_not_read_leave_the_id_alone() {
        let forest = r#"
name = "f"
[data]
source = "synthetic"
[model]
kind = "wavelet-classical"
classifier = "random-forest"
"#;
        let base = ids(forest, "d");
        let svm = ids(&forest.replace("random-forest", "svm"), "d");
        assert_ne!(svm, base, "the classifier is part of the id");
        let with_train = format!("{forest}[train]\nepochs = 7\nlr = 0.1\n");
        assert_eq!(ids(&with_train, "d"), base);
        let with_tree_count = forest.replace(
            "classifier = \"random-forest\"",
            "classifier = \"random-forest\"\nparams = { n_trees = 100 }",
        );
        assert_eq!(ids(&with_tree_count, "d"), base, "a default parameter");
    }

    #[test]
    fn a_new_defaulted_field_keeps_ids() {
        let exp = Experiment::from_str(BASE, std::path::Path::new("e.toml"), &[]).unwrap();
        let (config, _) = exp.configs().unwrap().remove(0);
        let (values, defaults) = (dotted(&config), dotted(&defaults_for(&config)));
        let before = select(values.clone(), &defaults, |_| true);
        assert!(before.contains_key("train.epochs") && !before.contains_key("train.lr"));
        // A field added later: present in every config at its default.
        let (mut values2, mut defaults2) = (values, defaults);
        for map in [&mut values2, &mut defaults2] {
            map.insert("train.new_option".into(), json!(0.5));
        }
        assert_eq!(select(values2.clone(), &defaults2, |_| true), before);
        // Set to another value, it enters the id.
        values2.insert("train.new_option".into(), json!(0.25));
        assert_ne!(select(values2, &defaults2, |_| true), before);
    }
}
