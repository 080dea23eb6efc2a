/* summary.c: model.summary() as Keras 2 prints it: the Sequential table (layer, output shape,
 * parameters) and the Functional one, which adds the InputLayers and a "Connected to" column
 * (each input as layer[node][tensor]), as tf.keras 2.15 prints them. A nested model is one row,
 * its parameters summed. */
#include "model.h"
#include <string.h>

static void format_count(char *buf, size_t size, int64_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)n), pos = 0;
    for (int i = 0; i < len && pos + 2 < (int)size; i++) {
        if (i && (len - i) % 3 == 0) buf[pos++] = ',';
        buf[pos++] = digits[i];
    }
    buf[pos] = 0;
}

static void batch_shape_str(kc_shape shape, char *buf, size_t size) {
    /* "(None, 512)": the batch dimension first */
    char inner[64];
    kc_shape_str(shape, inner, sizeof inner);
    snprintf(buf, size, "(None%s%s", shape.rank ? ", " : ")", shape.rank ? inner + 1 : "");
}

static int64_t entry_params(const kc_model *m, const kc_entry *e, int trainable_only) {
    int64_t n = 0;
    for (int i = e->first_layer; i < e->first_layer + e->n_layers; i++) {
        const kc_layer *l = m->layers[i];
        n += trainable_only ? (l->frozen ? 0 : l->trainable_count) : l->param_count;
    }
    return n;
}

/* the output shape of entry e: its last node's output */
static kc_shape entry_shape(const kc_model *m, int e) {
    kc_shape s = {0};
    for (int k = 0; k < m->n_nodes; k++)
        if (m->nodes[k].nest == e && !kc_is_slice(m->nodes[k].layer))
            s = m->tensors[m->nodes[k].out].shape;
    return s;
}

/* entry e's output shapes, as tf.keras 2.15 prints them: "(None, 4)", or for a layer of several
 * outputs a list, an item a line ("[(None, 4),", " (None, 4)]"); returns the lines */
static int entry_shape_lines(const kc_model *m, int e, char lines[][96], int cap) {
    const kc_callrec *call = NULL;
    for (int c = 0; c < m->n_calls && !call; c++)
        if (m->calls[c].entry == e) call = &m->calls[c];
    if (!call || call->n_out == 1 || m->entries[e].model) {
        batch_shape_str(entry_shape(m, e), lines[0], 96);
        return 1;
    }
    int n = call->n_out < cap ? call->n_out : cap;
    for (int o = 0; o < n; o++) {
        char one[80];
        batch_shape_str(m->tensors[call->out[o]].shape, one, sizeof one);
        snprintf(lines[o], 96, "%s%s%s", o ? " " : "[", one, o + 1 == n ? "]" : ",");
    }
    return n;
}

/* "name[node][index]": the call that produced tensor t (Keras's inbound node), or an input */
static void tensor_ref(const kc_model *m, int t, char *buf, size_t size) {
    int index = 0, c = kc_model_call_of(m, t, &index);
    if (c < 0) {
        for (int i = 0; i < m->n_inputs; i++)
            if (m->inputs[i] == t) snprintf(buf, size, "%s[0][0]", m->input_names[i]);
        return;
    }
    snprintf(buf, size, "%s[%d][%d]", m->entries[m->calls[c].entry].layer->name,
             kc_model_call_number(m, c), index);
}

static void row(FILE *out, const char *c1, const char *c2, const char *c3) {
    fprintf(out, "%-29.28s%-26.25s%-10s\n", c1, c2, c3); /* Keras 2's Sequential widths */
}

/* tf.keras 2.15's tables: a line starts with a space, a field leaves two spaces before the
 * next column, a field too long for its column goes on on the next line; the Functional
 * table's columns start at 0, 29, 58 and 68 of 98 */
static void wrow(FILE *out, const int *pos, int n, const char *const *fields) {
    size_t at[4] = {0};
    for (int line = 0;; line++) {
        int more = 0;
        for (int i = 0; i < n; i++) more |= at[i] < strlen(fields[i]) || (line == 0);
        if (!more) return;
        char buf[160] = " ";
        int len = 1;
        for (int i = 0; i < n; i++) {
            /* the line's leading space takes the first column's first place */
            int width = pos[i + 1] - pos[i] - (i == 0), chunk = width - (i + 1 < n ? 2 : 0);
            size_t left = strlen(fields[i]) - at[i];
            int take = left < (size_t)chunk ? (int)left : chunk;
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%.*s%*s", take,
                            fields[i] + at[i], width - take, "");
            at[i] += (size_t)take;
        }
        fprintf(out, "%s\n", buf);
    }
}

static void frow(FILE *out, const char *c1, const char *c2, const char *c3, const char *c4) {
    static const int pos[] = {0, 29, 58, 68, 98};
    wrow(out, pos, 4, (const char *[]){c1, c2, c3, c4});
}

/* "Total params: 64 (256.00 Byte)" */
static void sized_count(char *buf, size_t size, const char *label, int64_t n) {
    char digits[32];
    format_count(digits, sizeof digits, n);
    double bytes = 4.0 * (double)n;
    const char *units[] = {"Byte", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) bytes /= 1024.0, u++;
    snprintf(buf, size, "%s: %s (%.2f %s)", label, digits, bytes, units[u]);
}

/* tf.keras prints a chain (one input, each layer called once on the previous one's output)
 * in the narrow table, without "Connected to" */
