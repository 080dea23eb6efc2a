/* summary.c: model.summary() as Keras 2 prints it: the Sequential table (layer, output shape,
 * parameters) and the Functional one, which adds the InputLayers and a "Connected to" column
 * (each input as layer[node][tensor]). A nested model is one row, its parameters summed. */
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
        if (m->nodes[k].nest == e) s = m->tensors[m->nodes[k].out].shape;
    return s;
}

/* "name[node][index]" of the entry call that produced tensor t (Keras's inbound node) */
static void tensor_ref(const kc_model *m, int t, char *buf, size_t size) {
    int p = m->tensors[t].producer;
    if (p < 0) {
        for (int i = 0; i < m->n_inputs; i++)
            if (m->inputs[i] == t) snprintf(buf, size, "%s[0][0]", m->input_names[i]);
        return;
    }
    const kc_node *n = &m->nodes[p];
    const kc_entry *e = &m->entries[n->nest];
    int call = 0, index = 0;
    if (e->model) {
        /* which call of the nested model (counted by its first node), which of its outputs */
        int first = -1;
        for (int k = 0; k <= p; k++)
            if (m->nodes[k].nest == n->nest && m->nodes[k].layer == e->model->nodes[0].layer) {
                first = k;
                call++;
            }
        call = call > 0 ? call - 1 : 0;
        (void)first;
        for (int o = 0; o < e->model->n_outputs; o++)
            if (e->model->nodes[e->model->tensors[e->model->outputs[o]].producer].layer == n->layer)
                index = o;
    } else {
        call = n->call;
    }
    snprintf(buf, size, "%s[%d][%d]", e->layer->name, call, index);
}

static void row(FILE *out, int functional, const char *c1, const char *c2, const char *c3,
                const char *c4) {
    if (functional) fprintf(out, "%-32.31s%-22.21s%-12s%s\n", c1, c2, c3, c4);
    else fprintf(out, "%-29.28s%-26.25s%-10s\n", c1, c2, c3); /* Keras 2's Sequential widths */
}

kc_status kc_summary(kc_model *m, FILE *out) {
    kc_status st = kc_model_check_built(m, "kc_summary");
    if (st) return st;
    if (!out) out = stdout;
    int f = m->functional;
    int width = f ? 98 : 65;
    char rule[128], dbl[128];
    memset(rule, '_', (size_t)width);
    memset(dbl, '=', (size_t)width);
    rule[width] = dbl[width] = 0;
    fprintf(out, "Model: \"%s\"\n%s\n", m->name, rule);
    row(out, f, "Layer (type)", "Output Shape", "Param #", "Connected to");
    fprintf(out, "%s\n", dbl);
    char name[128], shape[128], params[32], conn[160];
    int rows = m->n_entries + (f ? m->n_inputs : 0), r = 0;
    if (f)
        for (int i = 0; i < m->n_inputs; i++) {
            snprintf(name, sizeof name, "%s (InputLayer)", m->input_names[i]);
            char inner[96];
            batch_shape_str(m->tensors[m->inputs[i]].shape, inner, sizeof inner);
            snprintf(shape, sizeof shape, "[%s]", inner);
            row(out, 1, name, shape, "0", "[]");
            fprintf(out, "%s\n", ++r < rows ? rule : dbl);
        }
    for (int e = 0; e < m->n_entries; e++) {
        const kc_entry *en = &m->entries[e];
        snprintf(name, sizeof name, "%s (%s)", en->layer->name, en->layer->ops->type_name);
        batch_shape_str(entry_shape(m, e), shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)entry_params(m, en, 0));
        if (!f) {
            row(out, 0, name, shape, params, "");
            fprintf(out, "%s\n", ++r < rows ? rule : dbl);
            continue;
        }
        /* every call's inputs, one per line: the first call of the entry, then the others */
        int printed = 0;
        for (int k = 0; k < m->n_nodes; k++) {
            const kc_node *n = &m->nodes[k];
            if (n->nest != e) continue;
            int first_of_call = en->model ? n->layer == en->model->nodes[0].layer : 1;
            if (!first_of_call) continue;
            for (int i = 0; i < n->n_in; i++) {
                char ref[96];
                int t = n->in[i];
                /* a nested model's inputs are the inputs of its first node in this call */
                tensor_ref(m, t, ref, sizeof ref);
                snprintf(conn, sizeof conn, "['%s']", ref);
                if (!printed++) row(out, 1, name, shape, params, conn);
                else row(out, 1, "", "", "", conn);
            }
        }
        if (!printed) row(out, 1, name, shape, params, "[]");
        fprintf(out, "%s\n", ++r < rows ? rule : dbl);
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
