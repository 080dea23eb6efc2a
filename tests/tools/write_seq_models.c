/* write_seq_models.c: the kerac side of tests/check_kerac_saved.sh for the sequence models of
 * tests/fixtures/seq/ (int32 token inputs of None length, Embedding, Masking, masks): loads each
 * from the .keras file Keras 3 wrote (fixed weights, compiled with Adam(0.01), no step taken)
 * and saves it with kc_save as DIR/<name>.keras, DIR/<name>.h5, DIR/<name>.weights.h5 and
 * DIR/<name>.json. Usage: build/tools/write_seq_models DIR */
#include <kerac.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = {"seq_sparse",  "seq_mse",     "emb_flat",
                                    "masking_seq", "merge_masks", "seq_nomask"};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: write_seq_models DIR\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[512], out[512];
        kc_model *m;
        snprintf(in, sizeof in, "tests/fixtures/seq/%s.keras", names[i]);
        if (kc_load(in, &m)) {
            fprintf(stderr, "write_seq_models: %s\n", kc_last_error());
            return 1;
        }
        const char *exts[] = {".keras", ".h5", ".weights.h5"};
        for (int e = 0; e < 3; e++) {
            snprintf(out, sizeof out, "%s/%s%s", argv[1], names[i], exts[e]);
            if (kc_save(m, out)) {
                fprintf(stderr, "write_seq_models: %s\n", kc_last_error());
                return 1;
            }
        }
        char *json = NULL;
        snprintf(out, sizeof out, "%s/%s.json", argv[1], names[i]);
        FILE *f = fopen(out, "w");
        if (kc_model_to_json(m, &json) || !f) {
            fprintf(stderr, "write_seq_models: %s: %s\n", out, kc_last_error());
            if (f) fclose(f);
            return 1;
        }
        fputs(json, f);
        fclose(f);
        free(json);
        kc_model_free(m);
    }
    return 0;
}
