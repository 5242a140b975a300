/* Memory bandwidth, STREAM style, for scripts/bench.py: how fast can THREADS cores read (and copy)
 * a 1 GiB float32 array? Decoding one token at batch 1 reads every decoder weight once, so the
 * read bandwidth bounds decode speed.
 *
 *   cc -O3 -march=native -ffast-math -fopenmp scripts/membw.c -o membw && OMP_NUM_THREADS=2 ./membw
 *
 * Prints one JSON line: best-of-N GB/s (10^9 bytes/s) for read (sum), copy (counting read + write
 * bytes, as STREAM does) and the thread count.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define BYTES (1UL << 30)
#define REPEATS 7

static double now(void) { return omp_get_wtime(); }

int main(void) {
    size_t n = BYTES / sizeof(float);
    float *a = aligned_alloc(64, BYTES), *b = aligned_alloc(64, BYTES);
    if (!a || !b) {
        fprintf(stderr, "membw: cannot allocate 2 GiB\n");
        return 1;
    }
    /* First touch from the threads that will read, so pages sit where they are used. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)(i & 1023);
        b[i] = 0.0f;
    }
    double best_read = 1e30, best_copy = 1e30, sink = 0.0;
    for (int r = 0; r < REPEATS; r++) {
        double t = now(), sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += a[i];
        t = now() - t;
        sink += sum;
        if (t < best_read) best_read = t;

        t = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) b[i] = a[i];
        t = now() - t;
        sink += b[n / 2];
        if (t < best_copy) best_copy = t;
    }
    printf("{\"read_gbs\": %.2f, \"copy_gbs\": %.2f, \"threads\": %d, \"bytes\": %lu, \"checksum\": %.0f}\n",
           BYTES / best_read / 1e9, 2.0 * BYTES / best_copy / 1e9, omp_get_max_threads(), BYTES, sink);
    free(a);
    free(b);
    return 0;
}
