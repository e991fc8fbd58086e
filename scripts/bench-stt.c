// The floor for `hermit transcribe`: whisper.cpp's own C API on the same
// model, clip, threads and parameters, built from the same vendored sources
// and static libraries as hermit-stt (whisper-rs-sys's build). Reads a
// 16 kHz mono 16-bit WAV and prints the milliseconds whisper_full took.
//   bench-stt-c MODEL WAV THREADS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "whisper.h"

static void quiet(enum ggml_log_level level, const char *text, void *data) {
    (void)level; (void)text; (void)data;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL WAV THREADS\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size);
    if (fread(buf, 1, size, f) != (size_t)size) { fprintf(stderr, "short read\n"); return 2; }
    fclose(f);
    // Find the "data" chunk of the RIFF file.
    long at = 12;
    const int16_t *pcm = NULL;
    long n = 0;
    while (at + 8 <= size) {
        uint32_t len = buf[at + 4] | buf[at + 5] << 8 | buf[at + 6] << 16 | (uint32_t)buf[at + 7] << 24;
        if (memcmp(buf + at, "data", 4) == 0) {
            pcm = (const int16_t *)(buf + at + 8);
            n = (long)(len > (uint32_t)(size - at - 8) ? (uint32_t)(size - at - 8) : len) / 2;
            break;
        }
        at += 8 + len + (len & 1);
    }
    if (!pcm) { fprintf(stderr, "no data chunk\n"); return 2; }
    float *samples = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) samples[i] = pcm[i] / 32768.0f;

    whisper_log_set(quiet, NULL);
    struct whisper_context_params cparams = whisper_context_default_params();
    // whisper-rs's defaults, which hermit-stt uses: CPU, no flash attention.
    cparams.use_gpu = false;
    cparams.flash_attn = false;
    struct whisper_context *ctx = whisper_init_from_file_with_params(argv[1], cparams);
    if (!ctx) { fprintf(stderr, "cannot load %s\n", argv[1]); return 2; }
    // The parameters hermit-stt sets (stt/src/main.rs).
    struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.greedy.best_of = 1;
    p.n_threads = atoi(argv[3]);
    p.language = "auto";
    p.print_special = false;
    p.print_progress = false;
    p.print_realtime = false;
    p.print_timestamps = false;
    p.suppress_blank = true;
    double t0 = now_ms();
    if (whisper_full(ctx, p, samples, (int)n) != 0) { fprintf(stderr, "whisper_full failed\n"); return 1; }
    double ms = now_ms() - t0;
    int segments = whisper_full_n_segments(ctx);
    fprintf(stderr, "heard:");
    for (int i = 0; i < segments; i++) fprintf(stderr, "%s", whisper_full_get_segment_text(ctx, i));
    fprintf(stderr, "\n");
    printf("%.0f\n", ms);
    whisper_free(ctx);
    return 0;
}
