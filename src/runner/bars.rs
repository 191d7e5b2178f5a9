//! Progress bars of a running experiment: one for the jobs (with ETA), and one line per
//! worker for the epochs of the job it runs.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::JobStatus;
use crate::config::Job;
use crate::results::Row;

pub(super) struct Bars {
    multi: MultiProgress,
    jobs: ProgressBar,
    /// One line per worker: the epochs of the job it runs.
    pub(super) epochs: Vec<ProgressBar>,
}

impl Bars {
    pub(super) fn new(jobs: usize, workers: usize, visible: bool, label: &str) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style =
            |template: &str| ProgressStyle::with_template(template).expect("valid template");
        let jobs_bar = multi.add(ProgressBar::new(jobs as u64));
        jobs_bar.set_style(style(
            "{prefix:.bold} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} jobs (eta {eta}) {msg}",
        ));
        jobs_bar.set_prefix(label.to_string());
        let epochs = (0..workers.max(1))
            .map(|_| {
                let bar = multi.add(ProgressBar::new(1));
                bar.set_style(style(
                    "  {prefix} {bar:30.green/white} epoch {pos}/{len} {msg}",
                ));
                bar
            })
            .collect();
        Self {
            multi,
            jobs: jobs_bar,
            epochs,
        }
    }

    pub(super) fn start_job(&self, worker: usize, job: &Job) {
        let params: Vec<String> = job.grid.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let fold = job.fold.map(|f| format!(" fold={f}")).unwrap_or_default();
        self.epochs[worker].set_prefix(format!(
            "{} seed={}{fold} {}",
            job.id,
            job.seed,
            params.join(" ")
        ));
    }

    pub(super) fn finish_job(&self, job: &Job, status: JobStatus, row: &Row) {
        let auc = row.get("auc").unwrap_or("-");
        let accuracy = row.get("accuracy").unwrap_or("-");
        self.jobs.set_message(format!("last auc {auc}"));
        self.jobs.inc(1);
        tracing::info!(job = %job.id, status = status.as_str(), auc, accuracy, "job finished");
        if status != JobStatus::Ok {
            let error = row.get("error").unwrap_or("");
            let _ = self
                .multi
                .println(format!("job {} {}: {error}", job.id, status.as_str()));
        }
    }

    /// A job another process holds or finished: counted, not run here.
    pub(super) fn skip_job(&self) {
        self.jobs.inc(1);
    }

    pub(super) fn finish(&self) {
        for bar in &self.epochs {
            bar.finish_and_clear();
        }
        self.jobs.finish();
    }
}
