/* The libhivex side of the benchmark: the same full walk as the Rust walkers (every key's
 * name, every value's name and data), through hivex's C API. */
#include <hivex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hb_counts {
    uint64_t keys;
    uint64_t values;
    uint64_t name_bytes;
    uint64_t data_bytes;
};

static int walk(hive_h *h, hive_node_h node, struct hb_counts *c)
{
    char *name = hivex_node_name(h, node);
    if (name == NULL)
        return -1;
    c->keys++;
    c->name_bytes += strlen(name);
    free(name);

    hive_value_h *values = hivex_node_values(h, node);
    if (values == NULL)
        return -1;
    for (size_t i = 0; values[i] != 0; i++) {
        char *key = hivex_value_key(h, values[i]);
        hive_type type;
        size_t len;
        char *data = hivex_value_value(h, values[i], &type, &len);
        if (key == NULL || data == NULL) {
            free(key);
            free(data);
            free(values);
            return -1;
        }
        c->values++;
        c->name_bytes += strlen(key);
        c->data_bytes += len;
        free(key);
        free(data);
    }
    free(values);

    hive_node_h *children = hivex_node_children(h, node);
    if (children == NULL)
        return -1;
    for (size_t i = 0; children[i] != 0; i++) {
        if (walk(h, children[i], c) != 0) {
            free(children);
            return -1;
        }
    }
    free(children);
    return 0;
}

/* Opens the hive at `path` (reading it and building hivex's cell bitmap). */
hive_h *hb_hivex_open(const char *path)
{
    return hivex_open(path, 0);
}

void hb_hivex_close(hive_h *h)
{
    hivex_close(h);
}

/* Walks the whole hive; 0 on success. */
int hb_hivex_walk(hive_h *h, struct hb_counts *out)
{
    memset(out, 0, sizeof *out);
    return walk(h, hivex_root(h), out);
}
