//! Growing and shrinking a [`DecoderState`] between decoder steps, for continuous batching.
//!
//! Inputs join a running batch with [`DecoderState::join`] and leave with
//! [`DecoderState::retain_inputs`]: the encoder side (cross-attention keys/values, padding mask)
//! is padded or trimmed to the longest input, and the self-attention buffers gain or lose rows.
//! All rows write the same slot each step, so a row that joins at slot `s` has its first token
//! there; [`DecoderState::self_attention_bias`] hides slots before `s` from it, which leaves its
//! attention exactly what it would be alone (masked keys weigh exactly 0), and
//! [`DecoderState::row_positions`] gives the positions it embeds. Slots no live row can see are
//! dropped when rows leave, so the buffers stay as long as the longest live sequence.
//!
//! Joining and leaving copy the whole state (every layer's cross-attention keys/values and
//! self-attention buffers), which costs a decoder step or so at a full batch. So a caller that
//! has inputs to join where others just left can [`DecoderState::fill`] their places instead:
//! only the new inputs' encoder side is written, into the rows of the inputs that left. A
//! filled row starts at the current slot too, and no rows leave, so a fill also drops the slots
//! no row sees once they are half of them.

use candle_core::{Result, Tensor};

use super::{DecoderState, SelfKv, padding_bias};

/// Fewer stale slots than this are left alone: dropping them would copy more often than it saves.
const MIN_STALE_SLOTS: usize = 32;

impl DecoderState {
    /// Per decoder row: how many tokens it has decoded, i.e. the position of its next token.
    pub fn row_positions(&self) -> Vec<u32> {
        self.starts
            .iter()
            .flat_map(|&start| std::iter::repeat_n((self.position - start) as u32, self.beams))
            .collect()
    }

    /// Encoder positions every input is padded to (the longest input's).
    pub fn encoder_width(&self) -> usize {
        self.encoder_mask.dims().get(1).copied().unwrap_or(0)
    }

    /// Whether every row started at the first slot, so positions are shared and no slot needs
    /// hiding (always the case for a batch that never had rows join).
    pub fn rows_aligned(&self) -> bool {
        self.starts.iter().all(|&start| start == 0)
    }

    /// The additive bias `(rows, 1, 1, position + 1)` hiding from each row the slots before it
    /// joined, for the step about to run; `None` when every row started at the first slot.
    pub fn self_attention_bias(&self) -> Result<Option<Tensor>> {
        if self.rows_aligned() {
            return Ok(None);
        }
        let keys = self.position + 1;
        let visible: Vec<u32> = self
            .starts
            .iter()
            .flat_map(|&start| std::iter::repeat_n(start, self.beams))
            .flat_map(|start| (0..keys).map(move |slot| u32::from(slot >= start)))
            .collect();
        let rows = visible.len() / keys;
        let mask = Tensor::from_vec(visible, (rows, keys), self.encoder_bias.device())?;
        padding_bias(&mask, self.encoder_bias.dtype()).map(Some)
    }

    /// Adds the inputs of `other`, a state over a freshly encoded batch (no step decoded yet, its
    /// beams expanded like this one's), after this state's inputs. Their rows start at the next
    /// slot; encoder outputs and masks are padded to the longer of the two.
    pub fn join(&mut self, other: DecoderState) -> Result<()> {
        if self.inputs() == 0 {
            *self = other;
            return Ok(());
        }
        self.check_joinable(&other)?;
        let (old_rows, new_rows) = (self.decoder_rows()?, other.decoder_rows()?);
        let width = self.encoder_mask.dim(1)?.max(other.encoder_mask.dim(1)?);
        let widen = |t: &Tensor, dim: usize| -> Result<Tensor> {
            let missing = width - t.dim(dim)?;
            if missing == 0 {
                Ok(t.clone())
            } else {
                t.pad_with_zeros(dim, 0, missing)
            }
        };
        for (mine, theirs) in self.layers.iter_mut().zip(other.layers) {
            let (k, v) = &mine.cross_kv;
            let (their_k, their_v) = &theirs.cross_kv;
            mine.cross_kv = (
                Tensor::cat(&[widen(k, 2)?, widen(their_k, 2)?], 0)?,
                Tensor::cat(&[widen(v, 2)?, widen(their_v, 2)?], 0)?,
            );
            if let Some(kv) = &mut mine.self_kv {
                *kv = SelfKv {
                    k: with_zero_rows(&kv.k, new_rows)?,
                    v: with_zero_rows(&kv.v, new_rows)?,
                };
            }
        }
        self.encoder_mask = Tensor::cat(
            &[
                widen(&self.encoder_mask, 1)?,
                widen(&other.encoder_mask, 1)?,
            ],
            0,
        )?;
        self.encoder_bias = padding_bias(&self.encoder_mask, self.encoder_bias.dtype())?;
        // The slots before a new row's start are hidden; point them at its own (zero) buffer row.
        let filled = self.position;
        self.buffer_rows.extend(
            (old_rows..old_rows + new_rows).flat_map(|r| std::iter::repeat_n(r as u32, filled)),
        );
        self.encoder_lens.extend(other.encoder_lens);
        self.starts
            .extend(std::iter::repeat_n(self.position, other.starts.len()));
        Ok(())
    }

