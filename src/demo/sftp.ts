/**
 * The demo node's SFTP: its in-memory filesystem as user `core` sees it (core may write only to its
 * home and /tmp; root's files are readable when their mode says so). Every change is saved before the
 * client gets its answer.
 */
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { normalize, parentOf, type DemoNode } from './node.js';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

interface OpenHandle {
  path: string;
  kind: 'file' | 'dir';
  write: boolean;
  listed?: boolean;
}

/** What one SFTP session's handlers share. */
interface SftpSession {
  node: DemoNode;
  sftp: SFTPWrapper;
  persist: () => void;
  handles: Map<number, OpenHandle>;
  newHandle(h: OpenHandle): Buffer;
  handleOf(b: Buffer): number;
  writable(p: string): boolean;
  readable(p: string): boolean;
  attrsOf(p: string): { mode: number; uid: number; gid: number; size: number; atime: number; mtime: number } | undefined;
}

export function serveSftp(node: DemoNode, sftp: SFTPWrapper, persist: () => void): void {
  const handles = new Map<number, OpenHandle>();
  let nextHandle = 1;
  const newHandle = (h: OpenHandle) => {
    const n = nextHandle++;
    handles.set(n, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const handleOf = (b: Buffer) => (b.length === 4 ? b.readUInt32BE(0) : -1);
  const writable = (p: string) => p.startsWith('/home/core/') || p.startsWith('/tmp/');
  const readable = (p: string) => {
    const f = node.fs.get(p);
    return !!f && (f.owner === 'core' || (f.mode & 0o004) !== 0);
  };
  const attrsOf = (p: string) => {
    const f = node.fs.get(p);
    if (f)
      return {
        mode: (f.link ? 0o120000 : 0o100000) | f.mode,
        uid: f.owner === 'core' ? 500 : 0,
        gid: f.owner === 'core' ? 500 : 0,
        size: f.data.length,
        atime: 0,
        mtime: 0,
      };
    if (node.dirs.has(p)) return { mode: 0o040755, uid: p.startsWith('/home/core') ? 500 : 0, gid: 0, size: 4096, atime: 0, mtime: 0 };
    return undefined;
  };
  const s: SftpSession = { node, sftp, persist, handles, newHandle, handleOf, writable, readable, attrsOf };
  serveFiles(s);
  servePaths(s);
}

/** Open, read, write, stat and close files. */
function serveFiles(s: SftpSession): void {
  const { node, sftp, persist, handles, newHandle, handleOf, writable, readable, attrsOf } = s;
  sftp.on('OPEN', (reqid, filename, flags, attrs) => {
    const p = normalize(filename);
    const write = (flags & OPEN_MODE.WRITE) !== 0;
    if (write) {
      if (!writable(p) || !node.dirs.has(parentOf(p)))
        return sftp.status(reqid, node.dirs.has(parentOf(p)) ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.NO_SUCH_FILE);
      const existing = node.fs.get(p);
      if (!existing || flags & OPEN_MODE.TRUNC) {
        node.fs.set(p, {
          data: existing && !(flags & OPEN_MODE.TRUNC) ? existing.data : Buffer.alloc(0),
          mode: (attrs?.mode ?? 0o644) & 0o7777 & ~0o022,
          owner: 'core',
        });
      }
    } else {
      if (!node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
      if (!readable(p)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
    }
    sftp.handle(reqid, newHandle({ path: p, kind: 'file', write }));
  });
  sftp.on('WRITE', (reqid, handle, offset, data) => {
    const h = handles.get(handleOf(handle));
    const f = h && node.fs.get(h.path);
    if (!h || !f || !h.write) return sftp.status(reqid, STATUS_CODE.FAILURE);
    const end = offset + data.length;
    const buf = f.data.length >= end ? Buffer.from(f.data) : Buffer.concat([f.data, Buffer.alloc(end - f.data.length)]);
    data.copy(buf, offset);
    f.data = buf;
    sftp.status(reqid, STATUS_CODE.OK);
  });
  sftp.on('READ', (reqid, handle, offset, length) => {
    const h = handles.get(handleOf(handle));
    const f = h && node.fs.get(h.path);
    if (!h || !f) return sftp.status(reqid, STATUS_CODE.FAILURE);
    if (offset >= f.data.length) return sftp.status(reqid, STATUS_CODE.EOF);
    sftp.data(reqid, f.data.subarray(offset, Math.min(f.data.length, offset + length)));
  });
  sftp.on('FSTAT', (reqid, handle) => {
    const h = handles.get(handleOf(handle));
    const a = h && attrsOf(h.path);
    if (!a) return sftp.status(reqid, STATUS_CODE.FAILURE);
    sftp.attrs(reqid, a);
  });
  const stat = (reqid: number, path: string) => {
    const a = attrsOf(normalize(path));
    if (!a) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
    sftp.attrs(reqid, a);
  };
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);
  const setstat = (reqid: number, p: string, attrs: { mode?: number }) => {
    const f = node.fs.get(p);
    if (!f) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
    if (f.owner !== 'core') return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
    if (attrs.mode !== undefined) f.mode = attrs.mode & 0o7777;
    persist();
    sftp.status(reqid, STATUS_CODE.OK);
  };
  sftp.on('SETSTAT', (reqid, path, attrs) => setstat(reqid, normalize(path), attrs));
  sftp.on('FSETSTAT', (reqid, handle, attrs) => {
    const h = handles.get(handleOf(handle));
    if (!h) return sftp.status(reqid, STATUS_CODE.FAILURE);
    setstat(reqid, h.path, attrs);
  });
  sftp.on('CLOSE', (reqid, handle) => {
    handles.delete(handleOf(handle));
    persist();
    sftp.status(reqid, STATUS_CODE.OK);
  });
}

/** Remove, rename, mkdir, realpath and directory listings. */
function servePaths(s: SftpSession): void {
  const { node, sftp, persist, handles, newHandle, handleOf, writable, attrsOf } = s;
  sftp.on('REMOVE', (reqid, path) => {
    const p = normalize(path);
    if (!node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
    if (!writable(p)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
    node.fs.delete(p);
    persist();
    sftp.status(reqid, STATUS_CODE.OK);
  });
  sftp.on('RENAME', (reqid, oldPath, newPath) => {
    const a = normalize(oldPath);
    const b = normalize(newPath);
    const f = node.fs.get(a);
    if (!f) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
    if (!writable(a) || !writable(b)) return sftp.status(reqid, STATUS_CODE.PERMISSION_DENIED);
    if (node.fs.has(b)) return sftp.status(reqid, STATUS_CODE.FAILURE); // plain SFTP rename does not overwrite
    node.fs.delete(a);
    node.fs.set(b, f);
    persist();
    sftp.status(reqid, STATUS_CODE.OK);
  });
  sftp.on('MKDIR', (reqid, path) => {
    const p = normalize(path);
    if (!writable(`${p}/`) || node.dirs.has(p) || node.fs.has(p)) return sftp.status(reqid, STATUS_CODE.FAILURE);
    node.dirs.add(p);
    persist();
    sftp.status(reqid, STATUS_CODE.OK);
  });
  sftp.on('REALPATH', (reqid, path) => {
    const p = normalize(path === '.' || path === '' ? '/home/core' : path);
    sftp.name(reqid, [{ filename: p, longname: p, attrs: attrsOf(p) ?? { mode: 0, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 } }]);
  });
  sftp.on('OPENDIR', (reqid, path) => {
    const p = normalize(path);
    if (!node.dirs.has(p)) return sftp.status(reqid, STATUS_CODE.NO_SUCH_FILE);
    sftp.handle(reqid, newHandle({ path: p, kind: 'dir', write: false }));
  });
  sftp.on('READDIR', (reqid, handle) => {
    const h = handles.get(handleOf(handle));
    if (!h || h.kind !== 'dir') return sftp.status(reqid, STATUS_CODE.FAILURE);
    if (h.listed) return sftp.status(reqid, STATUS_CODE.EOF);
    h.listed = true;
    const prefix = h.path === '/' ? '/' : `${h.path}/`;
    const names = new Set<string>();
    for (const k of [...node.fs.keys(), ...node.dirs])
      if (k.startsWith(prefix) && k !== h.path && !k.slice(prefix.length).includes('/')) names.add(k);
    sftp.name(
      reqid,
      [...names].map((k) => ({ filename: k.slice(prefix.length), longname: k.slice(prefix.length), attrs: attrsOf(k)! })),
    );
  });
  sftp.on('EXTENDED', (reqid) => sftp.status(reqid, STATUS_CODE.OP_UNSUPPORTED));
}
