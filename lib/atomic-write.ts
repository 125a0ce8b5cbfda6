// The one way patho writes a file: under a temporary name in the same folder, fsynced, then renamed
// over the final name (and the folder fsynced), so a crash or a full disk leaves the old file or the
// new one, never a truncated one. Temporaries of a killed process are removed at the next start.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PathoError } from './errors';

// .<final name>.<pid>.<token>.tmp: the pid says whether the writer may still be running
const TEMP = /^\.(.+)\.(\d+)\.([0-9a-z]+)\.tmp$/;
let counter = 0;

/** The temporary name a write of `file` uses (same folder, so the rename never crosses filesystems). */
export function tempPathFor(file: string): string {
  const token = `${Date.now().toString(36)}${(counter++).toString(36)}`;
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${token}.tmp`);
}

function outputError(file: string, e: unknown): PathoError {
  if (e instanceof PathoError) return e;
  const err = e as NodeJS.ErrnoException;
  // sharp/libvips errors run over several lines; the first says what went wrong
  const why = err.code === 'EISDIR' ? 'it is a folder' : (err.code ?? String(err.message ?? e).split('\n')[0]);
  return new PathoError('ERR_PATHO_OUTPUT', `Could not write ${file}: ${why}`, { cause: e });
}

function fsyncPath(p: string, flags: string): void {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function commit(tmp: string, file: string): void {
  fs.renameSync(tmp, file);
  try {
    fsyncPath(path.dirname(file), 'r');
  } catch {
    // some filesystems refuse fsync on a folder; the rename itself is still atomic
  }
}

function refuseFolder(file: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch {
    return;
  }
  if (st.isDirectory()) throw new PathoError('ERR_PATHO_OUTPUT', `Could not write ${file}: it is a folder`);
}

/** Writes `data` to `file` atomically (creating its folder); ERR_PATHO_OUTPUT names the file on failure. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const s = new AtomicStream(file);
  s.write(data);
  s.commit();
}

/**
 * Atomic write through a writer that takes a path (sharp's toFile, a converter): `write(tmp)` fills
 * the temporary, which is then fsynced and renamed over `file`; on any failure it is removed.
 */
export async function writeAtomic(file: string, write: (tmp: string) => Promise<unknown> | unknown): Promise<void> {
  const abs = path.resolve(file);
  refuseFolder(abs);
  const tmp = tempPathFor(abs);
  try {
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    await write(tmp);
    fsyncPath(tmp, 'r+');
    commit(tmp, abs);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw outputError(abs, e);
  }
}

/**
 * A file written in pieces (streamed CSV or GeoJSON; writeFileAtomic is the one-piece case): appended
 * under a temporary name and renamed over `file` by commit(); discard() (or a failure) removes the
 * temporary, so the final name only ever holds a whole file.
 */
export class AtomicStream {
  readonly file: string;
  private readonly tmp: string;
  private fd: number | null;

  constructor(file: string) {
    this.file = path.resolve(file);
    refuseFolder(this.file);
    this.tmp = tempPathFor(this.file);
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = fs.openSync(this.tmp, 'w');
    } catch (e) {
      throw outputError(this.file, e);
    }
  }

  private openFd(): number {
    if (this.fd === null) throw new PathoError('ERR_PATHO_OUTPUT', `Could not write ${this.file}: it was already closed`);
    return this.fd;
  }

  write(data: string | Uint8Array): void {
    const fd = this.openFd();
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      this.discard();
      throw outputError(this.file, e);
    }
  }

  commit(): void {
    const fd = this.openFd();
    try {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      this.fd = null;
      commit(this.tmp, this.file);
    } catch (e) {
      this.discard();
      throw outputError(this.file, e);
    }
  }

  /** Drops what was written (a stopped or failed run); the final name is left as it was. */
  discard(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed by a failed write
      }
      this.fd = null;
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Removes the temporaries of writers that are gone (our name pattern, a pid that is not running)
 * from `dir`; returns their names. Anything else in the folder is left alone.
 */
export function cleanStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    try {
      if (!fs.lstatSync(path.join(dir, name)).isFile()) continue;
      fs.rmSync(path.join(dir, name));
      removed.push(name);
    } catch {
      // gone meanwhile, or not ours to remove: leave it
    }
  }
  return removed;
}
