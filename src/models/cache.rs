//! The decoder's per-layer key/value cache, shared by every architecture.
//!
//! Beam search must reorder it after each step (a beam may continue another beam's prefix),
//! so it lives outside the model as a plain value instead of hidden state.
//!
//! Self-attention keys/values are written once into preallocated buffers and never moved:
//! appending a step writes one slot, and reordering beams only rewrites a small table saying
//! which buffer row holds each earlier position of each beam. Concatenating and copying the
//! whole cache every step cost time that grew with the output length.
//!
//! For continuous batching the state also grows and shrinks between steps (see [`rows`]): new
//! inputs join a running batch and finished ones leave, like CTranslate2's caller-owned decoder
//! state. Every row writes the same buffer slot each step, so a row that joined late starts at
//! a later slot; its earlier slots are hidden by [`DecoderState::self_attention_bias`], and its
//! own positions are [`DecoderState::row_positions`].

mod rows;

use candle_core::{DType, Result, Tensor};

/// Self-attention keys and values of one decoder layer, `(buffer_rows, capacity, heads,
/// head_dim)`: position `p` of buffer row `b` was written by decoder row `b` at step `p`.
#[derive(Debug)]
pub struct SelfKv {
    pub k: Tensor,
    pub v: Tensor,
}

/// One decoder layer's cache.
#[derive(Debug)]
pub struct LayerCache {
    /// Self-attention keys/values of the tokens decoded so far (None before the first step).
    pub self_kv: Option<SelfKv>,
    /// Cross-attention keys/values over the encoder output, `(batch, heads, seq, head_dim)`,
    /// computed once per input.
    pub cross_kv: (Tensor, Tensor),
}

/// A layer's self-attention cache as the current step sees it.
#[derive(Debug, Clone, Copy)]
pub struct SelfKvView<'a> {
    /// Key and value buffers `(buffer_rows, capacity, heads, head_dim)`.
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    /// `rows × keys` buffer rows: decoder row `r`'s position `p` is in buffer row
    /// `buffer_rows[r * keys + p]`.
    pub buffer_rows: &'a [u32],
    /// Positions filled, the current step's included.
    pub keys: usize,
    /// Per encoded input, the first position its rows can see (the slot it joined a running
    /// batch at; earlier ones are other rows' history, hidden by the self-attention bias).
    pub starts: &'a [usize],
    /// Decoder rows per encoded input: row `r` belongs to input `r / beams`.
    pub beams: usize,
}

