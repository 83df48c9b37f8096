# One escape attempt per run, made from inside a confined process by `processes.rs`.
# Usage: probe.py ATTEMPT [ARG...]. Prints the errno the attempt ended with (0: it worked),
# or for `status` the relevant lines of /proc/self/status.
import ctypes
import os
import platform
import signal
import socket
import sys

if platform.machine() != "x86_64":
    sys.exit("probe.py has x86_64 system call numbers only; add this architecture's")

NR = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_open": 434,
    "pidfd_send_signal": 424, "pidfd_getfd": 438, "io_uring_setup": 425, "bpf": 321,
    "perf_event_open": 298, "keyctl": 250, "add_key": 248, "unshare": 272, "setns": 308,
    "mount": 165, "kcmp": 312, "userfaultfd": 323, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "clone": 56, "clone3": 435, "wait4": 61,
}
CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
MS_BIND, MS_REC = 0x1000, 0x4000
TIOCSTI, TIOCLINUX, TIOCSCTTY = 0x5412, 0x541C, 0x540E

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def arg(a):
    if isinstance(a, int):
        return ctypes.c_long(a)
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    return a


def raw(name, *args):
    """(return value, errno) of a raw system call."""
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *[arg(a) for a in args])
    return r, (ctypes.get_errno() if r < 0 else 0)


def err(name, *args):
    return raw(name, *args)[1]


def oserr(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno


def pidfd(pid):
    fd, e = raw("pidfd_open", pid, 0)
    if e:
        sys.exit(f"pidfd_open({pid}) failed with errno {e}")
    return fd


def vm(name, pid):
    buf = ctypes.create_string_buffer(64)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
    remote = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
    return err(name, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)


def clone_like(call):
    """Runs a clone-shaped call; a child that got created exits at once."""
    r, e = call()
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    return e


def tiocsti(request):
    os.setsid()
    master, slave = os.openpty()
    ctypes.set_errno(0)
    if libc.ioctl(slave, ctypes.c_ulong(TIOCSCTTY), ctypes.c_long(0)) != 0:
        sys.exit(f"TIOCSCTTY failed with errno {ctypes.get_errno()}")
    c = ctypes.c_char(b"x")
    ctypes.set_errno(0)
    r = libc.ioctl(slave, ctypes.c_ulong(request), ctypes.byref(c))
    return ctypes.get_errno() if r != 0 else 0


def open_by_handle():
    # struct file_handle: handle_bytes, handle_type, then the handle.
    buf = ctypes.create_string_buffer(8 + 128)
    ctypes.c_uint.from_buffer(buf).value = 128
    mount_id = ctypes.c_int()
    e = err("name_to_handle_at", -100, b"/etc", buf, ctypes.byref(mount_id), 0)
    if e:
        sys.exit(f"name_to_handle_at failed with errno {e}")
    root = os.open("/", os.O_RDONLY)
    return err("open_by_handle_at", root, buf, os.O_RDONLY)


def in_box():
    """A child binds an abstract socket; the parent connects, talks, and kills it."""
    name = f"\0hivebox-in-box-{os.getpid()}"
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(name)
        s.listen(1)
        os.write(ready_w, b"r")
        conn, _ = s.accept()
        conn.sendall(conn.recv(1))
        signal.pause()
        os._exit(1)
    os.read(ready_r, 1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    e = oserr(lambda: c.connect(name))
    if e:
        return e
    c.sendall(b"!")
    if c.recv(1) != b"!":
        return -1
    e = oserr(lambda: os.kill(child, signal.SIGTERM))
    _, status = os.waitpid(child, 0)
    if e:
        return e
    return 0 if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM else -2


def thread():
    import threading
    out = []
    t = threading.Thread(target=lambda: out.append(1))
    t.start()
    t.join()
    return 0 if out == [1] else -1


def main(what, *a):
    pid = int(a[0]) if a and a[0].isdigit() else 0
    if what == "status":
        keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
        with open("/proc/self/status") as f:
            return "".join(l for l in f if l.split(":")[0] in keys).strip()
    attempts = {
        "kill": lambda: oserr(lambda: os.kill(pid, signal.SIGTERM)),
        "kill0": lambda: oserr(lambda: os.kill(pid, 0)),
        "pidfd_send_signal": lambda: err("pidfd_send_signal", pidfd(pid), signal.SIGTERM, 0, 0),
        "pidfd_getfd": lambda: err("pidfd_getfd", pidfd(pid), 0, 0),
        "ptrace_attach": lambda: err("ptrace", 16, pid, 0, 0),
        "ptrace_seize": lambda: err("ptrace", 0x4206, pid, 0, 0),
        "process_vm_readv": lambda: vm("process_vm_readv", pid),
        "process_vm_writev": lambda: vm("process_vm_writev", pid),
        "proc_mem": lambda: oserr(lambda: os.open(f"/proc/{pid}/mem", os.O_RDWR)),
        "kcmp": lambda: err("kcmp", os.getpid(), pid, 0, 0, 0),
        "io_uring_setup": lambda: err("io_uring_setup", 1, ctypes.create_string_buffer(120)),
        "bpf": lambda: err("bpf", 0, ctypes.create_string_buffer(
            (2).to_bytes(4, "little") + (4).to_bytes(4, "little") * 2
            + (1).to_bytes(4, "little") + bytes(56)), 72),
        "perf_event_open": lambda: err("perf_event_open", ctypes.create_string_buffer(
            (1).to_bytes(4, "little") + (128).to_bytes(4, "little") + bytes(32)
            + (0x60).to_bytes(8, "little") + bytes(80)), 0, -1, -1, 0),
        "keyctl": lambda: err("keyctl", 0, -3, 1),
        "add_key": lambda: err("add_key", b"user", b"hivebox-probe", b"x", 1, -3),
        "userfaultfd": lambda: err("userfaultfd", 0),
        "unshare_user": lambda: err("unshare", CLONE_NEWUSER),
        "unshare_mount": lambda: err("unshare", CLONE_NEWNS),
        "open_ns": lambda: oserr(lambda: os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)),
        "setns": lambda: err("setns", os.open("/proc/self/ns/mnt", os.O_RDONLY), 0),
        "clone_newuser": lambda: clone_like(
            lambda: raw("clone", CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)),
        "clone3": lambda: clone_like(lambda: raw("clone3", ctypes.create_string_buffer(
            bytes(32) + int(signal.SIGCHLD).to_bytes(8, "little") + bytes(48)), 88)),
        "mount_tmpfs": lambda: err("mount", b"none", b"/mnt", b"tmpfs", 0, 0),
        "mount_bind_root": lambda: err("mount", b"/", b"/mnt", 0, MS_BIND | MS_REC, 0),
        "open_by_handle_at": open_by_handle,
        "tiocsti": lambda: tiocsti(TIOCSTI),
        "tiocsti_high_bits": lambda: tiocsti(TIOCSTI | (1 << 32)),
        "tioclinux": lambda: tiocsti(TIOCLINUX),
        "abstract_connect": lambda: oserr(lambda: socket.socket(
            socket.AF_UNIX, socket.SOCK_STREAM).connect("\0" + a[0])),
        "in_box": in_box,
        "fork": lambda: clone_like(lambda: (os.fork(), 0)),
        "thread": thread,
    }
    return attempts[what]()


print(main(*sys.argv[1:]))
