/**
 * A throwaway PKI for one benchmark run, made by the project's own dev PKI (`initDevPki`, what
 * `corridor pki init` runs) in a temporary directory: a regional CA, the hub's server
 * certificate (SANs localhost, 127.0.0.1, ::1) and one member's client certificate. The
 * JetStream target's nats-server and the gRPC floors use it, so every mTLS handshake in a run
 * uses the same kind of keys (ECDSA P-256) as the hub's. Nothing here is ever written to the
 * repository; the caller removes the directory.
 */
import { readFile } from 'node:fs/promises';
import { parseRegion } from '../src/core/region.js';
import { asMemberId } from '../src/core/ids.js';
import { caFiles, hubTls, memberTls } from '../src/infra/home.js';
import { initDevPki } from '../src/node/pki/dev-pki.js';

/** PEM file paths of the run's CA, server and client identities. */
export interface RunPki {
  readonly caFile: string;
  readonly server: { readonly certFile: string; readonly keyFile: string };
  readonly client: { readonly certFile: string; readonly keyFile: string };
}

/** The same files, read: what grpc-js and node:tls take. */
export interface RunPkiPem {
  readonly ca: Buffer;
  readonly server: { readonly cert: Buffer; readonly key: Buffer };
  readonly client: { readonly cert: Buffer; readonly key: Buffer };
}

const CLIENT_MEMBER = asMemberId('IDN');

/** Issues the run's CA and certificates under `home` (a temporary directory of the caller's). */
export async function issueRunPki(home: string): Promise<RunPki> {
  const region = parseRegion({
    region: 'bench.corridor',
    name: 'Benchmark region',
    members: [{ id: 'IDN', name: 'Indonesia' }],
    agencies: [],
    operators: [],
  });
  await initDevPki(home, region, { now: new Date() });
  const server = hubTls(home);
  const client = memberTls(home, CLIENT_MEMBER);
  return {
    caFile: caFiles(home).cert,
    server: { certFile: server.cert, keyFile: server.key },
    client: { certFile: client.cert, keyFile: client.key },
  };
}

export async function readRunPki(pki: RunPki): Promise<RunPkiPem> {
  return {
    ca: await readFile(pki.caFile),
    server: { cert: await readFile(pki.server.certFile), key: await readFile(pki.server.keyFile) },
    client: { cert: await readFile(pki.client.certFile), key: await readFile(pki.client.keyFile) },
  };
}
