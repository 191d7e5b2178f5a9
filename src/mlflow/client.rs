//! The calls microcal makes to MLflow's REST API (`/api/2.0/mlflow/...`, and the artefact
//! proxy `/api/2.0/mlflow-artifacts/...` of a server started with `--serve-artifacts`, the
//! default). Every call has a time limit, so a slow server costs seconds, never a sweep.

use std::time::Duration;

use serde_json::{json, Value};

use super::MlflowError;

/// One MLflow tracking server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// A run as the server lists it.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub status: String,
    pub artifact_uri: String,
    pub job_id: Option<String>,
}

impl RunInfo {
    /// A run from the `info` object MLflow answers with.
    fn from_info(info: &Value, job_id: Option<String>) -> Self {
        let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
        Self {
            run_id: text("run_id"),
            status: text("status"),
            artifact_uri: text("artifact_uri"),
            job_id,
        }
    }
}

/// Entities one `log-batch` call may carry (MLflow's limits: 1000 metrics, 100 params,
/// 100 tags, 1000 in all).
pub const BATCH_METRICS: usize = 1000;
pub const BATCH_PARAMS: usize = 100;

impl Client {
    /// A client of the server at `uri` (http or https); each call gives up after `timeout`.
    pub fn new(uri: &str, timeout: Duration) -> Result<Self, MlflowError> {
        let base = uri.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(MlflowError::Uri(uri.to_string()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Ok(Self { base, agent })
    }

    pub fn uri(&self) -> &str {
        &self.base
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            (_, Some(body)) => self.agent.post(&url).send_json(body),
            (_, None) => self.agent.post(&url).send_empty(),
        };
        let mut response = response.map_err(|e| MlflowError::Unreachable {
            uri: self.base.clone(),
            cause: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| MlflowError::Unreachable {
                uri: self.base.clone(),
                cause: e.to_string(),
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(MlflowError::Refused {
                call: format!("{method} {path}"),
                status,
                code: value["error_code"].as_str().unwrap_or("").to_string(),
                message: value["message"]
                    .as_str()
                    .map_or_else(|| text.chars().take(300).collect(), str::to_string),
            });
        }
        Ok(value)
    }

    /// The id of the experiment called `name`, created when absent.
    pub fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let path = format!(
            "experiments/get-by-name?experiment_name={}",
            url_encode(name)
        );
        match self.call("GET", &path, None) {
            Ok(v) => Ok(v["experiment"]["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()),
            Err(MlflowError::Refused { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                match self.call("POST", "experiments/create", Some(&json!({ "name": name }))) {
                    Ok(v) => Ok(v["experiment_id"].as_str().unwrap_or_default().to_string()),
                    // Another process created it meanwhile.
                    Err(MlflowError::Refused { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {
                        let v = self.call("GET", &path, None)?;
                        Ok(v["experiment"]["experiment_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The experiment's runs that carry a `job_id` tag (all of them when `job_id` is None).
    pub fn runs(
        &self,
        experiment_id: &str,
        job_id: Option<&str>,
    ) -> Result<Vec<RunInfo>, MlflowError> {
        let filter = match job_id {
            Some(id) => format!("tags.job_id = '{id}'"),
            None => "tags.job_id != ''".to_string(),
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "experiment_ids": [experiment_id],
                "filter": filter,
                "max_results": 1000,
                "run_view_type": "ACTIVE_ONLY",
            });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let v = self.call("POST", "runs/search", Some(&body))?;
            for run in v["runs"].as_array().into_iter().flatten() {
                let info = &run["info"];
                let job_id = run["data"]["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["key"] == "job_id")
                    .and_then(|t| t["value"].as_str())
                    .map(str::to_string);
                out.push(RunInfo::from_info(info, job_id));
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// A new run, started at `start_ms`, with `tags`.
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        start_ms: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo, MlflowError> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let v = self.call(
            "POST",
            "runs/create",
            Some(&json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "start_time": start_ms,
                "tags": tags,
            })),
        )?;
        let info = &v["run"]["info"];
        Ok(RunInfo::from_info(info, None))
    }

    /// Params and metrics `(key, value, step)`, in as many batches as MLflow's limits need.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[(String, f64, i64)],
        timestamp_ms: i64,
    ) -> Result<(), MlflowError> {
        for chunk in params.chunks(BATCH_PARAMS) {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            self.call(
                "POST",
                "runs/log-batch",
                Some(&json!({"run_id": run_id, "params": params})),
            )?;
        }
        for chunk in metrics.chunks(BATCH_METRICS) {
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|(k, v, step)| json!({"key": k, "value": v, "timestamp": timestamp_ms, "step": step}))
                .collect();
            self.call(
                "POST",
                "runs/log-batch",
                Some(&json!({"run_id": run_id, "metrics": metrics})),
            )?;
        }
        Ok(())
    }

    /// Marks the run FINISHED or FAILED at `end_ms`.
    pub fn end_run(&self, run_id: &str, status: &str, end_ms: i64) -> Result<(), MlflowError> {
        self.call(
            "POST",
            "runs/update",
            Some(&json!({"run_id": run_id, "status": status, "end_time": end_ms})),
        )
        .map(|_| ())
    }

    /// Deletes a run (one an interrupted export left unfinished).
    pub fn delete_run(&self, run_id: &str) -> Result<(), MlflowError> {
        self.call("POST", "runs/delete", Some(&json!({"run_id": run_id})))
            .map(|_| ())
    }

    /// Uploads `bytes` as the run's artefact `name`, where the server proxies artefacts
    /// (`mlflow-artifacts:` URIs); false where it does not (the run stores them elsewhere,
    /// a place microcal does not write to).
    pub fn upload(&self, run: &RunInfo, name: &str, bytes: &[u8]) -> Result<bool, MlflowError> {
        let Some(rest) = run.artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Ok(false);
        };
        let rest = rest.trim_start_matches('/');
        // `mlflow-artifacts://host:port/path` names the server; only the path matters here.
        let rest = if run.artifact_uri.starts_with("mlflow-artifacts://") {
            rest.split_once('/').map_or("", |(_, p)| p)
        } else {
            rest
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{name}",
            self.base,
            rest.trim_end_matches('/')
        );
        let mut response =
            self.agent
                .put(&url)
                .send(bytes)
                .map_err(|e| MlflowError::Unreachable {
                    uri: self.base.clone(),
                    cause: e.to_string(),
                })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(MlflowError::Refused {
                call: format!("PUT artifacts/{name}"),
                status,
                code: String::new(),
                message: response
                    .body_mut()
                    .read_to_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
        Ok(true)
    }
}

/// `text` percent-encoded for a query string.
fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_and_uris_checked() {
        assert_eq!(url_encode("seed-cnn a/b"), "seed-cnn%20a%2Fb");
        assert!(matches!(
            Client::new("localhost:5000", Duration::from_secs(1)),
            Err(MlflowError::Uri(_))
        ));
        assert_eq!(
            Client::new("http://127.0.0.1:5000/", Duration::from_secs(1))
                .unwrap()
                .uri(),
            "http://127.0.0.1:5000"
        );
    }
}
