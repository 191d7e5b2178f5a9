//! How the engine lays out a batch of images: NHWC, held by dfdx as a 2-D tensor of shape
//! (batch·height·width, channels), so that dfdx's dense layers, dropout and losses apply to
//! it unchanged and our convolution and pooling ops see plain row-major images.

use dfdx::prelude::*;

/// Spatial layout of a batch of NHWC images held as (batch·h·w, channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
}

impl Geometry {
    pub fn positions(&self) -> usize {
        self.batch * self.h * self.w
    }

    /// After a 2×2 max-pool with stride 2 when `pool` (an odd last row or column dropped),
    /// as it is otherwise.
    pub fn pooled_if(self, pool: bool) -> Geometry {
        match pool {
            true => Geometry {
                h: self.h / 2,
                w: self.w / 2,
                ..self
            },
            false => self,
        }
    }
}

pub(crate) type Act<T> = Tensor<(usize, usize), f32, Cpu, T>;
