import fs from "node:fs";
import path from "node:path";

/** Free space on the filesystem that holds a directory, and where that filesystem is mounted. */
export interface DiskSpace {
  /** Bytes an unprivileged process may still write (statfs's bavail). */
  freeBytes: number;
  /** The mount point of the filesystem: where to free space. */
  mountPoint: string;
}

/**
 * The free space where `dir` lives (`dir` itself, or its nearest existing
 * parent when it does not exist yet); undefined when the system cannot say.
 */
export function diskSpace(dir: string): DiskSpace | undefined {
  const existing = nearestExisting(path.resolve(dir));
  try {
    const stats = fs.statfsSync(existing);
    return { freeBytes: stats.bavail * stats.bsize, mountPoint: mountPointOf(existing) };
  } catch {
    return undefined;
  }
}

function nearestExisting(dir: string): string {
  let current = dir;
  while (!fs.existsSync(current)) {
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return current;
}

/** The highest directory above `dir` on the same device: its filesystem's mount point. */
function mountPointOf(dir: string): string {
  let current = dir;
  const device = fs.statSync(current).dev;
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current || fs.statSync(parent).dev !== device) return current;
    current = parent;
  }
}

const MIB = 1024 * 1024;

/** Bytes as a person reads them on `df -h`: "0 MB", "7.5 MB", "120 MB", "3.2 GB" (binary units). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MIB) return `${(bytes / 1024 / MIB).toFixed(1)} GB`;
  const mib = bytes / MIB;
  return `${mib >= 10 ? Math.round(mib) : Number(mib.toFixed(1))} MB`;
}
