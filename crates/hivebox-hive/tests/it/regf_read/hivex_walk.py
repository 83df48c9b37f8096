"""Walks a hive with python3-hivex and prints it as JSON: every key in depth-first order
(subkeys in the order hivex enumerates them) as [path, class, [[value name, type, hex data],
...]], the path being the names from the root down joined by backslashes."""
import json
import sys

import hivex

h = hivex.Hivex(sys.argv[1])
out = []
stack = [(h.root(), h.node_name(h.root()))]
while stack:
    node, path = stack.pop()
    values = []
    for v in h.node_values(node):
        t, data = h.value_value(v)
        values.append([h.value_key(v), t, data.hex()])
    out.append([path, values])
    children = h.node_children(node)
    stack.extend((c, path + "\\" + h.node_name(c)) for c in reversed(children))
print(json.dumps(out))
