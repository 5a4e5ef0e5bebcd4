/**
 * The one SSH server of the simulated hosts (the simulator's PVE host, the demo Flatcar nodes): listens
 * on a loopback address with a pinned host key, accepts public keys the host authorizes (the signature
 * checked), and hands each exec and SFTP session to the host. The host owns what the commands and the
 * filesystem do; this module owns the SSH protocol side.
 */
import ssh2 from 'ssh2';
import type { Connection, ParsedKey, ServerChannel, SFTPWrapper } from 'ssh2';

const { Server } = ssh2;

export interface SshdOptions {
  host: string;
  port: number;
  /** The host's private key (OpenSSH format). */
  hostKey: string;
  /** The key `user` may log in with when it offers (algo, data), or undefined. */
  authorize(user: string, key: { algo: string; data: Buffer }): ParsedKey | undefined;
  exec(command: string, channel: ServerChannel, conn: Connection): void;
  sftp(sftp: SFTPWrapper): void;
}

export interface Sshd {
  port: number;
  readonly connections: ReadonlySet<Connection>;
  /** End every connection (as a reboot or a network cut would). */
  disconnect(): void;
  close(): Promise<void>;
}

export async function startSshd(o: SshdOptions): Promise<Sshd> {
  const conns = new Set<Connection>();
  const server = new Server({ hostKeys: [o.hostKey] }, (conn) => {
    // ssh2 writes each SSH packet of a reply separately (sshd sends a reply in one write): with Nagle,
    // the second waits for a delayed ACK, ~40 ms per SFTP call or exec, which real hosts do not show.
    (conn as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => conns.delete(conn));
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const key = o.authorize(ctx.username, { algo: ctx.key.algo, data: ctx.key.data });
      if (!key) return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => o.exec(info.command, accept(), conn));
        session.on('sftp', (accept) => o.sftp(accept()));
        session.on('pty', (accept) => accept?.());
        session.on('shell', (_accept, reject) => reject?.());
        session.on('signal', () => {});
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      server.on('error', () => {});
      resolve();
    });
  });
  const disconnect = () => {
    for (const c of conns) c.end();
    conns.clear();
  };
  return {
    port: (server.address() as { port: number }).port,
    connections: conns,
    disconnect,
    close: () =>
      new Promise<void>((resolve) => {
        disconnect();
        server.close(() => resolve());
      }),
  };
}
