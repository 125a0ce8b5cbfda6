// The rendezvous key-value store: rank 0 serves it over TCP, every rank (and Gloo, through
// native/comm/tcp_store.cc) talks to it. Wire format, little-endian, one request at a time per connection:
//   request  = op:u8 ('S' set | 'G' get, waiting up to timeoutMs for the key) key:str value:str timeoutMs:u32
//   response = status:u8 (0 ok | 1 timed out | 2 error) payload:str          with str = len:u32 bytes
// Keys the server writes itself: addr/<r> and via/<r> (the address rank r's connection came from, and
// the server address it reached), gone/<r>. Key `liveness` is computed when asked (see liveness.ts).
import * as net from 'node:net';
import { PathoError } from '../errors';

const OK = 0;
const TIMED_OUT = 1;
const FAILED = 2;
const MAX_FIELD = 64 << 20; // a rendezvous value is small; anything bigger is a stray client

/** ERR_PATHO_COMM from the store or the rendezvous; timedOut when a key did not arrive in time. */
export class StoreError extends PathoError {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super('ERR_PATHO_COMM', message);
    this.name = 'StoreError';
  }
}

interface Waiter {
  respond: (status: number, payload: Buffer) => void;
  timer: NodeJS.Timeout;
}

/**
 * The server (rank 0). Keys live for the life of the server. A connection that set `rank/<r>`
 * speaks for rank r: if it closes before setting `done/<r>`, the server records `gone/<r>`, so
 * survivors can name the rank that died.
 */
export class StoreServer {
  private readonly values = new Map<string, Buffer>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly sockets = new Set<net.Socket>();
  /** server-clock time of each rank's last heartbeat (a set of alive/<r>) */
  private readonly lastSeen = new Map<number, number>();

