#!/usr/bin/env python3
"""What a growing file costs the kernel, with and without dropping its pages after each sync.

Writes SIZE_GB of random bytes in 64 KiB pwrites to a new file in DIR, an fdatasync every 8 MiB
(as the tracer's checkpoint passes do), and prints the CPU time of each 300 MB. With `drop`,
every sync is followed by posix_fadvise(POSIX_FADV_DONTNEED), as trc__drop_cached does
(tracer/trc_ckpt.c); with `keep`, the pages stay cached, as before session 19.

On this project's VMs a page frame the guest has not touched lately costs about ten times one
just freed: free memory goes back to the host within seconds, so pause before each run.
Session 19 (6 GB each, 25 s pauses): keep 15.8 s of CPU (0.7-1.1 s per 300 MB once past the
first 900 MB), drop 2.6 s (0.11-0.16 s per 300 MB throughout).

    sleep 25; python3 tests/bench/pagecache.py keep /tmp 6
    sleep 25; python3 tests/bench/pagecache.py drop /tmp 6
"""
import os
import resource
import sys
import time

CHUNK = 64 * 1024
SYNC_EVERY = 8 << 20
BLOCK = 300 << 20


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("keep", "drop"):
        print("usage: pagecache.py keep|drop DIR SIZE_GB", file=sys.stderr)
        return 2
    drop, directory, size_gb = sys.argv[1] == "drop", sys.argv[2], float(sys.argv[3])
    path = os.path.join(directory, "lltrace-pagecache-%d.tmp" % os.getpid())
    buf = os.urandom(CHUNK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        off, total, per_block = 0, 0.0, []
        for _ in range(max(1, int(size_gb * (1 << 30) / BLOCK))):
            c0, t0 = cpu_s(), time.perf_counter()
            for _ in range(BLOCK // CHUNK):
                os.pwrite(fd, buf, off)
                off += CHUNK
                if off % SYNC_EVERY == 0:
                    os.fdatasync(fd)
                    if drop:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            c = cpu_s() - c0
            total += c
            per_block.append("%.0f/%.0f" % (c * 1e3, (time.perf_counter() - t0) * 1e3))
    finally:
        os.close(fd)
        os.unlink(path)
    print("%s: %.1f GB, %.2f s of CPU; CPU/wall ms per 300 MB: %s"
          % (sys.argv[1], off / (1 << 30), total, " ".join(per_block)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