    /// Per encoded input: encoder positions up to its last real token.
    pub fn input_lens(&self) -> &[usize] {
        &self.encoder_lens
    }

    /// [`Self::join`] without copying this state where inputs left: the inputs of `other` (a
    /// fresh state, as for a join) take the places of the inputs `vacant` (ascending indices of
    /// inputs that left, whose rows nothing reads any more), in order, and those beyond the
    /// vacancies join after this state's inputs. A new input's encoder side is written into
    /// its place and its self-attention rows are zeroed and start at the next slot, so it is
    /// in exactly the state a join would have left it in, at another index; the other inputs
    /// are not touched unless `other` is wider (then the encoder side is padded, a copy).
    /// Returns the index each input of `other` got, in order. On an error the inputs that
    /// stayed are intact and every vacancy may be dropped.
    pub fn fill(&mut self, vacant: &[usize], mut other: DecoderState) -> Result<Vec<usize>> {
        let inputs = self.inputs();
        let placed = vacant.len().min(other.inputs());
        if placed == 0 {
            self.join(other)?;
            return Ok((inputs..self.inputs()).collect());
        }
        self.check_joinable(&other)?;
        if vacant.windows(2).any(|w| w[0] >= w[1]) || vacant[vacant.len() - 1] >= inputs {
            candle_core::bail!("cannot fill inputs {vacant:?} of {inputs}: need ascending indices");
        }
        let rest = other.split_off_fresh(placed)?;
        let width = self.encoder_width().max(other.encoder_width());
        self.widen(width)?;
        other.widen(width)?;
        let slots = &vacant[..placed];
        let beams = self.beams;
        let mut zeros: Option<Tensor> = None;
        for (mine, theirs) in self.layers.iter_mut().zip(&other.layers) {
            let (k, v) = &mine.cross_kv;
            let (their_k, their_v) = &theirs.cross_kv;
            for (j, &slot) in slots.iter().enumerate() {
                k.slice_set(&their_k.narrow(0, j, 1)?.contiguous()?, 0, slot)?;
                v.slice_set(&their_v.narrow(0, j, 1)?.contiguous()?, 0, slot)?;
            }
            let Some(kv) = &mine.self_kv else { continue };
            let (_, capacity, heads, head_dim) = kv.k.dims4()?;
            let shape = (beams, capacity, heads, head_dim);
            // Every layer's buffers grow together, so one block of zeros usually serves all.
            let zeros: &Tensor = match zeros.take() {
                Some(z) if z.dims() == [beams, capacity, heads, head_dim] => zeros.insert(z),
                _ => zeros.insert(Tensor::zeros(shape, kv.k.dtype(), kv.k.device())?),
            };
            for &slot in slots {
                kv.k.slice_set(zeros, 0, slot * beams)?;
                kv.v.slice_set(zeros, 0, slot * beams)?;
            }
        }
        for (j, &slot) in slots.iter().enumerate() {
            let row = other.encoder_mask.narrow(0, j, 1)?.contiguous()?;
            self.encoder_mask.slice_set(&row, 0, slot)?;
        }
        self.encoder_bias = padding_bias(&self.encoder_mask, self.encoder_bias.dtype())?;
        // As in a join: slots before a new row's start point at its own (zeroed) buffer row.
        let filled = self.position;
        for (j, &slot) in slots.iter().enumerate() {
            for row in slot * beams..(slot + 1) * beams {
                self.buffer_rows[row * filled..(row + 1) * filled].fill(row as u32);
            }
            self.encoder_lens[slot] = other.encoder_lens[j];
            self.starts[slot] = self.position;
        }
        let mut places = slots.to_vec();
        if let Some(rest) = rest {
            let first = self.inputs();
            self.join(rest)?;
            places.extend(first..self.inputs());
        }
        // Filling is the only way slots go stale: filtering drops them as it copies.
        self.trim_stale_slots()?;
        Ok(places)
    }

