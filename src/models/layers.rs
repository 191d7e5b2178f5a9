//! The CNN's layer list as written in the experiment file, parsed with errors that name the
//! layer, and checked for shape before anything trains.

use thiserror::Error;
use toml::Value;

pub use crate::engine::Layer;

/// The reference network: 4 conv3×3 layers 32-64-128-128 with ReLU and 2×2 max-pool,
/// dropouts .25/.25/.5, dense 256-128-1 (568,449 parameters on 60×60×1 inputs).
pub const REFERENCE_LAYERS: &str = r#"[
  { conv = 32 }, "relu", "maxpool",
  { conv = 64 }, "relu", "maxpool", { dropout = 0.25 },
  { conv = 128 }, "relu", "maxpool", { dropout = 0.25 },
  { conv = 128 }, "relu", "maxpool",
  "flatten", { dropout = 0.5 },
  { dense = 256 }, "relu", { dense = 128 }, "relu", { dense = 1 },
]"#;

const VALID: &str = "\"relu\", \"maxpool\", \"batchnorm\", \"flatten\", { conv = N } (optionally kernel = K), { dropout = P }, { dense = N }";

/// A layer that does not parse, or does not fit the shape of its input.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("layers[{index}] ({layer}): {message}")]
pub struct LayerError {
    pub index: usize,
    /// The layer as written (or as parsed, for shape errors).
    pub layer: String,
    pub message: String,
}

/// Parses the file's `layers` list.
pub fn parse_layers(values: &[Value]) -> Result<Vec<Layer>, LayerError> {
    values
        .iter()
        .enumerate()
        .map(|(index, v)| {
            parse_layer(v).map_err(|e| LayerError {
                index,
                layer: v.to_string(),
                message: format!("{e}; valid layers are {VALID}"),
            })
        })
        .collect()
}

/// The reference layer list as TOML values.
pub fn reference_layer_values() -> Vec<Value> {
    let table: toml::Table =
        toml::from_str(&format!("layers = {REFERENCE_LAYERS}")).expect("reference parses");
    match table.get("layers") {
        Some(Value::Array(a)) => a.clone(),
        _ => unreachable!("reference layers are an array"),
    }
}

fn parse_layer(v: &Value) -> Result<Layer, String> {
    match v {
        Value::String(name) => match name.as_str() {
            "relu" => Ok(Layer::Relu),
            "maxpool" => Ok(Layer::Maxpool),
            "batchnorm" => Ok(Layer::Batchnorm),
            "flatten" => Ok(Layer::Flatten),
            other => Err(format!("unknown layer `{other}`")),
        },
        Value::Table(t) => {
            let int = |key: &str| -> Result<Option<usize>, String> {
                match t.get(key) {
                    None => Ok(None),
                    Some(Value::Integer(n)) if *n >= 1 => Ok(Some(*n as usize)),
                    Some(other) => Err(format!("`{key}` must be a positive integer, got {other}")),
                }
            };
            let allow = |keys: &[&str]| -> Result<(), String> {
                match t.keys().find(|k| !keys.contains(&k.as_str())) {
                    Some(k) => Err(format!("unknown key `{k}`")),
                    None => Ok(()),
                }
            };
            if let Some(filters) = int("conv")? {
                allow(&["conv", "kernel"])?;
                let kernel = int("kernel")?.unwrap_or(3);
                if kernel % 2 == 0 {
                    return Err(format!(
                        "kernel must be odd for 'same' padding, got {kernel}"
                    ));
                }
                Ok(Layer::Conv { filters, kernel })
            } else if let Some(units) = int("dense")? {
                allow(&["dense"])?;
                Ok(Layer::Dense { units })
            } else if let Some(p) = t.get("dropout") {
                allow(&["dropout"])?;
                let p = p
                    .as_float()
                    .or_else(|| p.as_integer().map(|i| i as f64))
                    .unwrap_or(-1.0);
                if !(0.0..1.0).contains(&p) {
                    return Err(format!("dropout must be in [0, 1), got {p}"));
                }
                Ok(Layer::Dropout { p })
            } else {
                Err("a table layer needs `conv`, `dense` or `dropout`".to_string())
            }
        }
        other => Err(format!("expected a string or a table, got {other}")),
    }
}

