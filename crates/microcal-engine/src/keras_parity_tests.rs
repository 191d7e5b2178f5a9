//! The engine against Keras 3 (TensorFlow CPU): every layer kind and option, the optimisers,
//! clipping and the weighted, smoothed loss, from `fixtures/keras_layers.json`
//! (`tools/gen_keras_fixtures.py`). Values match to a relative 1e-4 or an absolute 1e-5.
//!
//! Deliberate differences, not exercised here: Adam adds ε to the bias-corrected root (Keras
//! to the uncorrected one; the step differs by ε's share, below the tolerance); weight decay
//! applies to kernels only (Keras decays every variable, biases and batch norm's scale and
//! shift included), so the optimiser cases decay a kernel.

use serde::Deserialize;

use super::*;
use crate::optimizer::{OptimizerKind, Param};

#[derive(Deserialize)]
struct Fixture {
    layers: Vec<LayerCase>,
    optimizers: Vec<OptimizerCase>,
    losses: Vec<LossCase>,
}

#[derive(Deserialize)]
struct LayerCase {
    name: String,
    layers: Vec<Layer>,
    input_shape: [usize; 4],
    input: Vec<f32>,
    earlier_inputs: Vec<Vec<f32>>,
    params: Vec<Vec<f32>>,
    output: Vec<f32>,
    r: Vec<f32>,
    grad_input: Vec<f32>,
    grad_params: Vec<Vec<f32>>,
    running: Vec<[Vec<f32>; 2]>,
    eval_output: Vec<f32>,
}

#[derive(Deserialize)]
struct OptimizerCase {
    name: String,
    weight_decay: f32,
    start: Vec<f32>,
    grads: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct LossCase {
    label_smoothing: f32,
    class_weights: Option<[f32; 2]>,
    logits: Vec<f32>,
    targets: Vec<f32>,
    loss: f32,
    grad: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keras_layers.json");
    let text = std::fs::read_to_string(path).expect("the Keras fixture is committed");
    serde_json::from_str(&text).expect("the fixture parses")
}

/// Relative 1e-4 or absolute 1e-5, value by value.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = (1e-4 * w.abs()).max(1e-5);
        assert!(
            (g - w).abs() <= tolerance,
            "{what}[{i}]: microcal {g}, Keras {w}"
        );
    }
}

/// The network of `case` with Keras's weights, and its input geometry.
fn network(case: &LayerCase) -> ConvNet {
    let [_, h, w, c] = case.input_shape;
    let mut net = ConvNet::with_input(&case.layers, (h, w, c), 0);
    let mut params = case.params.iter();
    let values: Vec<Vec<f32>> = net
        .named_values()
        .into_iter()
        .map(|(name, v)| {
            if name.contains("running") {
                v
            } else {
                params
                    .next()
                    .expect("one fixture value per parameter")
                    .clone()
            }
        })
        .collect();
    assert!(
        params.next().is_none(),
        "{}: parameters left over",
        case.name
    );
    assert!(net.load_values(&values), "{}: values fit", case.name);
    net
}

/// One training-mode pass: the output and, when `r` is given, the gradients of Σ y·r with
/// respect to the input and every parameter; batch norm's running statistics updated.
fn training_pass(
    net: &mut ConvNet,
    x: &[f32],
    batch: usize,
    r: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let input = net.input_tensor(x, batch);
    let traced = input.clone().traced(Gradients::leaky());
    let mut stats = Vec::new();
    let mut pass = Pass {
        dropout_seed: Some(0),
        stats: &mut stats,
        // Propagate into the input too (a network's first layer does not need to).
        first_conv: false,
    };
    let (y, _) = run(&net.blocks, traced, net.geometry(batch), &mut pass, 0);
    let output = y.as_vec();
    let (mut grad_input, mut grad_params) = (Vec::new(), Vec::new());
    if let Some(r) = r {
        let r = net.dev.tensor_from_vec(r.to_vec(), *y.shape());
        let mut grads = (y * r).sum().backward();
        grad_input = grads.get(&input).as_vec();
        grad_params = Block::params(&net.blocks)
            .iter()
            .map(|p| p.take_grad(&mut grads))
            .collect();
    }
    for (bn, moments) in Block::batch_norms_mut(&mut net.blocks)
        .into_iter()
        .zip(&stats)
    {
        bn.update_running(moments);
    }
    (output, grad_input, grad_params)
}