    /// Whether `other` can join this state: fresh, of the same beams and model.
    fn check_joinable(&self, other: &DecoderState) -> Result<()> {
        if other.position != 0 || other.beams != self.beams {
            candle_core::bail!(
                "only a fresh state with {} beams can join (got position {}, {} beams)",
                self.beams,
                other.position,
                other.beams
            );
        }
        if other.layers.len() != self.layers.len() {
            candle_core::bail!("states of different models cannot join");
        }
        Ok(())
    }

    /// Pads the encoder side to `width` positions (a copy; nothing when it is that wide).
    fn widen(&mut self, width: usize) -> Result<()> {
        let missing = width.saturating_sub(self.encoder_width());
        if missing == 0 {
            return Ok(());
        }
        for layer in &mut self.layers {
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (
                k.pad_with_zeros(2, 0, missing)?,
                v.pad_with_zeros(2, 0, missing)?,
            );
        }
        self.encoder_mask = self.encoder_mask.pad_with_zeros(1, 0, missing)?;
        self.encoder_bias = padding_bias(&self.encoder_mask, self.encoder_bias.dtype())?;
        Ok(())
    }

    /// Splits a fresh state (no step decoded) after its first `at` inputs: keeps those, returns
    /// the others (`None` when there are none). Nothing is copied.
    fn split_off_fresh(&mut self, at: usize) -> Result<Option<DecoderState>> {
        let inputs = self.inputs();
        if self.position != 0 || at > inputs {
            candle_core::bail!(
                "cannot split {inputs} inputs at step {} after {at}",
                self.position
            );
        }
        if at == inputs {
            return Ok(None);
        }
        let tail = |t: &Tensor| t.narrow(0, at, inputs - at);
        let head = |t: &Tensor| t.narrow(0, 0, at);
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &mut self.layers {
            let (k, v) = &layer.cross_kv;
            layers.push(super::LayerCache {
                self_kv: None,
                cross_kv: (tail(k)?, tail(v)?),
            });
            layer.cross_kv = (head(k)?, head(v)?);
        }
        let rest = DecoderState {
            layers,
            encoder_bias: tail(&self.encoder_bias)?,
            position: 0,
            beams: self.beams,
            buffer_rows: Vec::new(),
            encoder_mask: tail(&self.encoder_mask)?,
            encoder_lens: self.encoder_lens.split_off(at),
            starts: self.starts.split_off(at),
            planned_slots: self.planned_slots,
        };
        self.encoder_bias = head(&self.encoder_bias)?;
        self.encoder_mask = head(&self.encoder_mask)?;
        Ok(Some(rest))
    }

    /// Keeps only the encoded inputs `keep` (ascending indices, at least one) and their decoder
    /// rows, in that order. The encoder side is trimmed to the longest kept input and slots that
    /// no kept row can see are dropped.
    pub fn retain_inputs(&mut self, keep: &[usize]) -> Result<()> {
        let inputs = self.inputs();
        if keep.is_empty()
            || keep.windows(2).any(|w| w[0] >= w[1])
            || keep[keep.len() - 1] >= inputs
        {
            candle_core::bail!("cannot keep inputs {keep:?} of {inputs}: need ascending indices");
        }
        if keep.len() == inputs {
            return Ok(());
        }
        let device = self.encoder_mask.device().clone();
        let index = Tensor::from_vec(
            keep.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            keep.len(),
            &device,
        )?;
        let rows: Vec<usize> = keep
            .iter()
            .flat_map(|&i| i * self.beams..(i + 1) * self.beams)
            .collect();
        let shift = keep.iter().map(|&i| self.starts[i]).min().unwrap_or(0);
        self.keep_rows(&rows, shift)?;
        let width = keep
            .iter()
            .map(|&i| self.encoder_lens[i])
            .max()
            .unwrap_or(0);
        let trim = |t: &Tensor, dim: usize| {
            t.index_select(&index, 0)?
                .narrow(dim, 0, width.max(1))?
                .contiguous()
        };
        for layer in &mut self.layers {
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (trim(k, 2)?, trim(v, 2)?);
        }
        self.encoder_mask = trim(&self.encoder_mask, 1)?;
        self.encoder_bias = padding_bias(&self.encoder_mask, self.encoder_bias.dtype())?;
        self.encoder_lens = keep.iter().map(|&i| self.encoder_lens[i]).collect();
        self.starts = keep.iter().map(|&i| self.starts[i] - shift).collect();
        self.position -= shift;
        Ok(())
    }

