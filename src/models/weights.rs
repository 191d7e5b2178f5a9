//! A trained network's parameters as a safetensors file, in the order the network lists
//! them (safetensors sorts by name, so names carry a zero-padded index).

/// File of a job's trained weights inside its folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Named vectors as a safetensors file (F32, one-dimensional tensors, in the given order).
pub fn encode_weights(weights: &[(String, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<u8>, usize)> = weights
        .iter()
        .enumerate()
        // A zero-padded index keeps the order, since safetensors sorts by name.
        .map(|(i, (name, v))| {
            (
                format!("{i:04}.{name}"),
                v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                v.len(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(name, data, len)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*len], data)
                    .expect("length matches the data");
            (name.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize(views, &None).expect("F32 tensors serialise")
}

/// Reads vectors written by [`encode_weights`], in their original order.
pub fn decode_weights(bytes: &[u8]) -> Result<Vec<(String, Vec<f32>)>, String> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut named: Vec<(String, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named
        .into_iter()
        .map(|(name, v)| {
            (
                name.split_once('.')
                    .map_or(name.clone(), |(_, n)| n.to_string()),
                v,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_in_order() {
        let weights = vec![
            ("layer9.weight".to_string(), vec![1.5, -2.0]),
            ("layer10.bias".to_string(), vec![0.25]),
        ];
        let decoded = decode_weights(&encode_weights(&weights)).unwrap();
        assert_eq!(decoded, weights);
    }
}
