"""Dumps a hive with regipy as JSON: a list of the keys in depth-first order as regipy's
RegistryHive walks them (name from the raw nk name, class, last write, security descriptor
bytes, number of subkeys), and each value's name, type and raw data, read through regipy's
vk parser and big-data reassembly."""
import json
import struct
import sys

from construct import Int32ul
from regipy.registry import NKRecord, RegistryHive
from regipy.structs import VALUE_KEY

hive = RegistryHive(sys.argv[1])
BASE = 4096 + 4  # cell offsets count from the end of the base block, plus the cell size


def values(nk):
    s = nk._stream
    out = []
    if not nk.values_count:
        return out
    s.seek(BASE + nk.header.values_list_offset)
    offsets = [Int32ul.parse_stream(s) for _ in range(nk.values_count)]
    for off in offsets:
        s.seek(BASE + off)
        vk = VALUE_KEY.parse_stream(s)
        name = vk.name.decode("latin-1") if vk.flags.VALUE_COMP_NAME else vk.name.decode("utf-16-le")
        if vk.data_size >= 0x80000000:
            data = Int32ul.build(vk.data_offset)[: vk.data_size - 0x80000000]
        else:
            rec = NKRecord.read_value(vk, s)
            if vk.data_size > 0x3FD8 and rec.value[:2] == b"db":
                data = NKRecord._parse_indirect_block(s, rec)
            else:
                data = rec.value
        out.append([name, int(vk.data_type), data.hex()])
    return out


def security(nk):
    s = nk._stream
    s.seek(BASE + nk.header.security_key_offset)
    head = s.read(20)
    assert head[:2] == b"sk", "security cell is not sk"
    return s.read(struct.unpack_from("<I", head, 16)[0]).hex()


out = []


def key(nk):
    raw = nk.header.key_name_string
    name = raw.decode("latin-1") if nk.header.flags.KEY_COMP_NAME else raw.decode("utf-16-le")
    cls = nk.get_class_name() if nk.header.class_name_offset != 0xFFFFFFFF else None
    out.append(
        {
            "name": name,
            "time": nk.header.last_modified,
            "class": cls,
            "sd": security(nk),
            "values": values(nk),
            "subkeys": nk.subkey_count,
        }
    )
    if nk.subkey_count:
        for k in list(nk.iter_subkeys()):
            key(k)


sys.setrecursionlimit(10000)
key(hive.root)
print(json.dumps(out))
