"""Independent structural check of a regf hive written by hivebox (plain Python, no deps).

Usage: regf_check.py HIVE  ->  prints one JSON object: {"errors": [...], "stats": {...}}.
Checks the base block, the bin chain, that every cell is allocated except a free tail at
the very end, that every allocated cell is reached exactly once from the root (sk cells:
once per referring key, matching the reference count), nk/vk/lh/ri/db/sk fields, lh order
and hashes, the sk list links, and the nk maximum-length fields.
"""
import json
import struct
import sys

d = open(sys.argv[1], "rb").read()
errors = []


def err(msg):
    if len(errors) < 50:
        errors.append(msg)


def u16(o):
    return struct.unpack_from("<H", d, o)[0]


def u32(o):
    return struct.unpack_from("<I", d, o)[0]


# Base block.
if d[0:4] != b"regf":
    err("base block signature")
if u32(4) != u32(8):
    err("sequence numbers differ")
if (u32(20), u32(24), u32(28), u32(32)) != (1, 5, 0, 1):
    err("version/type/format %r" % ((u32(20), u32(24), u32(28), u32(32)),))
csum = 0
for i in range(127):
    csum ^= u32(4 * i)
csum = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(csum, csum)
if csum != u32(508):
    err("checksum")
bins_size = u32(40)
if bins_size + 4096 != len(d) or bins_size % 4096:
    err("bins size %d vs file %d" % (bins_size, len(d)))

# Bins and cells.
cells = {}  # offset -> size (allocated)
free = 0
pos = 0
nbins = 0
while pos < bins_size:
    b = 4096 + pos
    if d[b : b + 4] != b"hbin" or u32(b + 4) != pos:
        err("bad hbin at %#x" % pos)
        break
    size = u32(b + 8)
    if size < 4096 or size % 4096:
        err("hbin size %d at %#x" % (size, pos))
        break
    nbins += 1
    c = pos + 32
    while c < pos + size:
        cs = struct.unpack_from("<i", d, 4096 + c)[0]
        n = abs(cs)
        if n < 8 or n % 8 or c + n > pos + size:
            err("bad cell size %d at %#x" % (cs, c))
            break
        if cs < 0:
            cells[c] = n
        else:
            if c + n != bins_size:
                err("free cell at %#x is not the tail of the last bin" % c)
            free += n
        c += n
    pos += size

seen = {}  # cell offset -> times reached


def cell(off, what):
    if off not in cells:
        err("%s refers to %#x, not an allocated cell" % (what, off))
        return None
    seen[off] = seen.get(off, 0) + 1
    return 4096 + off + 4


def upcase(u):
    if 0xD800 <= u <= 0xDFFF:
        return u
    c = chr(u).upper()
    return ord(c) if len(c) == 1 and ord(c) <= 0xFFFF else u


def units(s):
    b = s.encode("utf-16-le", "surrogatepass")
    return [b[i] | b[i + 1] << 8 for i in range(0, len(b), 2)]


def name_at(o, n, compressed):
    raw = d[o : o + n]
    return raw.decode("latin-1") if compressed else raw.decode("utf-16-le", "surrogatepass")


slack = 0
sk_refs = {}
stats = {"keys": 0, "values": 0, "max_depth": 0}


def need(off, used):
    """Counts the bytes of cell `off` beyond its record (rounded up to 8) as slack."""
    global slack
    used = (used + 7) & ~7
    slack += cells.get(off, used) - used


def sublist(off, what):
    o = cell(off, what)
    if o is None:
        return []
    sig, n = d[o : o + 2], u16(o + 2)
    if sig == b"ri":
        need(off, 8 + 4 * n)
        out = []
        for i in range(n):
            leaf = sublist(u32(o + 4 + 4 * i), what + " ri")
            if len(leaf) > 500:
                err("%s: leaf of %d entries" % (what, len(leaf)))
            out += leaf
        return out
    if sig != b"lh":
        err("%s: subkey list signature %r" % (what, sig))
        return []
    need(off, 8 + 8 * n)
    return [(u32(o + 4 + 8 * i), u32(o + 8 + 8 * i)) for i in range(n)]