static int sequential_like(const kc_model *m) {
    if (m->n_inputs != 1 || m->n_outputs != 1) return 0;
    int prev = m->inputs[0];
    for (int c = 0; c < m->n_calls; c++) {
        /* after a layer of several outputs (return_state), any of them (tf.keras 2.15 looks at
         * the inputs only) */
        int from_prev = m->calls[c].in[0] == prev;
        for (int o = 1; c && o < m->calls[c - 1].n_out; o++)
            from_prev |= m->calls[c].in[0] == m->calls[c - 1].out[o];
        if (m->calls[c].n_in != 1 || !from_prev ||
            (m->calls[c].n_out != 1 && m->entries[m->calls[c].entry].model) ||
            kc_model_call_number(m, c) > 0)
            return 0;
        prev = m->calls[c].out[0];
    }
    return 1;
}

/* the narrow table's row: fields at 0, 29 and 55 of 65 */
static void nrow(FILE *out, const char *c1, const char *c2, const char *c3, const char *unused) {
    static const int pos[] = {0, 29, 55, 65};
    wrow(out, pos, 3, (const char *[]){c1, c2, c3});
}

static kc_status functional_summary(kc_model *m, FILE *out) {
    int narrow = sequential_like(m), width = narrow ? 65 : 98;
    void (*frow_)(FILE *, const char *, const char *, const char *, const char *) = narrow ? nrow : frow;
#define frow frow_
    char rule[99], dbl[99], blank[99];
    memset(rule, '_', (size_t)width);
    memset(dbl, '=', (size_t)width);
    memset(blank, ' ', (size_t)width);
    rule[width] = dbl[width] = blank[width] = 0;
    fprintf(out, "Model: \"%s\"\n%s\n", m->name, rule);
    frow(out, "Layer (type)", "Output Shape", "Param #", "Connected to");
    fprintf(out, "%s\n", dbl);
    char name[128], shape[128], params[32], ref[96], conn[160];
    for (int i = 0; i < m->n_inputs; i++) {
        char inner[96];
        snprintf(name, sizeof name, "%s (InputLayer)", m->input_names[i]);
        batch_shape_str(m->tensors[m->inputs[i]].shape, inner, sizeof inner);
        snprintf(shape, sizeof shape, "[%s]", inner);
        frow(out, name, shape, "0", "[]");
        fprintf(out, "%s\n", blank);
    }
    for (int e = 0; e < m->n_entries; e++) {
        const kc_entry *en = &m->entries[e];
        snprintf(name, sizeof name, "%s (%s)", en->layer->name, en->layer->ops->type_name);
        char shapes[KC_MAX_IO][96];
        int n_shapes = entry_shape_lines(m, e, shapes, KC_MAX_IO);
        snprintf(params, sizeof params, "%lld", (long long)entry_params(m, en, 0));
        /* every call's inputs as one Python list, an item a line, beside the output shapes
         * (several: a list, an item a line) */
        int total = 0, printed = 0, rows = 0;
        for (int c = 0; c < m->n_calls; c++)
            if (m->calls[c].entry == e) total += m->calls[c].n_in;
        for (int c = 0; c < m->n_calls; c++) {
            const kc_callrec *call = &m->calls[c];
            if (call->entry != e) continue;
            for (int i = 0; i < call->n_in; i++) {
                tensor_ref(m, call->in[i], ref, sizeof ref);
                snprintf(conn, sizeof conn, "%s'%s'%s", printed ? " " : "[", ref,
                         printed + 1 == total ? "]" : ",");
                const char *sh = rows < n_shapes ? shapes[rows] : "";
                if (!printed++) frow(out, name, sh, params, conn);
                else frow(out, "", sh, "", conn);
                rows++;
            }
        }
        if (!printed) frow(out, name, shapes[0], params, "[]"), rows++;
        for (; rows < n_shapes; rows++) frow(out, "", shapes[rows], "", "");
        fprintf(out, "%s\n", blank);
    }
    int64_t trainable = 0;
    for (int i = 0; i < m->n_layers; i++)
        trainable += m->layers[i]->frozen ? 0 : m->layers[i]->trainable_count;
    char line[128];
    fprintf(out, "%s\n", dbl);
    sized_count(line, sizeof line, "Total params", m->n_params);
    fprintf(out, "%s\n", line);
    sized_count(line, sizeof line, "Trainable params", trainable);
    fprintf(out, "%s\n", line);
    sized_count(line, sizeof line, "Non-trainable params", m->n_params - trainable);
    fprintf(out, "%s\n%s\n", line, rule);
    return KC_OK;
#undef frow
}

kc_status kc_summary(kc_model *m, FILE *out) {
    kc_status st = kc_model_check_built(m, "kc_summary");
    if (st) return st;
    if (!out) out = stdout;
    if (m->functional) return functional_summary(m, out);
    static const char rule[] = "_________________________________________________________________";
    static const char dbl[] = "=================================================================";
    fprintf(out, "Model: \"%s\"\n%s\n", m->name, rule);
    row(out, "Layer (type)", "Output Shape", "Param #");
    fprintf(out, "%s\n", dbl);
    char name[128], shape[128], params[32];
    for (int e = 0; e < m->n_entries; e++) {
        const kc_entry *en = &m->entries[e];
        snprintf(name, sizeof name, "%s (%s)", en->layer->name, en->layer->ops->type_name);
        batch_shape_str(entry_shape(m, e), shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)entry_params(m, en, 0));
        row(out, name, shape, params);
        fprintf(out, "%s\n", e + 1 < m->n_entries ? rule : dbl);
    }
    int64_t trainable = 0;
    for (int i = 0; i < m->n_layers; i++)
        trainable += m->layers[i]->frozen ? 0 : m->layers[i]->trainable_count;
    char total[32], train[32], frozen[32];
    format_count(total, sizeof total, m->n_params);
    format_count(train, sizeof train, trainable);
    format_count(frozen, sizeof frozen, m->n_params - trainable);
    fprintf(out, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n", total,
            train, frozen, rule);
    return KC_OK;
}
