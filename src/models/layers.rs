//! The CNN's layer list as written in the experiment file, parsed with errors that name the
//! layer, and checked for shape before anything trains.

use thiserror::Error;
use toml::Value;

pub use crate::engine::layer::Shape;
pub use crate::engine::{Activation, Layer, Padding};

use super::dwt_front::DwtFront;
use crate::engine::layer::{walk, Walk};

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

const VALID: &str = "\"relu\", \"leaky_relu\", \"elu\", \"gelu\", \"sigmoid\", \"tanh\", \"maxpool\", \"avgpool\", \"globalavgpool\", \"batchnorm\", \"flatten\", { conv = N, kernel = K, stride = S, padding = \"same\" | \"valid\" }, { maxpool = K, stride = S }, { avgpool = K, stride = S }, { batchnorm = MOMENTUM, eps = E }, { leaky_relu = ALPHA }, { residual = [layers] }, { dwt = FAMILY, level = L } (first layer only), { dropout = P }, { dense = N } (see docs/models.md)";

/// Largest kernel, pooling window or stride side.
pub const MAX_WINDOW: usize = 31;

/// A layer that does not parse, or does not fit the shape of its input.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("layers[{index}] ({layer}): {message}")]
pub struct LayerError {
    pub index: usize,
    /// The layer as written (or as parsed, for shape errors).
    pub layer: String,
    pub message: String,
}

/// A network as declared: an optional wavelet front end and the engine's layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// `{ dwt = FAMILY, level = L }` as the first layer: family and level.
    pub front: Option<(String, usize)>,
    pub layers: Vec<Layer>,
}

impl Network {
    /// The front end for `size`×`size` images (checked by [`check_shapes`]).
    pub fn front_end(&self, size: usize) -> Option<DwtFront> {
        self.front
            .as_ref()
            .map(|(family, level)| DwtFront::new(family, *level, size).expect("checked"))
    }

    /// What the engine's layers see: (h, w, channels).
    pub fn input(&self, size: usize) -> (usize, usize, usize) {
        match self.front_end(size) {
            Some(front) => {
                let side = front.output_size(size);
                (side, side, 4)
            }
            None => (size, size, 1),
        }
    }
}

/// Parses the file's `layers` list.
pub fn parse_layers(values: &[Value]) -> Result<Network, LayerError> {
    let error = |index: usize, v: &Value, message: String| LayerError {
        index,
        layer: v.to_string(),
        message: format!("{message}; valid layers are {VALID}"),
    };
    let mut front = None;
    let mut layers = Vec::with_capacity(values.len());
    for (index, v) in values.iter().enumerate() {
        if let Some(t) = v.as_table().filter(|t| t.contains_key("dwt")) {
            if index > 0 {
                return Err(error(index, v, "dwt must be the first layer".into()));
            }
            front = Some(parse_dwt(t).map_err(|e| error(index, v, e))?);
            continue;
        }
        layers.push(parse_layer(v).map_err(|e| error(index, v, e))?);
    }
    Ok(Network { front, layers })
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

fn parse_dwt(t: &toml::Table) -> Result<(String, usize), String> {
    let fields = Fields(t);
    fields.allow(&["dwt", "level"])?;
    let family = t["dwt"]
        .as_str()
        .ok_or("`dwt` must be a wavelet name such as \"db2\"")?;
    Ok((family.to_string(), fields.int("level")?.unwrap_or(1)))
}

/// A table layer's keys, read with errors that name them.
struct Fields<'a>(&'a toml::Table);

impl Fields<'_> {
    fn int(&self, key: &str) -> Result<Option<usize>, String> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 1 => Ok(Some(*n as usize)),
            Some(other) => Err(format!("`{key}` must be a positive integer, got {other}")),
        }
    }

    /// An integer window side or stride, at most [`MAX_WINDOW`].
    fn window(&self, key: &str) -> Result<Option<usize>, String> {
        match self.int(key)? {
            Some(n) if n > MAX_WINDOW => {
                Err(format!("`{key}` must be at most {MAX_WINDOW}, got {n}"))
            }
            other => Ok(other),
        }
    }

    fn float(&self, key: &str) -> Result<Option<f64>, String> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a number, got {v}")),
        }
    }

    fn allow(&self, keys: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "unknown key `{k}` (this layer takes {})",
                keys.join(", ")
            )),
            None => Ok(()),
        }
    }
}

