"""Dumps a hive with python3-hivex as JSON: a list of keys in depth-first order, subkeys in
the order hivex enumerates them (the order of the subkey index), each with its name, last
write, number of subkeys, and values (name, type, hex data)."""
import json
import sys

import hivex

h = hivex.Hivex(sys.argv[1])
out = []


def key(n):
    values = []
    for v in h.node_values(n):
        t, data = h.value_value(v)
        values.append([h.value_key(v), t, data.hex()])
    children = h.node_children(n)
    out.append(
        {
            "name": h.node_name(n),
            "time": h.node_timestamp(n),
            "class": None,
            "sd": None,
            "values": values,
            "subkeys": len(children),
        }
    )
    for c in children:
        key(c)


sys.setrecursionlimit(10000)
key(h.root())
print(json.dumps(out))
