/* Time libsais itself (C, no bindings) on a file: the ceiling for any libsais-based tool.
 * Used by benches/sa_ceiling.py. Text and suffix array are put on transparent huge pages
 * when the kernel allows, as gristmill does. Prints: seconds MB/s */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "libsais.h"

static void *alloc_huge(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 1 << 21, n) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    memset(p, 0, n);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE THREADS(0=single-threaded code path)\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *t = alloc_huge((size_t)n);
    int32_t *sa = alloc_huge(4 * (size_t)n);
    if (!t || !sa || fread(t, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "read failed\n"); return 1; }
    int threads = atoi(argv[2]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
#ifdef LIBSAIS_OPENMP
    int r = threads ? libsais_omp(t, sa, (int32_t)n, 0, NULL, threads) : libsais(t, sa, (int32_t)n, 0, NULL);
#else
    int r = libsais(t, sa, (int32_t)n, 0, NULL);
#endif
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (r != 0) { fprintf(stderr, "libsais returned %d\n", r); return 1; }
    printf("%.3f %.2f\n", s, (double)n / 1e6 / s);
    return 0;
}