    /// Slots no row can see: every input started after them (the inputs that were there
    /// before have left, and their places were filled in place).
    fn stale_slots(&self) -> usize {
        self.starts.iter().copied().min().unwrap_or(0)
    }

    /// Drops the slots no row can see once they are at least half of those filled (and at
    /// least [`MIN_STALE_SLOTS`]); returns whether it did. Rows that fill a vacancy join at
    /// the current slot while the batch keeps running, so without this the slots would grow
    /// for as long as it runs: every step rebuilds per-row tables and biases over all of them, a fill zeroes
    /// its rows' buffers at their whole capacity, and the buffers keep doubling. Dropping
    /// copies the slots still seen, at most as many as the slots dropped, so it costs less
    /// than a slot's copy per step. Positions, distances and what each row sees stay as they
    /// are: only slot numbers change.
    fn trim_stale_slots(&mut self) -> Result<bool> {
        let stale = self.stale_slots();
        if stale < MIN_STALE_SLOTS || stale * 2 < self.position {
            return Ok(false);
        }
        let rows: Vec<usize> = (0..self.decoder_rows()?).collect();
        self.keep_rows(&rows, stale)?;
        self.starts.iter_mut().for_each(|start| *start -= stale);
        self.position -= stale;
        Ok(true)
    }

    /// The self-attention side of [`Self::retain_inputs`]: keep decoder `rows` (each input's
    /// rows whole) and drop the first `shift` slots.
    fn keep_rows(&mut self, rows: &[usize], shift: usize) -> Result<()> {
        let filled = self.position;
        let mut new_index = vec![u32::MAX; self.decoder_rows()?];
        for (new, &old) in rows.iter().enumerate() {
            new_index[old] = new as u32;
        }
        let mut table = Vec::with_capacity(rows.len() * (filled - shift));
        for &row in rows {
            for &source in &self.buffer_rows[row * filled + shift..(row + 1) * filled] {
                match new_index.get(source as usize) {
                    Some(&new) if new != u32::MAX => table.push(new),
                    // Beam search only continues an input's own beams, so this cannot happen
                    // unless a caller reordered rows across inputs.
                    _ => candle_core::bail!("a kept row continues a dropped row {source}"),
                }
            }
        }
        self.buffer_rows = table;
        // Slot numbers move down by `shift`, the plan's with them.
        self.planned_slots = self.planned_slots.map(|slots| slots.saturating_sub(shift));
        let device = self.encoder_mask.device().clone();
        let index = Tensor::from_vec(
            rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
            rows.len(),
            &device,
        )?;
        let capacity = self.capacity_for(filled - shift);
        for layer in &mut self.layers {
            if let Some(kv) = &mut layer.self_kv {
                *kv = SelfKv {
                    k: keep_buffer_rows(&kv.k, &index, shift, filled, capacity)?,
                    v: keep_buffer_rows(&kv.v, &index, shift, filled, capacity)?,
                };
            }
        }
        Ok(())
    }
}

/// `buffer` `(rows, capacity, heads, head_dim)` with `extra` rows of zeros after its own.
fn with_zero_rows(buffer: &Tensor, extra: usize) -> Result<Tensor> {
    let (_, capacity, heads, head_dim) = buffer.dims4()?;
    let zeros = Tensor::zeros(
        (extra, capacity, heads, head_dim),
        buffer.dtype(),
        buffer.device(),
    )?;
    Tensor::cat(&[buffer, &zeros], 0)
}