def key(off, parent, depth, path):
    o = cell(off, path)
    if o is None:
        return
    stats["keys"] += 1
    stats["max_depth"] = max(stats["max_depth"], depth)
    if d[o : o + 2] != b"nk":
        err("%s: not nk" % path)
        return
    flags = u16(o + 2)
    nlen, clen = u16(o + 72), u16(o + 74)
    need(off, 4 + 76 + nlen)
    name = name_at(o + 76, nlen, flags & 0x20)
    if bool(flags & 0x20) != all(ord(ch) <= 0xFF for ch in name):
        err("%s: KEY_COMP_NAME flag wrong" % path)
    if parent is None:
        if flags & 0xC != 0xC or off != 32:
            err("root flags %#x / offset %#x" % (flags, off))
    elif u32(o + 16) != parent:
        err("%s: parent offset" % path)
    nsub, nval = u32(o + 20), u32(o + 36)
    if u32(o + 24) != 0:
        err("%s: volatile subkeys" % path)
    sk = u32(o + 44)
    if cell(sk, path + " sk") is not None:
        sk_refs[sk] = sk_refs.get(sk, 0) + 1
        seen[sk] -= 1
    if u32(o + 48) != 0xFFFFFFFF:
        co = cell(u32(o + 48), path + " class")
        need(u32(o + 48), 4 + clen)
    elif clen:
        err("%s: class length without class" % path)
    max_vn = max_vd = 0
    if nval:
        lo = cell(u32(o + 40), path + " value list")
        need(u32(o + 40), 4 + 4 * nval)
        for i in range(nval if lo else 0):
            voff = u32(lo + 4 * i)
            vo = cell(voff, path + " vk")
            if vo is None or d[vo : vo + 2] != b"vk":
                err("%s: bad vk" % path)
                continue
            stats["values"] += 1
            vnl, dl, doff, vfl = u16(vo + 2), u32(vo + 4), u32(vo + 8), u16(vo + 16)
            need(voff, 4 + 20 + vnl)
            vname = name_at(vo + 20, vnl, vfl & 1)
            if bool(vfl & 1) != (vnl > 0 and all(ord(ch) <= 0xFF for ch in vname)):
                err("%s: VALUE_COMP_NAME flag wrong for %r" % (path, vname))
            max_vn = max(max_vn, 2 * len(units(vname)))
            n = dl & 0x7FFFFFFF
            max_vd = max(max_vd, n)
            if dl & 0x80000000:
                if n > 4:
                    err("%s: inline data of %d bytes" % (path, n))
            elif n <= 4:
                err("%s: %d bytes not inline" % (path, n))
            elif n <= 16344:
                cell(doff, path + " data")
                need(doff, 4 + n)
            else:
                db = cell(doff, path + " db")
                if db is None or d[db : db + 2] != b"db":
                    err("%s: big data without db" % path)
                    continue
                need(doff, 12)
                nseg = u16(db + 2)
                if nseg != (n + 16343) // 16344:
                    err("%s: %d segments for %d bytes" % (path, nseg, n))
                sl = cell(u32(db + 4), path + " segment list")
                need(u32(db + 4), 4 + 4 * nseg)
                for s in range(nseg):
                    so = u32(sl + 4 * s)
                    cell(so, path + " segment")
                    part = min(16344, n - 16344 * s)
                    size = cells.get(so, 0)
                    if (s < nseg - 1 and size != 16352) or size < 8 + part:
                        err("%s: segment %d cell is %d bytes" % (path, s, size))
                    need(so, 8 + part)
    if (u32(o + 60), u32(o + 64)) != (max_vn, max_vd):
        err("%s: max value name/data %r vs %r" % (path, (u32(o + 60), u32(o + 64)), (max_vn, max_vd)))
    kids = sublist(u32(o + 28), path + " subkeys") if nsub else []
    if len(kids) != nsub:
        err("%s: %d subkeys listed, %d counted" % (path, len(kids), nsub))
    prev = None
    max_n = max_c = 0
    for koff, h in kids:
        ko = 4096 + koff + 4
        kname = name_at(ko + 76, u16(ko + 72), u16(ko + 2) & 0x20)
        up = [upcase(u) for u in units(kname)]
        hh = 0
        for u in up:
            hh = (hh * 37 + u) & 0xFFFFFFFF
        if hh != h:
            err("%s: lh hash of %r" % (path, kname))
        if prev is not None and not prev < up:
            err("%s: subkeys out of order at %r" % (path, kname))
        prev = up
        max_n = max(max_n, 2 * len(up))
        max_c = max(max_c, u16(ko + 74))
        key(koff, off, depth + 1, path + "\\" + kname)
    if (u32(o + 52) & 0xFFFF, u32(o + 56)) != (max_n, max_c):
        err("%s: max name/class %r vs %r" % (path, (u32(o + 52), u32(o + 56)), (max_n, max_c)))


sys.setrecursionlimit(10000)
key(u32(36), None, 0, "")

# The sk list: one circular, doubly-linked list through every sk, reference counts exact,
# no descriptor twice.
root_sk = u32(4096 + u32(36) + 4 + 44)
sks, cur, descs = [], root_sk, set()
while True:
    o = 4096 + cur + 4
    if cur not in cells or d[o : o + 2] != b"sk":
        err("sk list reaches %#x" % cur)
        break
    sks.append(cur)
    size = u32(o + 16)
    need(cur, 24 + size)
    sd = d[o + 20 : o + 20 + size]
    if sd in descs:
        err("descriptor stored twice")
    descs.add(sd)
    if len(sd) < 20 or sd[0] != 1 or not (sd[2] | sd[3] << 8) & 0x8000:
        err("sk %#x: bad descriptor" % cur)
    if u32(o + 12) != sk_refs.get(cur, 0):
        err("sk %#x: refcount %d, %d keys" % (cur, u32(o + 12), sk_refs.get(cur, 0)))
    nxt = u32(o + 4)
    if nxt not in cells or u32(4096 + nxt + 4 + 8) != cur:
        err("sk %#x: flink/blink mismatch" % cur)
        break
    cur = nxt
    if cur == root_sk or len(sks) > len(cells):
        break
if set(sks) != set(sk_refs):
    err("sk list has %d records, keys use %d" % (len(sks), len(sk_refs)))
for off in cells:
    if off in sk_refs:
        continue
    if seen.get(off, 0) != 1:
        err("cell %#x reached %d times" % (off, seen.get(off, 0)))
stats.update(
    file_size=len(d), bins=nbins, cells=len(cells), free=free, slack=slack, sks=len(sks),
    free_percent=100.0 * free / len(d),
)
print(json.dumps({"errors": errors, "stats": stats}))
