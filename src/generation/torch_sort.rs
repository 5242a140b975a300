//! The order torch's CPU `sort` (unstable, the default) puts a row of scores in, ties included:
//! libstdc++'s `std::sort` on (value, index) pairs (aten/src/ATen/native/cpu/SortingKernel.cpp),
//! reproduced step for step from bits/stl_algo.h and stl_heap.h: introsort with a
//! median-of-three pivot and an unguarded partition, heapsort once the recursion is
//! `2 * floor(log2 n)` deep, then an insertion sort over the whole row. Up to 16 scores that is
//! a plain insertion sort, so ties keep their index order; beyond, they do not.
//!
//! Top-p sampling drops tokens in this order, so which of several tied tokens survives depends
//! on it. `tests/fixtures/golden/warpers.json` records torch's order for tie-heavy rows, two of
//! them built to reach the heapsort fallback.

/// Below this many elements introsort leaves a range to the final insertion sort.
const THRESHOLD: usize = 16;

/// Indices of `scores` in ascending order of score, as `torch.sort(scores)` returns them.
pub fn ascending_order(scores: &[f32]) -> Vec<usize> {
    // torch's KeyValueCompAsc: NaN sorts last, everything else by value.
    let less = |a: usize, b: usize| {
        let (x, y) = (scores[a], scores[b]);
        (!x.is_nan() && y.is_nan()) || x < y
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if !order.is_empty() {
        let depth = 2 * order.len().ilog2() as usize;
        introsort_loop(&mut order, depth, &less);
        final_insertion_sort(&mut order, &less);
    }
    order
}

type Less<'a> = dyn Fn(usize, usize) -> bool + 'a;

fn introsort_loop(v: &mut [usize], mut depth: usize, less: &Less<'_>) {
    let mut last = v.len();
    while last > THRESHOLD {
        if depth == 0 {
            heap_sort(&mut v[..last], less);
            return;
        }
        depth -= 1;
        let cut = partition_pivot(&mut v[..last], less);
        introsort_loop(&mut v[cut..last], depth, less);
        last = cut;
    }
}

/// Moves the median of the second, middle and last elements to the front and partitions the
/// rest around it; returns where the upper part starts.
fn partition_pivot(v: &mut [usize], less: &Less<'_>) -> usize {
    let (a, b, c) = (1, v.len() / 2, v.len() - 1);
    let l = |i: usize, j: usize| less(v[i], v[j]);
    let median = if l(a, b) {
        if l(b, c) {
            b
        } else if l(a, c) {
            c
        } else {
            a
        }
    } else if l(a, c) {
        a
    } else if l(b, c) {
        c
    } else {
        b
    };
    v.swap(0, median);
    let (mut first, mut last) = (1, v.len());
    loop {
        while less(v[first], v[0]) {
            first += 1;
        }
        last -= 1;
        while less(v[0], v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

/// `std::__partial_sort(first, last, last)`: `make_heap`, then `sort_heap`.
fn heap_sort(v: &mut [usize], less: &Less<'_>) {
    let len = v.len();
    if len >= 2 {
        for parent in (0..=(len - 2) / 2).rev() {
            adjust_heap(v, parent, len, v[parent], less);
        }
    }
    for end in (1..len).rev() {
        let value = v[end];
        v[end] = v[0];
        adjust_heap(v, 0, end, value, less);
    }
}

/// `std::__adjust_heap`: sift the hole at `hole` down to a leaf, then push `value` up.
fn adjust_heap(v: &mut [usize], mut hole: usize, len: usize, value: usize, less: &Less<'_>) {
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(v[second], v[second - 1]) {
            second -= 1;
        }
        v[hole] = v[second];
        hole = second;
    }
    if len.is_multiple_of(2) && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v[hole] = v[second - 1];
        hole = second - 1;
    }
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(v[parent], value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

fn final_insertion_sort(v: &mut [usize], less: &Less<'_>) {
    for i in 1..v.len().min(THRESHOLD) {
        if less(v[i], v[0]) {
            v[..=i].rotate_right(1);
        } else {
            linear_insert(v, i, less);
        }
    }
    // Past the first block a smaller element always lies somewhere before (introsort's
    // partitions put it there), so the walk down needs no bound check.
    for i in THRESHOLD..v.len() {
        linear_insert(v, i, less);
    }
}

fn linear_insert(v: &mut [usize], mut last: usize, less: &Less<'_>) {
    let value = v[last];
    while less(value, v[last - 1]) {
        v[last] = v[last - 1];
        last -= 1;
    }
    v[last] = value;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// tests/fixtures/golden/warpers.json (scripts/warper_goldens.py): score vectors, torch's
    /// sort order for some, transformers' kept sets for all.
    pub(crate) fn golden_warpers() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/golden/warpers.json"
        );
        let text = std::fs::read_to_string(path).expect("golden warpers file");
        serde_json::from_str(&text).expect("golden JSON")
    }

    /// The golden score vector `name`, float32; JSON `null` stands for -inf.
    pub(crate) fn golden_vector(golden: &serde_json::Value, name: &str) -> Vec<f32> {
        let values = golden["vectors"][name].as_array().expect("vector");
        let value = |v: &serde_json::Value| v.as_f64().map_or(f32::NEG_INFINITY, |x| x as f32);
        values.iter().map(value).collect()
    }

    fn sorted(scores: &[f32], order: &[usize]) -> bool {
        order.windows(2).all(|w| scores[w[0]] <= scores[w[1]])
    }

    #[test]
    fn short_rows_keep_ties_in_index_order() {
        let scores = [1.0, 0.5, 1.0, 0.5, f32::NEG_INFINITY, 0.5];
        assert_eq!(ascending_order(&scores), [4, 1, 3, 5, 0, 2]);
        assert_eq!(ascending_order(&[]), Vec::<usize>::new());
        assert_eq!(ascending_order(&[3.0]), [0]);
    }

    #[test]
    fn every_row_comes_out_sorted_with_each_index_once() {
        for len in [2, 16, 17, 33, 100, 1000] {
            let scores: Vec<f32> = (0..len).map(|i| ((i * 7919) % 13) as f32).collect();
            let order = ascending_order(&scores);
            assert!(sorted(&scores, &order), "{len}");
            let mut seen = order.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_heapsort_fallback_sorts_too() {
        let scores: Vec<f32> = (0..40).map(|i| ((i * 17) % 5) as f32).collect();
        let mut order: Vec<usize> = (0..40).collect();
        let less = |a: usize, b: usize| scores[a] < scores[b];
        heap_sort(&mut order, &less);
        assert!(sorted(&scores, &order));
    }

    /// torch's own order for tie-heavy rows (scripts/warper_goldens.py), two of them made to
    /// reach the heapsort fallback.
    #[test]
    fn orders_ties_exactly_as_torch_does() {
        let golden = golden_warpers();
        let orders = golden["sort_orders"].as_object().expect("sort orders");
        assert!(orders.len() >= 5);
        for (name, want) in orders {
            let row = golden_vector(&golden, name);
            let want: Vec<usize> = serde_json::from_value(want.clone()).expect("order");
            assert_eq!(ascending_order(&row), want, "{name}");
        }
    }
}