/// The buffer rows `index` of `buffer`, without the first `shift` of its `filled` slots, in
/// buffers of `capacity` slots when anything shifts.
fn keep_buffer_rows(
    buffer: &Tensor,
    index: &Tensor,
    shift: usize,
    filled: usize,
    capacity: usize,
) -> Result<Tensor> {
    if shift == 0 {
        return buffer.index_select(index, 0);
    }
    let (_, _, heads, head_dim) = buffer.dims4()?;
    let rows = index.dim(0)?;
    let live = filled - shift;
    let moved = Tensor::zeros(
        (rows, capacity, heads, head_dim),
        buffer.dtype(),
        buffer.device(),
    )?;
    if live > 0 {
        // Only the slots still seen are gathered, not the buffers' whole capacity.
        let kept = buffer
            .narrow(1, shift, live)?
            .contiguous()?
            .index_select(index, 0)?;
        moved.slice_set(&kept, 1, 0)?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::super::INITIAL_CAPACITY;
    use super::*;

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// A fresh state over inputs whose encoder "outputs" are their real tokens (one layer, one
    /// head of width 1): row `i` holds `lens[i]` values `10 * (i + 1) + p`, then padding.
    fn fresh(first: usize, lens: &[usize]) -> DecoderState {
        let width = lens.iter().copied().max().unwrap();
        let mut cross = Vec::new();
        let mut mask = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            for p in 0..width {
                let real = p < len;
                cross.push(if real {
                    (10 * (first + i + 1) + p) as f32
                } else {
                    0.
                });
                mask.push(u32::from(real));
            }
        }
        let rows = lens.len();
        let cross = Tensor::from_vec(cross, (rows, 1, width, 1), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(mask, (rows, width), &Device::Cpu).unwrap();
        DecoderState::new(vec![(cross.clone(), cross)], &mask, DType::F32).unwrap()
    }

    /// One step writing `values` (one per row) as keys; returns each row's visible keys.
    fn step(s: &mut DecoderState, values: &[f32]) -> Vec<Vec<f32>> {
        let k = Tensor::new(values, &Device::Cpu)
            .unwrap()
            .reshape((values.len(), 1, 1, 1))
            .unwrap();
        let bias = s.self_attention_bias().unwrap().map(|b| flat(&b));
        s.begin_step().unwrap();
        s.append_self_kv(0, &k, &k).unwrap();
        let (keys, _) = s.self_kv(0).unwrap().gather().unwrap();
        s.end_step();
        let keys = flat(&keys);
        let per_row = keys.len() / values.len();
        keys.chunks(per_row)
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .filter(|(slot, _)| bias.as_ref().is_none_or(|b| b[r * per_row + slot] == 0.))
                    .map(|(_, &x)| x)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_joined_row_sees_only_its_own_keys_and_the_others_are_untouched() {
        let mut s = fresh(0, &[2]);
        step(&mut s, &[1.]);
        step(&mut s, &[2.]);
        s.join(fresh(1, &[3])).unwrap();
        assert_eq!(s.row_positions(), vec![2, 0]);
        assert_eq!(
            step(&mut s, &[3., 100.]),
            vec![vec![1., 2., 3.], vec![100.]]
        );
        assert_eq!(
            step(&mut s, &[4., 101.]),
            vec![vec![1., 2., 3., 4.], vec![100., 101.]]
        );
        // The encoder side was padded to the longer input, and the padding is masked.
        assert_eq!(
            flat(&s.layers[0].cross_kv.0),
            vec![10., 11., 0., 20., 21., 22.]
        );
        let bias = flat(&s.encoder_bias);
        assert_eq!((bias[1], bias[2], bias[5]), (0., f32::MIN, 0.));
    }

    #[test]
    fn leaving_drops_rows_unseen_slots_and_encoder_padding() {
        let mut s = fresh(0, &[3]);
        step(&mut s, &[1.]);
        s.join(fresh(1, &[1, 2])).unwrap();
        step(&mut s, &[2., 50., 70.]);
        s.retain_inputs(&[2]).unwrap();
        // Only the last input is left: its first slot is now slot 0 and nothing is hidden.
        assert_eq!((s.inputs(), s.position, s.row_positions()), (1, 1, vec![1]));
        assert!(s.rows_aligned());
        assert_eq!(step(&mut s, &[71.]), vec![vec![70., 71.]]);
        assert_eq!(flat(&s.layers[0].cross_kv.0), vec![30., 31.]);
        assert_eq!(flat(&s.encoder_bias), vec![0., 0.]);
    }

    #[test]
    fn a_plan_moves_with_the_slots_when_rows_leave() {
        // The first input is planned 10 slots; the second joins at slot 1 for its own 6 steps.
        let mut s = fresh(0, &[3]);
        s.plan_steps(10);
        step(&mut s, &[1.]);
        s.join(fresh(1, &[1])).unwrap();
        s.plan_steps(6);
        step(&mut s, &[2., 50.]);
        // The first leaves: slot 1 becomes slot 0, and the buffers, copied, hold the 6 slots the
        // second can fill (its own 6 steps from slot 0), not 10 or a doubling's 64.
        s.retain_inputs(&[1]).unwrap();
        let capacity = s.layers[0].self_kv.as_ref().unwrap().k.dim(1).unwrap();
        assert_eq!((s.position, capacity), (1, 6));
        assert_eq!(step(&mut s, &[51.]), vec![vec![50., 51.]]);
    }

    #[test]
    fn beams_leave_with_their_input_after_reordering() {
        let mut s = fresh(0, &[1, 1]);
        s.expand_beams(2).unwrap();
        step(&mut s, &[1., 2., 3., 4.]);
        // Input 1's beams swap; input 0 then leaves.
        s.reorder_beams(&[0, 1, 3, 2]).unwrap();
        s.retain_inputs(&[1]).unwrap();
        assert_eq!(step(&mut s, &[5., 6.]), vec![vec![4., 5.], vec![3., 6.]]);
        // A reorder across inputs cannot be kept apart.
        let mut s = fresh(0, &[1, 1]);
        step(&mut s, &[1., 2.]);
        s.reorder_beams(&[1, 1]).unwrap();
        assert!(s.retain_inputs(&[1]).is_ok());
        let mut s = fresh(0, &[1, 1]);
        step(&mut s, &[1., 2.]);
        s.reorder_beams(&[0, 0]).unwrap();
        assert!(s.retain_inputs(&[1]).is_err());
    }

    #[test]
    fn a_filled_place_holds_what_a_join_would_and_the_others_are_untouched() {
        let mut s = fresh(0, &[2, 3]);
        step(&mut s, &[1., 2.]);
        step(&mut s, &[3., 4.]);
        // Input 0 left; a fresh input takes its place, starting at the next slot.
        assert_eq!(s.fill(&[0], fresh(5, &[1])).unwrap(), vec![0]);
        assert_eq!((s.inputs(), s.row_positions()), (2, vec![0, 2]));
        assert_eq!(
            step(&mut s, &[100., 5.]),
            vec![vec![100.], vec![2., 4., 5.]]
        );
        assert_eq!(
            flat(&s.layers[0].cross_kv.0),
            vec![60., 0., 0., 20., 21., 22.]
        );
        // One vacancy, two fresh inputs: the first fills it, the wider second joins after.
        assert_eq!(s.fill(&[1], fresh(7, &[1, 4])).unwrap(), vec![1, 2]);
        assert_eq!(s.row_positions(), vec![1, 0, 0]);
        assert_eq!(s.input_lens(), &[1, 1, 4]);
        assert_eq!(
            step(&mut s, &[101., 200., 300.]),
            vec![vec![100., 101.], vec![200.], vec![300.]]
        );
        assert_eq!(
            flat(&s.layers[0].cross_kv.0),
            vec![60., 0., 0., 0., 80., 0., 0., 0., 90., 91., 92., 93.]
        );
        let bias = flat(&s.encoder_bias);
        assert_eq!((bias[4], bias[5], bias[11]), (0., f32::MIN, 0.));
        // Vacancies must be ascending indices of the state's inputs.
        assert!(s.fill(&[3], fresh(9, &[1])).is_err());
        assert!(s.fill(&[1, 0], fresh(9, &[1, 1])).is_err());
        assert_eq!(s.inputs(), 3);
    }

    #[test]
    fn bad_joins_and_keeps_are_errors() {
        let mut s = fresh(0, &[1, 1]);
        let mut used = fresh(2, &[1]);
        step(&mut used, &[1.]);
        assert!(s.join(used).is_err());
        let mut beamed = fresh(2, &[1]);
        beamed.expand_beams(2).unwrap();
        assert!(s.join(beamed).is_err());
        for keep in [&[][..], &[1, 0], &[0, 0], &[2]] {
            assert!(s.retain_inputs(keep).is_err(), "{keep:?}");
        }
    }

    /// One step of two inputs of one row each, writing the next values, checking that every
    /// row sees exactly what was written since it joined.
    fn step_both(s: &mut DecoderState, expected: &mut [Vec<f32>], next: &mut f32) {
        let values = [*next, *next + 0.5];
        *next += 1.;
        expected[0].push(values[0]);
        expected[1].push(values[1]);
        assert_eq!(step(s, &values), expected);
    }

    /// Two inputs decode side by side; input 0 leaves after `first` steps and a fresh input
    /// fills its place, then input 1 leaves after `second` more and another fills its place.
    fn both_replaced(first: usize, second: usize) -> (DecoderState, Vec<Vec<f32>>, f32) {
        let mut s = fresh(0, &[1, 1]);
        let mut expected = vec![Vec::new(), Vec::new()];
        let mut next = 0.;
        for _ in 0..first {
            step_both(&mut s, &mut expected, &mut next);
        }
        // Input 1 still sees slot 0, so nothing is stale.
        s.fill(&[0], fresh(5, &[1])).unwrap();
        expected[0].clear();
        assert_eq!((s.stale_slots(), s.trim_stale_slots().unwrap()), (0, false));
        for _ in 0..second {
            step_both(&mut s, &mut expected, &mut next);
        }
        s.fill(&[1], fresh(6, &[1])).unwrap();
        expected[1].clear();
        (s, expected, next)
    }

    #[test]
    fn slots_nobody_sees_are_dropped_once_they_are_half_of_them() {
        // The first MIN_STALE_SLOTS slots are stale once input 1 leaves, half of those filled,
        // and the fill drops them.
        let (mut s, mut expected, mut next) = both_replaced(MIN_STALE_SLOTS, MIN_STALE_SLOTS);
        assert_eq!((s.position, s.stale_slots()), (MIN_STALE_SLOTS, 0));
        // Each row sees what it saw, at the same positions: input 0 has decoded
        // MIN_STALE_SLOTS tokens, the input just filled none.
        assert_eq!(s.row_positions(), [MIN_STALE_SLOTS as u32, 0]);
        for _ in 0..3 {
            step_both(&mut s, &mut expected, &mut next);
        }
        // Stale slots fewer than half of those filled are kept.
        let (mut s, mut expected, mut next) = both_replaced(MIN_STALE_SLOTS, MIN_STALE_SLOTS + 8);
        assert_eq!(
            (s.stale_slots(), s.position),
            (MIN_STALE_SLOTS, 2 * MIN_STALE_SLOTS + 8)
        );
        assert!(!s.trim_stale_slots().unwrap());
        for _ in 0..3 {
            step_both(&mut s, &mut expected, &mut next);
        }
        // And fewer than MIN_STALE_SLOTS, even when they are all but one of them.
        let mut s = fresh(0, &[1]);
        for _ in 1..MIN_STALE_SLOTS {
            step(&mut s, &[1.]);
        }
        s.fill(&[0], fresh(1, &[1])).unwrap();
        assert_eq!(s.stale_slots(), MIN_STALE_SLOTS - 1);
        assert!(!s.trim_stale_slots().unwrap());
    }

    #[test]
    fn buffers_keep_growing_after_rows_join_and_leave() {
        let mut s = fresh(0, &[1]);
        for i in 0..INITIAL_CAPACITY - 1 {
            step(&mut s, &[i as f32]);
        }
        s.join(fresh(1, &[1])).unwrap();
        for i in 0..3 {
            step(&mut s, &[0., 1000. + i as f32]);
        }
        s.retain_inputs(&[1]).unwrap();
        let mut last = Vec::new();
        for i in 3..INITIAL_CAPACITY + 5 {
            last = step(&mut s, &[1000. + i as f32]);
        }
        let expected: Vec<f32> = (0..INITIAL_CAPACITY + 5)
            .map(|i| 1000. + i as f32)
            .collect();
        assert_eq!(last, vec![expected]);
    }
}
