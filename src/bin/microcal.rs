//! `microcal`: tools around the runner (wavelet inspection, benchmarks).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use microcal::cli;
use microcal::cli::bench_args::Bench;
use microcal::config::Experiment;
use microcal::data;
use microcal::results::against_best::report_against_best;
use microcal::results::report::{build_report, Filter, ReportFormat};
use microcal::results::{figures, html, search_report, ResultsTable};
use microcal::runner::{experiment_jobs, migrate_ids, predict_paths, sample_sheet, DataCache};
use microcal::wavelet::{wavedec2, Array2, Wavelet};

#[derive(Parser)]
#[command(
    version = microcal::LONG_VERSION,
    about = "microcal tools: reports, figures, predictions, data checks, benchmarks and more"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Which rows of a results table `report` and `figures` use, and how they group them.
#[derive(clap::Args)]
struct Selection {
    /// Results table.
    #[arg(long, default_value = "results/results.csv")]
    results: PathBuf,
    /// Group by these columns (comma-separated); default: every configuration column
    /// except seed and fold, showing those that differ.
    #[arg(long, value_delimiter = ',')]
    by: Option<Vec<String>>,
    /// Keep rows where KEY=VALUE (or KEY!=VALUE); repeatable, all must hold.
    #[arg(long = "filter", value_name = "EXPR")]
    filters: Vec<String>,
    /// Keep the rows of the jobs these experiment files declare, by job id (a job that
    /// several files declare has one row, under the experiment that ran it first).
    #[arg(long = "jobs-of", value_name = "FILE")]
    jobs_of: Vec<PathBuf>,
}

