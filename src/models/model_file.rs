//! A fitted model's learned state as one safetensors file: network weights as F32 tensors,
//! and any other state (a classifier, the standardiser) as JSON in the file's metadata, with
//! its long number lists moved into F32 or F64 tensors so that a k-NN's training rows or an
//! SVM's support vectors take 4 or 8 bytes a number, not a line of text.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{Number, Value};
use thiserror::Error;

/// Number lists at least this long go into tensors.
const MIN_TENSOR: usize = 64;
/// Metadata key of the JSON state.
const STATE_KEY: &str = "microcal.state";

#[derive(Debug, Error)]
pub enum ModelFileError {
    #[error("not a safetensors file: {0}")]
    Format(String),
    #[error(
        "it holds no microcal state (written by an older microcal?); rerun the job with --force"
    )]
    NoState,
    #[error("its state does not parse: {0}")]
    State(String),
    #[error("tensor `{0}` is missing or has an unexpected type")]
    Tensor(String),
}

/// The learned state: JSON plus named F32 vectors (network weights, in order).
pub struct ModelFile {
    pub state: Value,
    pub weights: Vec<(String, Vec<f32>)>,
}

enum Numbers {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Replaces long number lists in `value` by `"@tensor:<name>"`, collecting them.
fn pack(value: &mut Value, path: &str, out: &mut Vec<(String, Numbers)>) {
    match value {
        Value::Array(items) if items.len() >= MIN_TENSOR && items.iter().all(Value::is_number) => {
            let numbers: Vec<f64> = items.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect();
            let narrow = numbers.iter().all(|&v| (v as f32) as f64 == v);
            let name = format!("state{path}");
            *value = Value::String(format!("@tensor:{name}"));
            out.push((
                name,
                if narrow {
                    Numbers::F32(numbers.iter().map(|&v| v as f32).collect())
                } else {
                    Numbers::F64(numbers)
                },
            ));
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                pack(item, &format!("{path}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                pack(item, &format!("{path}/{key}"), out);
            }
        }
        _ => {}
    }
}

/// Puts the tensors named in `value` back as number lists (whole numbers as integers, so
/// that integer fields deserialise).
fn unpack(value: &mut Value, tensors: &SafeTensors) -> Result<(), ModelFileError> {
    match value {
        Value::String(s) if s.starts_with("@tensor:") => {
            let name = &s["@tensor:".len()..];
            let view = tensors
                .tensor(name)
                .map_err(|_| ModelFileError::Tensor(name.to_string()))?;
            let numbers: Vec<f64> = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                    .collect(),
                Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
                _ => return Err(ModelFileError::Tensor(name.to_string())),
            };
            *value = Value::Array(numbers.into_iter().map(number).collect());
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| unpack(v, tensors))?,
        Value::Object(map) => map.values_mut().try_for_each(|v| unpack(v, tensors))?,
        _ => {}
    }
    Ok(())
}

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::Number(Number::from(v as i64))
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

impl ModelFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut state = self.state.clone();
        let mut packed = Vec::new();
        pack(&mut state, "", &mut packed);
        let mut buffers: Vec<(String, Dtype, Vec<u8>, usize)> = self
            .weights
            .iter()
            .enumerate()
            // A zero-padded index keeps the order, since safetensors sorts by name.
            .map(|(i, (name, v))| {
                let bytes = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                (format!("{i:04}.{name}"), Dtype::F32, bytes, v.len())
            })
            .collect();
        for (name, numbers) in packed {
            let (dtype, bytes, len) = match numbers {
                Numbers::F32(v) => (
                    Dtype::F32,
                    v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                    v.len(),
                ),
                Numbers::F64(v) => (
                    Dtype::F64,
                    v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                    v.len(),
                ),
            };
            buffers.push((name, dtype, bytes, len));
        }
        // safetensors 0.3 writes a malformed header for a file without tensors: always
        // hold one (the format version).
        buffers.push((
            "state:format".to_string(),
            Dtype::F32,
            1.0f32.to_le_bytes().to_vec(),
            1,
        ));
        let views: Vec<(String, TensorView)> = buffers
            .iter()
            .map(|(name, dtype, data, len)| {
                let view =
                    TensorView::new(*dtype, vec![*len], data).expect("length matches the data");
                (name.clone(), view)
            })
            .collect();
        let metadata = HashMap::from([(STATE_KEY.to_string(), state.to_string())]);
        safetensors::tensor::serialize(views, &Some(metadata)).expect("tensors serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ModelFileError> {
        let (_, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| ModelFileError::Format(e.to_string()))?;
        let text = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(STATE_KEY))
            .ok_or(ModelFileError::NoState)?;
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| ModelFileError::Format(e.to_string()))?;
        let mut state: Value =
            serde_json::from_str(text).map_err(|e| ModelFileError::State(e.to_string()))?;
        unpack(&mut state, &tensors)?;
        let mut weights: Vec<(String, Vec<f32>)> = tensors
            .tensors()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("state"))
            .map(|(name, view)| {
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (name, values)
            })
            .collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        let weights = weights
            .into_iter()
            .map(|(name, v)| {
                (
                    name.split_once('.')
                        .map_or(name.clone(), |(_, n)| n.to_string()),
                    v,
                )
            })
            .collect();
        Ok(Self { state, weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_weights_round_trip() {
        let long_f32: Vec<f64> = (0..100).map(|i| i as f64 * 0.5).collect();
        let long_f64: Vec<f64> = (0..100).map(|i| 0.1 * i as f64).collect();
        let ints: Vec<i64> = (0..100).collect();
        let state = serde_json::json!({
            "a": long_f32, "b": [long_f64, [1.5, 2.0]], "c": ints, "d": "text",
        });
        let file = ModelFile {
            state: state.clone(),
            weights: vec![
                ("layer9.w".into(), vec![1.0, -2.0]),
                ("layer10.b".into(), vec![0.25]),
            ],
        };
        let bytes = file.encode();
        let back = ModelFile::decode(&bytes).unwrap();
        assert_eq!(back.weights, file.weights);
        let a: Vec<f64> = serde_json::from_value(back.state["a"].clone()).unwrap();
        let b: (Vec<f64>, Vec<f64>) = serde_json::from_value(back.state["b"].clone()).unwrap();
        let c: Vec<u32> = serde_json::from_value(back.state["c"].clone()).unwrap();
        assert_eq!(a, long_f32);
        assert_eq!(b.0, long_f64, "f64 values kept exactly");
        assert_eq!(c.len(), 100, "whole numbers come back as integers");
        assert_eq!(back.state["d"], "text");
        let plain =
            safetensors::tensor::serialize(Vec::<(String, TensorView)>::new(), &None).unwrap();
        assert!(matches!(
            ModelFile::decode(&plain),
            Err(ModelFileError::NoState)
        ));
    }
}
