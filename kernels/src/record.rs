//! Where a kernel op leaves its backward pass: in candle's autograd graph,
//! or handed to the caller as a [`Backward`] step for its own reverse pass.
//! candle's `backward` adds every gradient into a freshly zeroed tensor on
//! the calling thread, one full extra pass per edge of the graph while the
//! other cores wait; a caller that runs the steps itself can pass each
//! gradient on as it is.

use candle_core::{CustomOp1, CustomOp2, CustomOp3, Result, Tensor};

/// An op's backward step, taken off candle's graph: from the gradient of the
/// op's output, the gradients of its arguments in order (`None` where an
/// argument needs none).
pub type Backward = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// How a kernel op records its backward pass.
pub enum Record<'a> {
    /// In candle's autograd graph, as candle's own ops do; the input
    /// gradient is computed where the input is tracked.
    Graph,
    /// Off the graph: the op's backward step is left in `step`;
    /// `input_grad` says whether the op's (first) input needs a gradient.
    Taped {
        /// Receives the op's backward step.
        step: &'a mut Option<Backward>,
        /// Whether the op's first argument needs a gradient.
        input_grad: bool,
    },
}

impl Record<'_> {
    /// Whether the op's input `x` needs a gradient.
    pub(super) fn input_grad(&self, x: &Tensor) -> bool {
        match self {
            Record::Graph => x.track_op(),
            Record::Taped { input_grad, .. } => *input_grad,
        }
    }

    /// Applies a one-argument op.
    pub(super) fn apply1<O: CustomOp1 + Send + Sync + 'static>(
        self,
        x: Tensor,
        op: O,
    ) -> Result<Tensor> {
        match self {
            Record::Graph => x.apply_op1(op),
            Record::Taped { step, .. } => {
                let y = x.apply_op1_no_bwd(&op)?;
                let out = y.clone();
                *step = Some(Box::new(move |dy| Ok(vec![op.bwd(&x, &out, dy)?])));
                Ok(y)
            }
        }
    }

    /// Applies a two-argument op.
    pub(super) fn apply2<O: CustomOp2 + Send + Sync + 'static>(
        self,
        a: Tensor,
        b: Tensor,
        op: O,
    ) -> Result<Tensor> {
        match self {
            Record::Graph => a.apply_op2(&b, op),
            Record::Taped { step, .. } => {
                let y = a.apply_op2_no_bwd(&b, &op)?;
                let out = y.clone();
                *step = Some(Box::new(move |dy| {
                    let (da, db) = op.bwd(&a, &b, &out, dy)?;
                    Ok(vec![da, db])
                }));
                Ok(y)
            }
        }
    }

    /// Applies a three-argument op.
    pub(super) fn apply3<O: CustomOp3 + Send + Sync + 'static>(
        self,
        a: Tensor,
        b: Tensor,
        c: Tensor,
        op: O,
    ) -> Result<Tensor> {
        match self {
            Record::Graph => a.apply_op3(&b, &c, op),
            Record::Taped { step, .. } => {
                let y = a.apply_op3_no_bwd(&b, &c, &op)?;
                let out = y.clone();
                *step = Some(Box::new(move |dy| {
                    let (da, db, dc) = op.bwd(&a, &b, &c, &out, dy)?;
                    Ok(vec![da, db, dc])
                }));
                Ok(y)
            }
        }
    }
}