impl Selection {
    fn filters(&self) -> Result<Vec<Filter>> {
        let mut filters = self
            .filters
            .iter()
            .map(|f| Filter::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.jobs_of.is_empty() {
            let mut cache = DataCache::default();
            let mut ids = Vec::new();
            for file in &self.jobs_of {
                let experiment = Experiment::load(file, &[])?;
                if experiment.search.is_some() {
                    // A search's jobs follow from its scores: take its rows by name.
                    let (_, rows) = ResultsTable::new(&self.results).read()?;
                    let name = experiment.configs()?.remove(0).0.name;
                    ids.extend(
                        rows.iter()
                            .filter(|r| r.get("experiment") == Some(name.as_str()))
                            .filter_map(|r| r.get("job_id").map(str::to_string)),
                    );
                    continue;
                }
                ids.extend(
                    experiment_jobs(&experiment, &mut cache)?
                        .into_iter()
                        .map(|j| j.id),
                );
            }
            filters.push(Filter::any_of("job_id", ids));
        }
        Ok(filters)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print the 2-D multilevel DWT of an image, as pywt.wavedec2(img, FAMILY, level=LEVEL).
    Wavelet {
        /// Wavelet name as PyWavelets spells it (haar, db5, sym5, coif3, bior2.4, dmey, ...).
        #[arg(long, default_value = "db5")]
        family: String,
        #[arg(long, default_value_t = 4)]
        level: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// A PGM, PNG or TIFF image (grayscale, 8 or 16 bit).
        image: PathBuf,
    },
    /// Summarise the results table: groups of runs with mean ± s.d., sorted by ROC AUC.
    Report {
        #[command(flatten)]
        select: Selection,
        #[arg(long, value_enum, default_value_t = ReportFormatArg::Markdown)]
        format: ReportFormatArg,
        /// Instead: the N best trials of a search by validation `--metric`, with their values.
        #[arg(long, value_name = "N")]
        best: Option<usize>,
        /// The metric `--best` and `--search-history` rank trials by (smaller is better for loss).
        #[arg(long, default_value = "auc")]
        metric: String,
        /// Add each group's p against the best group scored on the same images (DeLong's
        /// test; the HTML page always has it).
        #[arg(long)]
        against_best: bool,
        /// Write the report to this file instead of standard output (an HTML page's links
        /// to job artefacts then resolve from the file's folder).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Figures (PNG and SVG) per group of the results table: ROC curves with the mean and a
    /// ±1 s.d. band, summed confusion matrix, learning curves; optionally a sample sheet.
    Figures {
        #[command(flatten)]
        select: Selection,
        /// Output folder.
        #[arg(long, default_value = "results/figures")]
        out: PathBuf,
        /// Also draw a sample sheet of this job's test images (correct and wrong).
        #[arg(long, value_name = "JOB_ID")]
        samples: Option<String>,
        /// Instead: a search's optimisation history (validation `--metric` per trial and the
        /// running best), as `search_history.png` and `.svg`.
        #[arg(long)]
        search_history: bool,
        #[arg(long, default_value = "auc")]
        metric: String,
    },
    /// Send the results table elsewhere (MLflow).
    Export {
        #[command(subcommand)]
        to: ExportCommand,
    },
    /// Inspect a data folder.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
    /// How far the files' sweeps have got: done, running (claimed: host and pid or Slurm
    /// task, since when), failed (with the error), to do, and an ETA. Read-only; the last
    /// line is machine-readable (done=… running=… failed=… todo=…).
    Status {
        /// Results table instead of the one each file names.
        #[arg(long)]
        results: Option<PathBuf>,
        /// The `--set` overrides the sweep was started with (they decide its job ids).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Experiment files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Is A better than B on the same images? DeLong's test for the two ROC AUCs and
    /// McNemar's exact test for the two accuracies (last line machine-readable).
    Compare {
        /// Results table.
        #[arg(long, default_value = "results/results.csv")]
        results: PathBuf,
        /// A job id, or filters KEY=VALUE[,KEY=VALUE...] selecting a group of jobs, pooled as
        /// each image's mean score over the group (e.g. experiment=seed-cnn).
        a: String,
        /// The other side, likewise.
        b: String,
    },
    /// Score images with a trained job of any kind (network, classifier, baseline): one line
    /// per image (path, score, label).
    Predict {
        /// The job's folder (results/runs/<job id>), holding config.toml and model.safetensors.
        #[arg(long = "model", value_name = "RUN_DIR")]
        model: PathBuf,
        /// Images, or folders searched recursively for *.pgm, *.png, *.tif, *.tiff.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Give the rows of a table made before portable job ids (microcal 0.1.0 up to git
    /// 53d40c6) today's ids, data fingerprint and relative data root; metrics untouched.
    MigrateIds {
        /// Results table.
        #[arg(long, default_value = "results/results.csv")]
        results: PathBuf,
        /// Every experiment file whose rows are in the table.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Append to a table the rows of other tables whose jobs it lacks, moving each job's
    /// artefacts along (the Slurm launcher's merge job runs this).
    MergeTables {
        /// The table to add to.
        #[arg(long)]
        into: PathBuf,
        /// Tables to take rows from; missing ones are skipped.
        parts: Vec<PathBuf>,
    },
    /// Shell completions for microcal and microcal-run, e.g.
    /// `source <(microcal completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: microcal::cli::completions::Shell,
    },
    /// Man pages of microcal, its subcommands and microcal-run, written into a folder.
    Man {
        /// Folder for the pages (created if missing).
        #[arg(long, default_value = "target/man")]
        out: PathBuf,
    },
    /// Print the reference of every experiment-file key (docs/experiment-file.md is this
    /// output), generated from the config types.
    Reference,
    /// Throughput benchmarks; the last line printed is machine-readable.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Post one MLflow run per row (params: configuration; metrics: results, with the
    /// per-epoch history as steps; tags: job_id, git_rev, data.fingerprint, status;
    /// config.toml and predictions.csv as artefacts). Jobs already there are skipped.
    Mlflow {
        /// The tracking server, e.g. http://127.0.0.1:5000 (default: $MLFLOW_TRACKING_URI).
        #[arg(long, value_name = "URI")]
        tracking_uri: Option<String>,
        #[command(flatten)]
        select: Selection,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Counts, image formats, exact duplicates and mammograms shared by Train and Test.
    Check {
        /// Folder holding Train/{0,1} and Test/{0,1}.
        root: PathBuf,
        /// Regular expression whose first group is the mammogram id of a file name.
        #[arg(long, default_value = "^([^_]+)_")]
        group_pattern: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormatArg {
    Markdown,
    Latex,
    Csv,
    /// One self-contained page (tables, figures, searches, provenance): see docs/reports.md.
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    cli::end_quietly_on_closed_pipe();
    cli::init_logging();
    cli::exit_with(run(Args::parse()).map(|()| ExitCode::SUCCESS))
}

fn run(args: Args) -> Result<()> {
    microcal::engine::simd::select()?;
    match args.command {
        Command::Wavelet {
            family,
            level,
            format,
            image,
        } => print_wavelet(&family, level, format, &image),
        Command::Predict { model, inputs } => predict(&model, &inputs),
        Command::Status {
            results,
            set,
            files,
        } => {
            let overrides = set
                .iter()
                .map(|s| microcal::config::parse_override(s))
                .collect::<Result<Vec<_>, _>>()?;
            let experiments = files
                .iter()
                .map(|f| Experiment::load(f, &overrides))
                .collect::<Result<Vec<_>, _>>()?;
            let states = microcal::runner::status(
                &experiments,
                results.as_deref(),
                &mut DataCache::default(),
            )?;
            print!("{}", microcal::runner::render_status(&states));
            Ok(())
        }
        Command::Export {
            to:
                ExportCommand::Mlflow {
                    tracking_uri,
                    select,
                },
        } => export_mlflow(tracking_uri, &select),
        Command::Compare { results, a, b } => {
            let comparison = microcal::results::compare::compare(&results, &a, &b)?;
            print!("{}", comparison.to_text());
            Ok(())
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            microcal::cli::completions::write_completions(shell, Args::command(), &mut out);
            Ok(())
        }
        Command::Man { out } => {
            for page in microcal::cli::completions::write_man_pages(Args::command(), &out)
                .with_context(|| format!("cannot write man pages into {}", out.display()))?
            {
                println!("{}", page.display());
            }
            Ok(())
        }
        Command::Reference => {
            print!("{}", microcal::reference::experiment_file_reference());
            Ok(())
        }
        Command::MergeTables { into, parts } => {
            let m = microcal::results::merge_tables(&into, &parts)?;
            println!(
                "{}: {} rows added, {} failed rows replaced, {} already there",
                into.display(),
                m.added,
                m.replaced,
                m.already
            );
            Ok(())
        }
        Command::MigrateIds { results, files } => {
            let experiments = files
                .iter()
                .map(|f| Experiment::load(f, &[]))
                .collect::<Result<Vec<_>, _>>()?;
            let m = migrate_ids(&results, &experiments)?;
            println!(
                "{}: {} rows given new ids ({} artefact folders moved), {} already current, \
                 {} dropped as repeats of the same job",
                results.display(),
                m.rewritten,
                m.moved_runs,
                m.current,
                m.merged
            );
            Ok(())
        }
        Command::Figures {
            select,
            out,
            samples,
            search_history,
            metric,
        } => {
            let filters = select.filters()?;
            let Selection { results, by, .. } = select;
            if search_history {
                let (_, rows) = ResultsTable::new(&results).read()?;
                let trials = search_report::trials(&rows, &filters, &metric);
                anyhow::ensure!(
                    !trials.is_empty(),
                    "no search trials among the selected rows of {}",
                    results.display()
                );
                let title = format!("search: validation {metric} per trial");
                for path in search_report::history_figure(
                    &out.join("search_history"),
                    &title,
                    &trials,
                    &metric,
                    metric != "loss",
                )? {
                    println!("{}", path.display());
                }
                return Ok(());
            }
            let mut written = figures::make_figures(&results, by.as_deref(), &filters, &out)?;
            if let Some(job) = samples {
                written.extend(sample_sheet(&results, &job, 24, &out)?);
            }
            for path in &written {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Report {
            select,
            format,
            best,
            metric,
            against_best,
            out,
        } => {
            let filters = select.filters()?;
            let Selection { results, by, .. } = select;
            let (header, rows) = ResultsTable::new(&results).read()?;
            let text = if let Some(n) = best {
                let trials = search_report::trials(&rows, &filters, &metric);
                anyhow::ensure!(
                    !trials.is_empty(),
                    "no search trials among the selected rows of {}",
                    results.display()
                );
                search_report::best_table(&trials, n, &metric, metric != "loss")
            } else {
                if rows.is_empty() {
                    anyhow::bail!(
                        "{} has no rows (run some experiments first)",
                        results.display()
                    );
                }
                let format = match format {
                    ReportFormatArg::Markdown => ReportFormat::Markdown,
                    ReportFormatArg::Latex => ReportFormat::Latex,
                    ReportFormatArg::Csv => ReportFormat::Csv,
                    ReportFormatArg::Html => {
                        let page_dir = out.as_deref().map(|o| o.parent().unwrap_or(o));
                        let options = html::HtmlOptions {
                            by: by.as_deref(),
                            filters: &filters,
                            page_dir,
                            metric: &metric,
                        };
                        return write_out(out.as_deref(), &html::html_report(&results, &options)?);
                    }
                };
                let report = if against_best {
                    report_against_best(&results, &header, &rows, by.as_deref(), &filters)?
                } else {
                    build_report(&header, &rows, by.as_deref(), &filters)?
                };
                report.render(format)
            };
            write_out(out.as_deref(), &text)
        }
        Command::Data {
            what:
                DataCommand::Check {
                    root,
                    group_pattern,
                    format,
                },
        } => {
            let report = data::check_folder(&root, &group_pattern)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Format::Text => print!("{}", report.to_text()),
            }
            Ok(())
        }
        Command::Bench { what } => Ok(what.run()?),
    }
}

fn print_wavelet(family: &str, level: usize, format: Format, path: &std::path::Path) -> Result<()> {
    let wavelet = Wavelet::from_name(family)?;
    let (rows, cols, pixels) = data::read_image(path)?;
    let image = Array2::new(rows, cols, pixels.into_iter().map(f64::from).collect());
    let dec = wavedec2(&image, &wavelet, level)
        .with_context(|| format!("decomposing {}", path.display()))?;
    match format {
        Format::Json => {
            let coeffs: Vec<serde_json::Value> = dec
                .named_arrays()
                .into_iter()
                .map(|(name, a)| serde_json::json!({"name": name, "shape": [a.rows, a.cols], "data": a.data}))
                .collect();
            let out = serde_json::json!({"family": family, "level": level, "coeffs": coeffs});
            println!("{out}");
        }
        Format::Text => {
            println!(
                "# {} {family} level {level} (mode symmetric)",
                path.display()
            );
            for (name, a) in dec.named_arrays() {
                println!("{name} shape {}x{}", a.rows, a.cols);
                for row in a.data.chunks(a.cols) {
                    let line: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
                    println!("  {}", line.join(" "));
                }
            }
        }
    }
    Ok(())
}

/// A benchmark duration: a number of seconds above 0 and at most an hour.
fn export_mlflow(tracking_uri: Option<String>, select: &Selection) -> Result<()> {
    let uri = tracking_uri
        .or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok())
        .context("name the MLflow server with --tracking-uri URI (or MLFLOW_TRACKING_URI)")?;
    let filters = select.filters()?;
    let (_, rows) = ResultsTable::new(&select.results).read()?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    anyhow::ensure!(
        !rows.is_empty(),
        "no rows of {} to export",
        select.results.display()
    );
    let client = microcal::mlflow::Client::new(&uri, std::time::Duration::from_secs(30))?;
    let bar = cli::progress_bar(rows.len() as u64, "exporting to MLflow");
    let summary =
        microcal::mlflow::export_rows(&client, &select.results, &rows, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    println!(
        "{uri}: {} runs posted, {} jobs already there, {} artefact files uploaded{}",
        summary.exported,
        summary.already,
        summary.artefacts,
        if summary.no_uploads > 0 {
            format!(
                " ({} runs store artefacts where microcal cannot upload; start the server with --serve-artifacts)",
                summary.no_uploads
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `text` into `out`, whole or not at all, or onto standard output.
fn write_out(out: Option<&std::path::Path>, text: &str) -> Result<()> {
    match out {
        Some(path) => microcal::results::write_whole(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn predict(run_dir: &std::path::Path, inputs: &[PathBuf]) -> Result<()> {
    for (file, score) in predict_paths(run_dir, inputs)? {
        println!("{}\t{score:.6}\t{}", file.display(), u8::from(score >= 0.5));
    }
    Ok(())
}
