//! Each group's paired test against the best group scored on the same images: DeLong's p
//! for the difference of their ROC AUCs, each side pooled as each image's mean score over
//! its jobs (see `compare`). The best group of a set of groups that scored the same images
//! is the one with the highest mean AUC over its jobs (the order the reports sort by).
//! Groups that share their images with no other group get no p.

use std::collections::BTreeMap;
use std::path::Path;

use super::compare::{compare_sides, data_identity, pooled, Side};
pub use super::report::{format_p, AgainstBest};
use super::report::{summarised_groups, Filter, Report};
use super::{ResultsError, Row};

/// For each group (its rows and its mean AUC), its standing against the best group scored
/// on the same labelled images, or None (no predictions, mixed data, or no other group on
/// those images).
pub fn against_best(table: &Path, groups: &[(Vec<&Row>, f64)]) -> Vec<Option<AgainstBest>> {
    let sides: Vec<Option<(String, Side)>> = groups
        .iter()
        .map(|(rows, _)| {
            let ok: Vec<&Row> = rows
                .iter()
                .copied()
                .filter(|r| r.get("status") == Some("ok"))
                .collect();
            let identity = data_identity(ok.first()?);
            if ok.iter().any(|r| data_identity(r) != identity) {
                return None;
            }
            let side = pooled("group", "group", &ok, table).ok()?;
            let images: Vec<String> = side
                .scores
                .iter()
                .map(|(path, (label, _))| format!("{label}:{path}"))
                .collect();
            Some((format!("{identity}\n{}", images.join("\n")), side))
        })
        .collect();
    let mut sets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, side) in sides.iter().enumerate() {
        if let Some((key, _)) = side {
            sets.entry(key.as_str()).or_default().push(i);
        }
    }
    let mut out = vec![None; groups.len()];
    for members in sets.values().filter(|m| m.len() > 1) {
        let best = *members
            .iter()
            .max_by(|&&a, &&b| groups[a].1.total_cmp(&groups[b].1).then(b.cmp(&a)))
            .expect("a set has members");
        let best_side = &sides[best].as_ref().expect("member has a side").1;
        for &i in members {
            out[i] = if i == best {
                Some(AgainstBest::Best)
            } else {
                let side = sides[i].as_ref().expect("member has a side").1.clone();
                compare_sides(side, best_side.clone())
                    .ok()
                    .map(|c| AgainstBest::P {
                        p: c.delong.p,
                        delta: c.delong.delta,
                    })
            };
        }
    }
    out
}

/// `report`'s groups of the table at `table`, each with its p against the best group on its
/// images (`microcal report --against-best`).
pub fn report_against_best(
    table: &Path,
    header: &[String],
    rows: &[Row],
    by: Option<&[String]>,
    filters: &[Filter],
) -> Result<Report, ResultsError> {
    let (keys, groups) = summarised_groups(header, rows, by, filters)?;
    let scored: Vec<(Vec<&Row>, f64)> = groups
        .iter()
        .map(|(g, members)| (members.clone(), g.mean_auc()))
        .collect();
    let against_best = against_best(table, &scored);
    Ok(Report {
        keys,
        groups: groups.into_iter().map(|(g, _)| g).collect(),
        against_best,
    })
}
