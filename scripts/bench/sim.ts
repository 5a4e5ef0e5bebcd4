/**
 * Simulator throughput: requests/second of a mixed read workload over HTTPS (keep-alive, 8 in flight,
 * speed 0 so only the simulator's own cost is measured), and the per-request schema-validation cost
 * measured in-process. Prints figures; asserts nothing.
 *   node --import tsx scripts/bench/sim.ts
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { startSimulator } from '../../src/sim/index.js';
import { loadApiSchema } from '../../src/sim/schema/index.js';

const t0 = performance.now();
const schema = loadApiSchema();
console.log(`schema load + compile: ${(performance.now() - t0).toFixed(1)} ms (${schema.methods.length} methods)`);

// in-process validation cost
const cases: Array<[string, string, Record<string, unknown>]> = [
  ['GET', '/version', {}],
  ['GET', '/cluster/resources', { type: 'vm' }],
  ['GET', '/nodes/pve1/qemu/9001/config', {}],
  [
    'POST',
    '/nodes/pve1/qemu',
    {
      vmid: 9000,
      name: 'flatcar-4459-2-1',
      ostype: 'l26',
      cpu: 'host',
      cores: 2,
      memory: 4096,
      scsihw: 'virtio-scsi-single',
      scsi0: 'local-lvm:0,import-from=local:import/flatcar-4459.2.1-proxmoxve.qcow2,discard=on,iothread=1',
      ide2: 'local-lvm:cloudinit',
      boot: 'order=scsi0',
      serial0: 'socket',
      vga: 'serial0',
      agent: 'enabled=1',
      net0: 'virtio,bridge=vmbr0',
      ipconfig0: 'ip=10.0.0.11/24,gw=10.0.0.1',
    },
  ],
];
for (const [method, path, params] of cases) {
  const n = 20000;
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const m = schema.match(method, path).match!;
    sink += Object.keys(m.route.validate({ ...params, ...m.pathParams })).length;
  }
  const us = ((performance.now() - start) * 1000) / n;
  if (sink !== 0) throw new Error(`unexpected validation errors for ${method} ${path}`);
  console.log(`route + validate ${method} ${path}: ${us.toFixed(2)} µs/request`);
}

// HTTPS throughput
const sim = await startSimulator({ speed: 0, sshHost: false });
const agent = new Agent({ connect: { ca: sim.certPem }, connections: 8, pipelining: 1 });
const auth = `PVEAPIToken=${sim.token.tokenId}=${sim.token.tokenSecret}`;
const get = async (path: string) => {
  const r = await request(`${sim.url}/api2/json${path}`, { dispatcher: agent, headers: { authorization: auth } });
  await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${path} → ${r.statusCode}`);
};
// a few VMs so /cluster/resources and config have content
const post = async (path: string, body: Record<string, string>) => {
  const r = await request(`${sim.url}/api2/json${path}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
  });
  const j = (await r.body.json()) as { data: string };
  for (;;) {
    const s = await request(`${sim.url}/api2/json/nodes/pve1/tasks/${encodeURIComponent(j.data)}/status`, {
      dispatcher: agent,
      headers: { authorization: auth },
    });
    const d = ((await s.body.json()) as { data: { status: string } }).data;
    if (d.status === 'stopped') break;
  }
};
for (let i = 0; i < 20; i++)
  await post('/nodes/pve1/qemu', { vmid: String(9000 + i), name: `vm-${i}`, scsi0: 'local-lvm:8', net0: 'virtio,bridge=vmbr0' });
const paths = [
  '/version',
  '/cluster/resources',
  '/nodes/pve1/qemu/9005/config',
  '/nodes/pve1/storage',
  '/nodes/pve1/qemu/9010/status/current',
  '/cluster/nextid',
];
for (let i = 0; i < 200; i++) await get(paths[i % paths.length]!); // warm up
const total = 4000;
let next = 0;
const start = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < total) await get(paths[next++ % paths.length]!);
  }),
);
const secs = (performance.now() - start) / 1000;
console.log(
  `HTTPS mixed reads (${paths.join(', ')}): ${(total / secs).toFixed(0)} requests/s (${total} requests, 8 in flight, 3 API workers)`,
);
await agent.close();
await sim.close();