fn in_range(key: &str, value: f64, range: std::ops::Range<f64>) -> Result<f64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{key}` must be in [{}, {}), got {value}",
            range.start, range.end
        ))
    }
}

/// Keras's LeakyReLU slope.
const LEAKY_ALPHA: f32 = 0.3;

fn parse_layer(v: &Value) -> Result<Layer, String> {
    match v {
        Value::String(name) => match name.as_str() {
            "relu" => Ok(Layer::RELU),
            "leaky_relu" => Ok(Layer::Activation(Activation::LeakyRelu {
                alpha: LEAKY_ALPHA,
            })),
            "elu" => Ok(Layer::Activation(Activation::Elu)),
            "gelu" => Ok(Layer::Activation(Activation::Gelu)),
            "sigmoid" => Ok(Layer::Activation(Activation::Sigmoid)),
            "tanh" => Ok(Layer::Activation(Activation::Tanh)),
            "maxpool" => Ok(Layer::MAXPOOL),
            "avgpool" => Ok(Layer::AvgPool { size: 2, stride: 2 }),
            "globalavgpool" => Ok(Layer::GlobalAvgPool),
            "batchnorm" => Ok(Layer::BATCHNORM),
            "flatten" => Ok(Layer::Flatten),
            other => Err(format!("unknown layer `{other}`")),
        },
        Value::Table(t) => parse_table(t),
        other => Err(format!("expected a string or a table, got {other}")),
    }
}

fn parse_table(t: &toml::Table) -> Result<Layer, String> {
    let f = Fields(t);
    if let Some(filters) = f.int("conv")? {
        f.allow(&["conv", "kernel", "stride", "padding"])?;
        let padding = match t.get("padding").map(|p| p.as_str()) {
            None | Some(Some("same")) => Padding::Same,
            Some(Some("valid")) => Padding::Valid,
            Some(_) => return Err("`padding` must be \"same\" or \"valid\"".into()),
        };
        Ok(Layer::Conv {
            filters,
            kernel: f.window("kernel")?.unwrap_or(3),
            stride: f.window("stride")?.unwrap_or(1),
            padding,
        })
    } else if t.contains_key("maxpool") || t.contains_key("avgpool") {
        let max = t.contains_key("maxpool");
        let key = if max { "maxpool" } else { "avgpool" };
        f.allow(&[key, "stride"])?;
        let size = f.window(key)?.expect("present");
        let stride = f.window("stride")?.unwrap_or(size);
        Ok(if max {
            Layer::MaxPool { size, stride }
        } else {
            Layer::AvgPool { size, stride }
        })
    } else if t.contains_key("batchnorm") {
        f.allow(&["batchnorm", "eps"])?;
        let momentum = in_range(
            "batchnorm",
            f.float("batchnorm")?.expect("present"),
            0.0..1.0,
        )?;
        let eps = f.float("eps")?.unwrap_or(1e-3);
        if !(eps > 0.0 && eps < 1.0) {
            return Err(format!("`eps` must be in (0, 1), got {eps}"));
        }
        Ok(Layer::BatchNorm { momentum, eps })
    } else if t.contains_key("leaky_relu") {
        f.allow(&["leaky_relu"])?;
        let alpha = in_range(
            "leaky_relu",
            f.float("leaky_relu")?.expect("present"),
            0.0..1.0,
        )?;
        Ok(Layer::Activation(Activation::LeakyRelu {
            alpha: alpha as f32,
        }))
    } else if let Some(inner) = t.get("residual") {
        f.allow(&["residual"])?;
        let inner = inner
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or("`residual` must be a non-empty list of layers")?;
        let layers = inner
            .iter()
            .enumerate()
            .map(|(i, v)| parse_layer(v).map_err(|e| format!("inside the block, layer {i}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Layer::Residual(layers))
    } else if let Some(units) = f.int("dense")? {
        f.allow(&["dense"])?;
        Ok(Layer::Dense { units })
    } else if t.contains_key("dropout") {
        f.allow(&["dropout"])?;
        let p = in_range("dropout", f.float("dropout")?.expect("present"), 0.0..1.0)?;
        Ok(Layer::Dropout { p })
    } else {
        Err(
            "a table layer needs one of `conv`, `maxpool`, `avgpool`, `batchnorm`, \
             `leaky_relu`, `residual`, `dwt`, `dense` or `dropout`"
                .to_string(),
        )
    }
}

/// Walks the network over `size`×`size`×1 images: every layer's output shape, the parameter
/// count and the widest activation, or an error naming the first impossible layer (the
/// last must give one logit).
pub fn walk_network(network: &Network, size: usize) -> Result<Walk, LayerError> {
    let offset = usize::from(network.front.is_some());
    if let Some((family, level)) = &network.front {
        DwtFront::new(family, *level, size).map_err(|message| LayerError {
            index: 0,
            layer: format!("dwt {family} level {level}"),
            message,
        })?;
    }
    let (h, w, c) = network.input(size);
    let layers = &network.layers;
    let walk = walk(layers, Shape::Image { h, w, c }).map_err(|e| LayerError {
        index: e.index + offset,
        layer: format!("{:?}", layers[e.index]),
        message: e.message,
    })?;
    match walk.output(Shape::Image { h, w, c }) {
        Shape::Vector(1) => Ok(walk),
        _ => Err(LayerError {
            index: (layers.len() + offset).saturating_sub(1),
            layer: layers
                .last()
                .map_or("nothing".to_string(), |l| format!("{l:?}")),
            message: "the last layer must be { dense = 1 } (one logit)".into(),
        }),
    }
}

/// [`walk_network`]'s parameter count.
pub fn check_shapes(network: &Network, size: usize) -> Result<usize, LayerError> {
    walk_network(network, size).map(|w| w.parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_network_has_568449_parameters() {
        let network = parse_layers(&reference_layer_values()).unwrap();
        assert_eq!(network.layers.len(), 21);
        assert_eq!(check_shapes(&network, 60), Ok(568_449));
        let net = crate::engine::ConvNet::new(&network.layers, 60, 0);
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

    fn layers(text: &str) -> Result<Network, LayerError> {
        let table: toml::Table = toml::from_str(&format!("l = {text}")).unwrap();
        parse_layers(table["l"].as_array().unwrap())
    }

    #[test]
    fn the_new_vocabulary_parses_with_its_defaults() {
        let net = layers(
            r#"[{ dwt = "db2", level = 2 }, { conv = 8, kernel = 5, stride = 2, padding = "valid" },
                { batchnorm = 0.9, eps = 1e-5 }, "leaky_relu", { leaky_relu = 0.1 }, "elu", "gelu",
                "sigmoid", "tanh", { maxpool = 3 }, { avgpool = 2, stride = 1 }, "avgpool",
                { residual = [{ conv = 8 }, "batchnorm"] }, "globalavgpool", { dense = 1 }]"#,
        )
        .unwrap();
        assert_eq!(net.front, Some(("db2".to_string(), 2)));
        assert_eq!(
            net.layers[0],
            Layer::Conv {
                filters: 8,
                kernel: 5,
                stride: 2,
                padding: Padding::Valid
            }
        );
        assert_eq!(
            net.layers[1],
            Layer::BatchNorm {
                momentum: 0.9,
                eps: 1e-5
            }
        );
        assert_eq!(
            net.layers[2],
            Layer::Activation(Activation::LeakyRelu { alpha: 0.3 })
        );
        assert_eq!(net.layers[8], Layer::MaxPool { size: 3, stride: 3 });
        assert_eq!(net.layers[10], Layer::AvgPool { size: 2, stride: 2 });
        assert_eq!(
            net.input(60),
            (17, 17, 4),
            "db2 level 2: 60 -> 31 -> 17, four bands"
        );
        // 17 -> 7 (valid 5x5 stride 2) -> 2 (maxpool 3) -> 1 (avgpool 2 stride 1): the last
        // "avgpool" (file index 11, after the front end) has nothing left to pool.
        let err = check_shapes(&net, 60).unwrap_err();
        assert_eq!(err.index, 11, "{err}");
        assert!(err.message.contains("cannot pool a 1x1 image"), "{err}");
    }

    #[test]
    fn bad_layers_name_their_index_key_and_what_is_valid() {
        let cases = [
            (
                r#"[{ conv = 8, stride = 0 }]"#,
                0,
                "`stride` must be a positive integer",
            ),
            (
                r#"[{ conv = 8, kernel = 33 }]"#,
                0,
                "`kernel` must be at most 31",
            ),
            (
                r#"[{ conv = 8, padding = "full" }]"#,
                0,
                "`padding` must be \"same\" or \"valid\"",
            ),
            (
                r#"[{ conv = 8, dilation = 2 }]"#,
                0,
                "unknown key `dilation`",
            ),
            (
                r#"["relu", { batchnorm = 1.0 }]"#,
                1,
                "`batchnorm` must be in [0, 1)",
            ),
            (
                r#"["relu", { batchnorm = 0.9, eps = 0 }]"#,
                1,
                "`eps` must be in (0, 1)",
            ),
            (
                r#"["relu", { dwt = "haar" }]"#,
                1,
                "dwt must be the first layer",
            ),
            (r#"[{ residual = [] }]"#, 0, "non-empty list of layers"),
            (
                r#"[{ residual = ["relux"] }]"#,
                0,
                "inside the block, layer 0: unknown layer `relux`",
            ),
            (
                r#"[{ leaky_relu = -1 }]"#,
                0,
                "`leaky_relu` must be in [0, 1)",
            ),
            (r#"["swish"]"#, 0, "unknown layer `swish`"),
        ];
        for (text, index, message) in cases {
            let err = layers(text).unwrap_err();
            assert_eq!(err.index, index, "{text}: {err}");
            let shown = err.to_string();
            assert!(shown.contains(message), "{text}: {shown}");
            assert!(
                shown.contains("globalavgpool") && shown.contains("residual"),
                "{shown}"
            );
        }
        let shape = |text: &str| {
            check_shapes(&layers(text).unwrap(), 60)
                .unwrap_err()
                .to_string()
        };
        let err = shape(r#"[{ dwt = "db5", level = 3 }, "flatten", { dense = 1 }]"#);
        assert!(
            err.starts_with("layers[0]") && err.contains("1..=2"),
            "{err}"
        );
        let err = shape(
            r#"[{ conv = 4 }, { residual = [{ conv = 8, padding = "valid" }] }, "flatten", { dense = 1 }]"#,
        );
        assert!(
            err.starts_with("layers[1]") && err.contains("60x60 into 58x58"),
            "{err}"
        );
        let err = shape(
            r#"[{ conv = 4, kernel = 31, padding = "valid" }, { conv = 4, kernel = 31, padding = "valid" }]"#,
        );
        assert!(
            err.starts_with("layers[1]") && err.contains("does not fit a 30x30 image"),
            "{err}"
        );
        let err = shape(r#"[{ conv = 4 }, "globalavgpool", "flatten", { dense = 1 }]"#);
        assert!(
            err.starts_with("layers[2]") && err.contains("already flat"),
            "{err}"
        );
        assert_eq!(
            check_shapes(
                &layers(r#"[{ conv = 4 }, "globalavgpool", { dense = 1 }]"#).unwrap(),
                60
            ),
            Ok(3 * 3 * 4 + 4 + 4 + 1)
        );
    }
}