#[test]
fn every_layer_matches_keras_forward_backward_and_running_statistics() {
    let fixture = fixture();
    assert!(
        fixture.layers.len() >= 20,
        "the fixture covers every layer kind"
    );
    for case in &fixture.layers {
        let mut net = network(case);
        let batch = case.input_shape[0];
        for earlier in &case.earlier_inputs {
            training_pass(&mut net, earlier, batch, None);
        }
        let (output, grad_input, grad_params) =
            training_pass(&mut net, &case.input, batch, Some(&case.r));
        let name = &case.name;
        assert_close(&format!("{name}: output"), &output, &case.output);
        assert_close(
            &format!("{name}: input gradient"),
            &grad_input,
            &case.grad_input,
        );
        assert_eq!(grad_params.len(), case.grad_params.len(), "{name}");
        for (i, (got, want)) in grad_params.iter().zip(&case.grad_params).enumerate() {
            assert_close(&format!("{name}: gradient of parameter {i}"), got, want);
        }
        let running: Vec<(Vec<f32>, Vec<f32>)> = Block::batch_norms_mut(&mut net.blocks)
            .into_iter()
            .map(|bn| (bn.running_mean.clone(), bn.running_var.clone()))
            .collect();
        assert_eq!(running.len(), case.running.len(), "{name}");
        for ((mean, var), [want_mean, want_var]) in running.iter().zip(&case.running) {
            assert_close(&format!("{name}: running mean"), mean, want_mean);
            assert_close(&format!("{name}: running variance"), var, want_var);
        }
        let input = net.input_tensor(&case.input, batch);
        let mut pass = Pass {
            dropout_seed: None,
            stats: &mut Vec::new(),
            first_conv: true,
        };
        let eval = run(&net.blocks, input, net.geometry(batch), &mut pass, 0)
            .0
            .as_vec();
        assert_close(
            &format!("{name}: evaluation output"),
            &eval,
            &case.eval_output,
        );
    }
}

#[test]
fn optimisers_and_clipping_match_keras_over_three_steps() {
    let dev = Cpu::seed_from_u64(0);
    for case in fixture().optimizers {
        let kind = match case.name.as_str() {
            "adam" => OptimizerKind::Adam,
            "adamw" => OptimizerKind::AdamW,
            "sgd" | "sgd global clipnorm 1" => OptimizerKind::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            "sgd momentum" | "sgd weight decay" => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            "sgd nesterov" => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            other => panic!("unknown optimiser case {other}"),
        };
        let lr = if matches!(kind, OptimizerKind::Sgd { .. }) {
            0.1
        } else {
            0.01
        };
        let mut opt = Optimizer::new(kind, lr, case.weight_decay as f64);
        if case.name.contains("clipnorm") {
            opt.clip_norm = Some(1.0);
        }
        let mut p = Param::new(&dev, case.start.clone(), (case.start.len(),), true);
        for (step, (grad, want)) in case.grads.iter().zip(&case.values).enumerate() {
            let mut grads = vec![grad.clone()];
            opt.next_step();
            opt.clip(&mut grads);
            p.step_with(&grads[0], &opt);
            assert_close(
                &format!("{} step {}", case.name, step + 1),
                &p.values(),
                want,
            );
        }
    }
}

#[test]
fn smoothed_and_weighted_loss_matches_keras() {
    let dev = Cpu::seed_from_u64(0);
    for case in fixture().losses {
        let objective = Objective {
            label_smoothing: case.label_smoothing,
            class_weights: case.class_weights,
        };
        let n = case.logits.len();
        let logits = dev.tensor_from_vec(case.logits.clone(), (n, 1usize));
        let (value, loss) = bce_loss(
            logits.clone().traced(Gradients::leaky()),
            &case.targets,
            1.0,
            &objective,
        );
        let what = format!("{objective:?}");
        assert_close(&format!("{what}: loss"), &[value], &[case.loss]);
        let grads = loss.backward();
        assert_close(
            &format!("{what}: gradient"),
            &grads.get(&logits).as_vec(),
            &case.grad,
        );
    }
}