impl SelfKvView<'_> {
    /// The first position decoder row `row` can see.
    pub fn first_key(&self, row: usize) -> usize {
        self.starts[row / self.beams.max(1)]
    }

    /// The keys and values gathered into `(rows, heads, keys, head_dim)`, for kernels that need
    /// them contiguous (GPUs, half precision).
    pub fn gather(&self) -> Result<(Tensor, Tensor)> {
        let (buffer_rows, capacity, heads, head_dim) = self.k.dims4()?;
        let rows = self.buffer_rows.len() / self.keys;
        let flat: Vec<u32> = self
            .buffer_rows
            .iter()
            .enumerate()
            .map(|(i, &b)| b * capacity as u32 + (i % self.keys) as u32)
            .collect();
        let index = Tensor::from_vec(flat, rows * self.keys, self.k.device())?;
        let pick = |t: &Tensor| -> Result<Tensor> {
            t.reshape((buffer_rows * capacity, heads, head_dim))?
                .index_select(&index, 0)?
                .reshape((rows, self.keys, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        Ok((pick(self.k)?, pick(self.v)?))
    }
}

/// Everything a decoder step needs besides the new token. Not `Clone`: steps write into the
/// self-attention buffers in place, and a clone would share them.
#[derive(Debug)]
pub struct DecoderState {
    pub layers: Vec<LayerCache>,
    /// Additive attention bias over encoder positions, `(batch, 1, 1, enc_seq)`: 0 where a key is
    /// a real token, a large negative number where it is padding.
    pub encoder_bias: Tensor,
    /// How many decoder tokens have been fed so far (the position of the next one).
    pub position: usize,
    /// Decoder rows per encoded input (the beam width once beam search has begun): decoder row
    /// `r` attends to encoder row `r / beams`, so beams share one copy of the encoder side.
    pub beams: usize,
    /// `rows × (position + 1)`: which buffer row holds each position of each decoder row (the
    /// current step's slot is always the row's own).
    buffer_rows: Vec<u32>,
    /// The encoder's `(batch, seq)` padding mask, kept to pad and trim it as inputs join and leave.
    encoder_mask: Tensor,
    /// Per encoded input: encoder positions up to its last real token.
    encoder_lens: Vec<usize>,
    /// Per encoded input: the slot its decoder rows started at (0 unless it joined a running
    /// batch). `position - start` is how many tokens a row has decoded.
    starts: Vec<usize>,
    /// The most slots the rows can fill, as the caller last said ([`Self::plan_steps`]): buffers
    /// that grow are sized for them instead of doubling, until the rows outgrow the plan.
    planned_slots: Option<usize>,
}

/// Buffer positions allocated at the first step when the caller gave no plan; the buffers
/// double when full.
const INITIAL_CAPACITY: usize = 64;

/// The most slots a plan allocates beyond doubling: room for the presets' summary lengths
/// (64-200 tokens) and a 512-token window's chunk passes (170), while a large maximum that
/// rows may stop far short of (a server's `max_new_tokens`) still grows by doubling from here
/// instead of holding memory for slots never written.
const PLANNED_CAPACITY: usize = 256;

impl DecoderState {
    /// A fresh state over an encoded batch, from each decoder layer's cross-attention
    /// keys/values and the encoder's `(batch, seq)` padding mask.
    pub fn new(
        cross_kv: Vec<(Tensor, Tensor)>,
        attention_mask: &Tensor,
        dtype: DType,
    ) -> Result<Self> {
        let encoder_lens = real_lengths(attention_mask)?;
        Ok(Self {
            layers: cross_kv
                .into_iter()
                // Contiguous: the fused decoder kernel reads each (row, head) as one block.
                .map(|(k, v)| {
                    Ok(LayerCache {
                        self_kv: None,
                        cross_kv: (k.contiguous()?, v.contiguous()?),
                    })
                })
                .collect::<Result<_>>()?,
            encoder_bias: padding_bias(attention_mask, dtype)?,
            position: 0,
            beams: 1,
            buffer_rows: Vec::new(),
            encoder_mask: attention_mask.clone(),
            starts: vec![0; encoder_lens.len()],
            encoder_lens,
            planned_slots: None,
        })
    }

    /// Tells the state that no row will take more than `steps` more decoder steps (this one
    /// included), as their maximum lengths say. Buffers that must grow then get exactly the
    /// slots the rows can still reach (at most [`PLANNED_CAPACITY`], or what doubling would
    /// give if that is more): a summary of 142 tokens allocates 142 slots once, where
    /// doubling allocated 64, 128 and 256 and copied the cache into fresh memory twice (page
    /// faults that took a tenth of `precis summarize`'s time). Only sizes change, never
    /// values.
    pub fn plan_steps(&mut self, steps: usize) {
        self.planned_slots = Some(self.position + steps);
    }

    /// Slots to allocate for buffers that hold `filled` slots and need at least one more.
    fn capacity_for(&self, filled: usize) -> usize {
        let doubled = (filled * 2).max(INITIAL_CAPACITY);
        match self.planned_slots {
            Some(slots) if slots > filled => slots.min(doubled.max(PLANNED_CAPACITY)),
            // No plan, or one the rows outgrew (the caller's estimate was wrong): doubling, so
            // that a plan that keeps falling short cannot make every step a copy.
            _ => doubled,
        }
    }

    /// Encoded inputs the state holds (each with [`Self::beams`] decoder rows).
    pub fn inputs(&self) -> usize {
        self.starts.len()
    }

    /// Decoder rows the state currently holds (encoded inputs × beams).
    pub fn decoder_rows(&self) -> Result<usize> {
        Ok(self.encoder_bias.dim(0)? * self.beams)
    }

    /// Give every encoded input `beams` decoder rows: row `i * beams + j` is beam `j` of input
    /// `i`. Nothing is copied: the encoder side is shared (see [`Self::beams`]) and the
    /// self-attention cache is still empty, which is why this must come before the first step.
    pub fn expand_beams(&mut self, beams: usize) -> Result<()> {
        if self.position > 0 {
            candle_core::bail!("beams must be expanded before the first decoder step");
        }
        self.beams *= beams.max(1);
        Ok(())
    }

    /// Follow beams between decoder steps: row `i` continues row `sources[i]`'s prefix. Every
    /// source must be a row of the same input (beam search only continues an input's own
    /// beams), so the encoder side stays as it is; only the table of buffer rows changes.
    pub fn reorder_beams(&mut self, sources: &[u32]) -> Result<()> {
        let rows = self.decoder_rows()?;
        if sources.len() != rows || sources.iter().any(|&s| s as usize >= rows) {
            candle_core::bail!(
                "beam reorder needs {rows} source rows below {rows}, got {sources:?}"
            );
        }
        let filled = self.position;
        let old = std::mem::take(&mut self.buffer_rows);
        self.buffer_rows = sources
            .iter()
            .flat_map(|&s| {
                old[s as usize * filled..(s as usize + 1) * filled]
                    .iter()
                    .copied()
            })
            .collect();
        Ok(())
    }

    /// Write this step's keys/values `(rows, 1, heads, head_dim)` (the projection before the
    /// head split) into `layer`'s buffers at the current position.
    pub fn append_self_kv(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<()> {
        let (rows, _, heads, head_dim) = k.dims4()?;
        let position = self.position;
        let capacity = self.capacity_for(position);
        let entry = &mut self.layers[layer].self_kv;
        let needs_room = match entry {
            None => true,
            Some(kv) => kv.k.dim(1)? <= position,
        };
        if needs_room {
            let grow = |old: Option<&Tensor>| -> Result<Tensor> {
                let buffer =
                    Tensor::zeros((rows, capacity, heads, head_dim), k.dtype(), k.device())?;
                if let Some(old) = old {
                    buffer.slice_set(&old.narrow(1, 0, position)?.contiguous()?, 1, 0)?;
                }
                Ok(buffer)
            };
            let old = entry.as_ref();
            let grown = SelfKv {
                k: grow(old.map(|kv| &kv.k))?,
                v: grow(old.map(|kv| &kv.v))?,
            };
            *entry = Some(grown);
        }
        if let Some(kv) = entry {
            kv.k.slice_set(&k.contiguous()?, 1, position)?;
            kv.v.slice_set(&v.contiguous()?, 1, position)?;
        }
        Ok(())
    }

    /// `layer`'s self-attention cache for the current step (after [`Self::append_self_kv`]).
    pub fn self_kv(&self, layer: usize) -> Result<SelfKvView<'_>> {
        let Some(kv) = &self.layers[layer].self_kv else {
            candle_core::bail!("decoder layer {layer} read its cache before writing this step");
        };
        let keys = self.position + 1;
        if self.buffer_rows.len() != self.decoder_rows()? * keys {
            candle_core::bail!("decoder step {keys} read the cache without begin_step");
        }
        Ok(SelfKvView {
            k: &kv.k,
            v: &kv.v,
            buffer_rows: &self.buffer_rows,
            keys,
            starts: &self.starts,
            beams: self.beams,
        })
    }

    /// Make the current step's slot part of each row's history. Models call this between
    /// steps' cache writes: `begin_step` before the layers, [`Self::end_step`] after.
    pub fn begin_step(&mut self) -> Result<()> {
        let rows = self.decoder_rows()?;
        let filled = self.position;
        let old = std::mem::take(&mut self.buffer_rows);
        self.buffer_rows = (0..rows)
            .flat_map(|r| {
                let past = &old[r * filled..(r + 1) * filled];
                past.iter().copied().chain(std::iter::once(r as u32))
            })
            .collect();
        Ok(())
    }

    /// The step is done: the next token goes to the next position.
    pub fn end_step(&mut self) {
        self.position += 1;
    }

    /// [`Self::new`] over `encoder_hidden`, with every decoder layer's cross-attention keys
    /// and values projected by `project_kv`: what each model's `start_decoding` does.
    pub(crate) fn start<L>(
        layers: &[L],
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
        project_kv: impl Fn(&L, &Tensor) -> Result<(Tensor, Tensor)>,
    ) -> Result<Self> {
        let cross_kv = layers
            .iter()
            .map(|layer| project_kv(layer, encoder_hidden))
            .collect::<Result<Vec<_>>>()?;
        Self::new(cross_kv, attention_mask, encoder_hidden.dtype())
    }
}

/// Per row of a `(batch, seq)` 0/1 mask: the positions up to and including its last 1.
fn real_lengths(attention_mask: &Tensor) -> Result<Vec<usize>> {
    let rows = attention_mask.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    Ok(rows
        .iter()
        .map(|row| row.iter().rposition(|&m| m != 0).map_or(0, |last| last + 1))
        .collect())
}

/// Turn a `(batch, seq)` 0/1 mask into the additive bias `(batch, 1, 1, seq)` used in attention.
pub fn padding_bias(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (batch, seq) = attention_mask.dims2()?;
    let mask = attention_mask.to_dtype(dtype)?;
    // (1 - mask) * dtype::MIN, as transformers does, so padded keys get zero weight after softmax.
    let min = match dtype {
        DType::F16 => f64::from(half::f16::MIN),
        DType::BF16 => f64::from(half::bf16::MIN),
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    };
    mask.affine(-min, min)?.reshape((batch, 1, 1, seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// A two-row state whose single layer has one head of width 1.
    fn state() -> DecoderState {
        let cross = Tensor::new(&[5f32, 6.], &Device::Cpu)
            .unwrap()
            .reshape((2, 1, 1, 1))
            .unwrap();
        let mask = Tensor::new(&[[1u32], [1]], &Device::Cpu).unwrap();
        DecoderState::new(vec![(cross.clone(), cross)], &mask, DType::F32).unwrap()
    }

    /// Feed one step whose keys are `values` (one per row) and values are their negatives.
    fn step(s: &mut DecoderState, values: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let k = Tensor::new(values, &Device::Cpu)
            .unwrap()
            .reshape((values.len(), 1, 1, 1))
            .unwrap();
        s.begin_step().unwrap();
        s.append_self_kv(0, &k, &k.neg().unwrap()).unwrap();
        let (k, v) = s.self_kv(0).unwrap().gather().unwrap();
        s.end_step();
        (flat(&k), flat(&v))
    }

    #[test]
    fn steps_append_and_beams_follow_their_sources_without_copies() {
        let mut s = state();
        assert_eq!(step(&mut s, &[1., 2.]).0, vec![1., 2.]);
        assert_eq!(step(&mut s, &[3., 4.]).0, vec![1., 3., 2., 4.]);
        // Both rows continue row 1; the next step's own keys land after row 1's history.
        s.reorder_beams(&[1, 1]).unwrap();
        let (k, v) = step(&mut s, &[7., 8.]);
        assert_eq!(k, vec![2., 4., 7., 2., 4., 8.]);
        assert_eq!(v, vec![-2., -4., -7., -2., -4., -8.]);
        // The encoder side never moved.
        assert_eq!(flat(&s.layers[0].cross_kv.0), vec![5., 6.]);
    }

    #[test]
    fn buffers_grow_past_their_first_capacity() {
        let mut s = state();
        for i in 0..INITIAL_CAPACITY + 3 {
            step(&mut s, &[i as f32, -(i as f32)]);
        }
        let (k, _) = step(&mut s, &[100., 200.]);
        assert_eq!(k.len(), 2 * (INITIAL_CAPACITY + 4));
        assert_eq!(k[INITIAL_CAPACITY + 2], (INITIAL_CAPACITY + 2) as f32);
        assert_eq!(k[INITIAL_CAPACITY + 3], 100.);
    }

    /// Slots the layer's buffers hold.
    fn capacity(s: &DecoderState) -> usize {
        s.layers[0].self_kv.as_ref().unwrap().k.dim(1).unwrap()
    }

    #[test]
    fn a_plan_sizes_the_buffers_once_and_changes_no_value() {
        // 100 steps: doubling grows at 64 (and ends at 128).
        let (mut planned, mut doubling) = (state(), state());
        planned.plan_steps(100);
        for i in 0..100 {
            let values = [i as f32, 1000. + i as f32];
            assert_eq!(step(&mut planned, &values), step(&mut doubling, &values));
            assert_eq!(capacity(&planned), 100, "step {i}");
        }
        assert_eq!(capacity(&doubling), 128);
    }

    #[test]
    fn a_plan_past_its_limit_or_too_short_still_grows() {
        let mut huge = state();
        huge.plan_steps(1_000_000);
        step(&mut huge, &[1., 2.]);
        assert_eq!(capacity(&huge), PLANNED_CAPACITY);
        // A plan the rows outgrow (a wrong estimate) gives way to doubling, keeping every value.
        let mut short = state();
        short.plan_steps(2);
        let mut keys = step(&mut short, &[0., 10.]).0;
        assert_eq!(capacity(&short), 2);
        for i in 1..5 {
            keys = step(&mut short, &[i as f32, 10. + i as f32]).0;
        }
        assert_eq!(capacity(&short), INITIAL_CAPACITY);
        assert_eq!(keys, [0., 1., 2., 3., 4., 10., 11., 12., 13., 14.]);
    }

    #[test]
    fn beams_expand_only_before_the_first_step_and_reorders_are_checked() {
        let mut s = state();
        s.expand_beams(3).unwrap();
        assert_eq!((s.beams, s.decoder_rows().unwrap()), (3, 6));
        assert!(s.reorder_beams(&[0, 1]).is_err());
        assert!(s.reorder_beams(&[0, 1, 2, 3, 4, 6]).is_err());
        step(&mut s, &[1., 2., 3., 4., 5., 6.]);
        assert!(s.expand_beams(2).is_err());
    }

    #[test]
    fn reading_the_cache_without_begin_step_is_an_error_not_a_panic() {
        let mut s = state();
        let k = Tensor::zeros((2, 1, 1, 1), DType::F32, &Device::Cpu).unwrap();
        assert!(s.self_kv(0).is_err());
        s.append_self_kv(0, &k, &k).unwrap();
        assert!(s.self_kv(0).is_err());
    }

    #[test]
    fn padding_bias_blocks_padded_keys() {
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu).unwrap();
        let bias = padding_bias(&mask, DType::F32).unwrap();
        assert_eq!(bias.dims(), &[1, 1, 1, 3]);
        let values = flat(&bias);
        assert_eq!(&values[..2], &[0., 0.]);
        assert_eq!(values[2], f32::MIN);
    }
}