/// Walks the stack over an input of `size`×`size`×1 and returns the parameter count, or an
/// error naming the first impossible layer.
pub fn check_shapes(layers: &[Layer], size: usize) -> Result<usize, LayerError> {
    #[derive(Clone, Copy)]
    enum Shape {
        Image { h: usize, w: usize, c: usize },
        Vector(usize),
    }
    let mut shape = Shape::Image {
        h: size,
        w: size,
        c: 1,
    };
    let mut params = 0;
    for (i, layer) in layers.iter().enumerate() {
        let fail = |message: String| {
            Err(LayerError {
                index: i,
                layer: format!("{layer:?}"),
                message,
            })
        };
        shape = match (layer, shape) {
            (Layer::Conv { filters, kernel }, Shape::Image { h, w, c }) => {
                params += kernel * kernel * c * filters + filters;
                Shape::Image { h, w, c: *filters }
            }
            (Layer::Conv { .. }, Shape::Vector(_)) => {
                return fail("a convolution needs an image, but the input was flattened".into())
            }
            (Layer::Maxpool, Shape::Image { h, w, c }) => {
                if h < 2 || w < 2 {
                    return fail(format!("cannot pool a {h}x{w} image: too many pooling layers for {size}x{size} inputs"));
                }
                Shape::Image {
                    h: h / 2,
                    w: w / 2,
                    c,
                }
            }
            (Layer::Maxpool, Shape::Vector(_)) => {
                return fail("pooling needs an image, but the input was flattened".into())
            }
            (Layer::Batchnorm, Shape::Image { c, .. }) => {
                params += 2 * c;
                shape
            }
            (Layer::Batchnorm, Shape::Vector(n)) => {
                params += 2 * n;
                shape
            }
            (Layer::Flatten, Shape::Image { h, w, c }) => Shape::Vector(h * w * c),
            (Layer::Flatten, Shape::Vector(_)) => return fail("already flat".into()),
            (Layer::Dense { .. }, Shape::Image { .. }) => {
                return fail("dense layers need \"flatten\" before them".into())
            }
            (Layer::Dense { units }, Shape::Vector(n)) => {
                params += n * units + units;
                Shape::Vector(*units)
            }
            (Layer::Relu | Layer::Dropout { .. }, s) => s,
        };
    }
    match shape {
        Shape::Vector(1) => Ok(params),
        _ => Err(LayerError {
            index: layers.len().saturating_sub(1),
            layer: layers
                .last()
                .map_or("nothing".to_string(), |l| format!("{l:?}")),
            message: "the last layer must be { dense = 1 } (one logit)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_network_has_568449_parameters() {
        let layers = parse_layers(&reference_layer_values()).unwrap();
        assert_eq!(layers.len(), 21);
        assert_eq!(check_shapes(&layers, 60), Ok(568_449));
        let net = crate::engine::ConvNet::new(&layers, 60, 0);
        assert_eq!(
            net.parameter_count(),
            568_449,
            "the engine builds what was counted"
        );
    }

    #[test]
    fn impossible_stacks_name_the_layer() {
        let mut values = reference_layer_values();
        values.insert(3, Value::String("maxpool".into()));
        values.insert(3, Value::String("maxpool".into()));
        values.insert(3, Value::String("maxpool".into()));
        let err = check_shapes(&parse_layers(&values).unwrap(), 60)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot pool a 1x1 image") && err.starts_with("layers["),
            "{err}"
        );
        let bad: Vec<Value> = vec![Value::String("relux".into())];
        let err = parse_layers(&bad).unwrap_err().to_string();
        assert!(
            err.contains("layers[0]")
                && err.contains("unknown layer `relux`")
                && err.contains("maxpool"),
            "{err}"
        );
        let dense_first = parse_layers(
            &toml::from_str::<toml::Table>("l = [{ dense = 4 }]").unwrap()["l"]
                .as_array()
                .unwrap()
                .clone(),
        )
        .unwrap();
        assert!(check_shapes(&dense_first, 60)
            .unwrap_err()
            .message
            .contains("flatten"));
    }
}