  private constructor(
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listens on host:port (port 0 picks a free one). Unref'ed: it never keeps a finished process alive. */
  static listen(host: string, port: number): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(
          new StoreError(
            `rank 0 could not serve the rendezvous store on ${host}:${port} (${e.code ?? e.message})` +
              (e.code === 'EADDRINUSE' ? '; another job uses this port: pick another PATHO_MASTER_PORT' : ''),
          ),
        );
      });
      server.listen(port, host, () => {
        const addr = server.address() as net.AddressInfo;
        const s = new StoreServer(server, host, addr.port);
        server.on('connection', (sock) => s.accept(sock));
        server.unref();
        resolve(s);
      });
    });
  }

  /** Sets a key from inside the server's process (wakes waiting getters). */
  set(key: string, value: Buffer): void {
    this.values.set(key, value);
    const ws = this.waiters.get(key);
    if (!ws) return;
    this.waiters.delete(key);
    for (const w of ws) {
      clearTimeout(w.timer);
      w.respond(OK, value);
    }
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** The value of key now, if set (rank 0 reads the store without a round trip). */
  value(key: string): Buffer | undefined {
    return this.values.get(key);
  }

  close(): Promise<void> {
    for (const ws of this.waiters.values()) for (const w of ws) clearTimeout(w.timer);
    this.waiters.clear();
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(sock: net.Socket): void {
    sock.setNoDelay(true);
    sock.unref();
    this.sockets.add(sock);
    let pending = Buffer.alloc(0);
    let busy = false; // one request at a time per connection: answers stay in order
    let rank: number | null = null;
    let done = false;
    const pump = (): void => {
      while (!busy) {
        const req = parseRequest(pending);
        if (req === null) return;
        if (req === 'bad') {
          sock.destroy();
          return;
        }
        pending = pending.subarray(req.length);
        const m = /^(rank|done|alive)\/(\d+)$/.exec(req.key);
        if (req.op === 0x53 && m) {
          if (m[1] === 'rank') {
            rank = Number(m[2]);
            // where this rank is, as the network sees it (multi-host Gloo binds there)
            this.set(`addr/${rank}`, Buffer.from(plainAddress(sock.remoteAddress)));
            this.set(`via/${rank}`, Buffer.from(plainAddress(sock.localAddress)));
          } else if (m[1] === 'alive') {
            this.lastSeen.set(Number(m[2]), Date.now());
          } else {
            done = true;
          }
        }
        busy = true;
        this.handle(req.op, req.key, req.value, req.timeoutMs, (status, payload) => {
          if (!sock.destroyed) sock.write(encodeResponse(status, payload));
          busy = false;
          setImmediate(pump);
        });
      }
    };
    sock.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      pump();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.sockets.delete(sock);
      if (rank !== null && !done) this.set(`gone/${rank}`, Buffer.from(new Date().toISOString()));
    });
  }

  private handle(op: number, key: string, value: Buffer, timeoutMs: number, respond: Waiter['respond']): void {
    if (op === 0x53) {
      // 'S'
      this.set(key, value);
      respond(OK, Buffer.alloc(0));
    } else if (op === 0x47) {
      // 'G'
      if (key === 'liveness') {
        const now = Date.now();
        return respond(OK, Buffer.from(JSON.stringify(Object.fromEntries([...this.lastSeen].map(([r, t]) => [r, now - t])))));
      }
      const v = this.values.get(key);
      if (v !== undefined) return respond(OK, v);
      if (timeoutMs === 0) return respond(TIMED_OUT, Buffer.from('not set'));
      const w: Waiter = {
        respond,
        timer: setTimeout(() => {
          const ws = this.waiters.get(key) ?? [];
          const i = ws.indexOf(w);
          if (i >= 0) ws.splice(i, 1);
          if (ws.length === 0) this.waiters.delete(key);
          respond(TIMED_OUT, Buffer.from(`not set within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      w.timer.unref();
      const ws = this.waiters.get(key);
      if (ws) ws.push(w);
      else this.waiters.set(key, [w]);
    } else {
      respond(FAILED, Buffer.from(`unknown store op ${op}`));
    }
  }
}

/** '::ffff:10.0.0.2' (an IPv4 peer of a dual-stack socket) -> '10.0.0.2' */
export function plainAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

interface Request {
  op: number;
  key: string;
  value: Buffer;
  timeoutMs: number;
  length: number;
}

function parseRequest(b: Buffer): Request | null | 'bad' {
  if (b.length < 5) return null;
  const op = b[0];
  const keyLen = b.readUInt32LE(1);
  if (keyLen > MAX_FIELD) return 'bad';
  if (b.length < 5 + keyLen + 4) return null;
  const valLen = b.readUInt32LE(5 + keyLen);
  if (valLen > MAX_FIELD) return 'bad';
  const end = 9 + keyLen + valLen + 4;
  if (b.length < end) return null;
  return {
    op,
    key: b.toString('utf8', 5, 5 + keyLen),
    value: Buffer.from(b.subarray(9 + keyLen, 9 + keyLen + valLen)),
    timeoutMs: b.readUInt32LE(9 + keyLen + valLen),
    length: end,
  };
}

function encodeRequest(op: 'S' | 'G', key: string, value: Buffer, timeoutMs: number): Buffer {
  const k = Buffer.from(key, 'utf8');
  const b = Buffer.alloc(13 + k.length + value.length);
  b[0] = op.charCodeAt(0);
  b.writeUInt32LE(k.length, 1);
  k.copy(b, 5);
  b.writeUInt32LE(value.length, 5 + k.length);
  value.copy(b, 9 + k.length);
  b.writeUInt32LE(Math.max(0, Math.min(0xffffffff, Math.round(timeoutMs))), 9 + k.length + value.length);
  return b;
}

function encodeResponse(status: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = status;
  b.writeUInt32LE(payload.length, 1);
  payload.copy(b, 5);
  return b;
}

/** A client connection. Requests are serialised (the protocol answers in order). */
export class StoreClient {
  private chain: Promise<unknown> = Promise.resolve();
  private buffered = Buffer.alloc(0);
  private reader: (() => void) | null = null;
  private closedWith: Error | null = null;

  private constructor(
    private readonly sock: net.Socket,
    readonly where: string,
  ) {
    sock.on('data', (c) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      this.reader?.();
    });
    const closed = (why: string) => () => {
      this.closedWith ??= new StoreError(`the rendezvous store at ${where} ${why} (rank 0 exited?)`);
      this.reader?.();
    };
    sock.on('close', closed('closed the connection'));
    sock.on('error', (e) => closed(`failed: ${e.message}`)());
  }

  /** Connects, retrying until timeoutMs (rank 0 may start after us). */
  static async connect(host: string, port: number, timeoutMs: number, who = 'this rank'): Promise<StoreClient> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host, port });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        sock.setNoDelay(true);
        sock.removeAllListeners('error');
        return new StoreClient(sock, `${host}:${port}`);
      } catch (e) {
        last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      }
      if (Date.now() >= deadline) {
        throw new StoreError(
          `${who} could not reach the rendezvous store at ${host}:${port} within ${timeoutMs} ms ` +
            `(${last}); is rank 0 running, and are PATHO_MASTER_ADDR/PATHO_MASTER_PORT right?`,
          true,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  set(key: string, value: Buffer | string): Promise<void> {
    return this.request('S', key, typeof value === 'string' ? Buffer.from(value) : value, 0).then(() => undefined);
  }

  /**
   * The value of key, waiting up to timeoutMs for it to be set (0: answer at once). Rejects with
   * timedOut set. answerMs: give up on a server that does not answer at all (stopped) after
   * timeoutMs + answerMs; the connection is then unusable.
   */
  get(key: string, timeoutMs: number, answerMs?: number): Promise<Buffer> {
    return this.request('G', key, Buffer.alloc(0), timeoutMs, answerMs);
  }

  /** Whether key is set now. */
  async has(key: string, answerMs?: number): Promise<boolean> {
    try {
      await this.get(key, 0, answerMs);
      return true;
    } catch (e) {
      if (e instanceof StoreError && e.timedOut) return false;
      throw e;
    }
  }

  close(): void {
    this.sock.end();
  }

  /** Stops the socket from keeping the process alive while idle. */
  unref(): void {
    this.sock.unref();
  }

  private request(op: 'S' | 'G', key: string, value: Buffer, timeoutMs: number, answerMs?: number): Promise<Buffer> {
    const run = async (): Promise<Buffer> => {
      if (this.closedWith) throw this.closedWith;
      this.sock.ref();
      let timer: NodeJS.Timeout | null = null;
      if (answerMs !== undefined) {
        timer = setTimeout(() => {
          this.closedWith ??= new StoreError(
            `the rendezvous store at ${this.where} did not answer within ${timeoutMs + answerMs} ms (is rank 0, which serves it, stopped or hung?)`,
          );
          this.sock.destroy();
          this.reader?.();
        }, timeoutMs + answerMs);
        timer.unref();
      }
      try {
        this.sock.write(encodeRequest(op, key, value, timeoutMs));
        const head = await this.read(5);
        const payload = await this.read(head.readUInt32LE(1));
        if (head[0] === TIMED_OUT) throw new StoreError(`rendezvous store ${this.where}: key '${key}' ${payload.toString()}`, true);
        if (head[0] !== OK) throw new StoreError(`rendezvous store ${this.where}: ${payload.toString()}`);
        return payload;
      } finally {
        if (timer) clearTimeout(timer);
        this.sock.unref();
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const attempt = (): void => {
        if (this.buffered.length >= n) {
          const out = this.buffered.subarray(0, n);
          this.buffered = this.buffered.subarray(n);
          this.reader = null;
          resolve(Buffer.from(out));
        } else if (this.closedWith) {
          this.reader = null;
          reject(this.closedWith);
        }
      };
      this.reader = attempt;
      attempt();
    });
  }
}
