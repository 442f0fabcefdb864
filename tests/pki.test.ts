// @peculiar/x509 is used here only to read extensions Node does not expose (path length,
// key usage bits); it needs the metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { calculateJwkThumbprint } from 'jose';
import { parseCosignatureVerifierKey } from '../src/core/checkpoint.js';
import { asMemberId } from '../src/core/ids.js';
import { parseVerifierKey } from '../src/core/note.js';
import { parseRegion } from '../src/core/region.js';
import type { Region } from '../src/core/region.js';
import {
  agencyTls,
  caFiles,
  hubLogKeyFile,
  hubReceiptKeyFile,
  hubTls,
  memberSigningKeyFile,
  memberTls,
  memberWitnessKeyFile,
  operatorTls,
  regionFile,
} from '../src/infra/home.js';
import { hubUri, initDevPki, loadTlsIdentity, readPrivateJwk, readRegionFile, writeRegionFile } from '../src/node/pki/dev-pki.js';
import type { DevPkiResult } from '../src/node/pki/dev-pki.js';
import { rejection } from './helpers/errors.js';

const execFileAsync = promisify(execFile);
const ISSUE_CERT = fileURLToPath(new URL('../certs/issue-cert.sh', import.meta.url));
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY_MS = 24 * 60 * 60 * 1000;

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const THA = asMemberId('THA');

const regionFileValue = {
  region: 'test-corridor',
  name: 'Test corridor',
  members: [
    { id: 'IDN', name: 'Indonesia' },
    { id: 'MYS', name: 'Malaysia' },
  ],
  agencies: [
    { id: 'IDN:immigration', name: 'Directorate General of Immigration', member: 'IDN', roles: ['immigration'] },
    { id: 'IOM:observer', name: 'International Organization for Migration', organisation: 'IOM', roles: ['observer'] },
  ],
  operators: [{ id: 'duty-officer', name: 'Duty officer' }],
};
const region = parseRegion(regionFileValue);

/** Region with one more member, as if the region file had been edited after the first init. */
function withThailand(base: Region): Region {
  return { ...base, members: [...base.members, { id: THA, name: 'Thailand', signingKeys: [] }] };
}

async function certAt(file: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(file));
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}


const temporaryDirs: string[] = [];
async function temporaryHome(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'corridor-pki-'));
  temporaryDirs.push(dir);
  return dir;
}

// TLS checks validity against the wall clock, so the injected clock is the real one here.
const now = new Date();
let home: string;
let first: DevPkiResult;
let ca: X509Certificate;

beforeAll(async () => {
  home = await temporaryHome();
  first = await initDevPki(home, region, { now });
  ca = await certAt(caFiles(home).cert);
});

afterAll(async () => {
  await Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('initDevPki', () => {
  const leaves = (): { files: { cert: string; key: string }; uri: string; eku: string[] }[] => [
    { files: memberTls(home, IDN), uri: 'urn:corridor:member:IDN', eku: [CLIENT_AUTH] },
    { files: memberTls(home, MYS), uri: 'urn:corridor:member:MYS', eku: [CLIENT_AUTH] },
    { files: agencyTls(home, region.agencies[0]!.id), uri: 'urn:corridor:agency:IDN:immigration', eku: [CLIENT_AUTH] },
    { files: agencyTls(home, region.agencies[1]!.id), uri: 'urn:corridor:agency:IOM:observer', eku: [CLIENT_AUTH] },
    { files: operatorTls(home, region.operators[0]!.id), uri: 'urn:corridor:operator:duty-officer', eku: [CLIENT_AUTH] },
  ];

  it('creates a P-256 CA with pathLen 0 that may only sign certificates and CRLs', async () => {
    expect(ca.ca).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const parsed = new x509.X509Certificate(ca.raw);
    const constraints = parsed.getExtension(x509.BasicConstraintsExtension);
    expect(constraints?.ca).toBe(true);
    expect(constraints?.pathLength).toBe(0);
    expect(constraints?.critical).toBe(true);
    expect(parsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const years = (new Date(ca.validTo).getTime() - now.getTime()) / (365 * DAY_MS);
    expect(years).toBeGreaterThan(4.9);
    expect(years).toBeLessThan(5.1);
  });

  it('issues client certificates that chain to the CA with exactly one identity URI', async () => {
    for (const leaf of leaves()) {
      const cert = await certAt(leaf.files.cert);
      expect(cert.verify(ca.publicKey), leaf.uri).toBe(true);
      expect(cert.checkIssued(ca), leaf.uri).toBe(true);
      expect(cert.ca).toBe(false);
      expect(cert.subjectAltName).toBe(`URI:${leaf.uri}`);
      expect(cert.keyUsage).toEqual(leaf.eku);
      expect(cert.checkPrivateKey(createPrivateKey(await readFile(leaf.files.key)))).toBe(true);
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      // 16 random bytes, positive: 32 hex digits and the top bit clear.
      expect(cert.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
      const days = (new Date(cert.validTo).getTime() - now.getTime()) / DAY_MS;
      expect(Math.round(days)).toBe(90);
    }
  });

  it('issues the hub a server and client certificate for its region URI, localhost and loopback', async () => {
    const hub = await certAt(hubTls(home).cert);
    expect(hub.verify(ca.publicKey)).toBe(true);
    expect(hub.checkIssued(ca)).toBe(true);
    expect(hub.subjectAltName).toBe(`URI:${hubUri('test-corridor')}, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`);
    expect(hub.keyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(hub.checkHost('localhost')).toBe('localhost');
    expect(hub.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('writes private keys 0600 in 0700 directories', async () => {
    const privateFiles = [
      caFiles(home).key,
      hubTls(home).key,
      hubReceiptKeyFile(home),
      hubLogKeyFile(home),
      memberSigningKeyFile(home, IDN),
      memberSigningKeyFile(home, MYS),
      memberWitnessKeyFile(home, IDN),
      ...leaves().map((leaf) => leaf.files.key),
    ];
    for (const file of privateFiles) {
      expect(await mode(file), file).toBe(0o600);
      expect(await mode(path.dirname(file)), path.dirname(file)).toBe(0o700);
    }
    expect(await readFile(hubTls(home).key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('makes Ed25519 signing keys whose kid is their thumbprint, separate from the TLS keys', async () => {
    for (const file of [hubReceiptKeyFile(home), memberSigningKeyFile(home, IDN)]) {
      const jwk = await readPrivateJwk(file);
      expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' });
      expect(typeof jwk.d).toBe('string');
      expect(jwk.kid).toBe(await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x ?? '' }));
      // The raw file carries the same kid, so other tools reading it agree.
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ kid: jwk.kid, alg: 'Ed25519' });
    }
    const memberKeys = await Promise.all([IDN, MYS].map((id) => readPrivateJwk(memberSigningKeyFile(home, id))));
    expect(memberKeys[0]?.x).not.toBe(memberKeys[1]?.x);
  });

  it('makes a log key and a witness key per member, each its own, published in the region as C2SP vkeys', async () => {
    const keys = await Promise.all([hubLogKeyFile(home), hubReceiptKeyFile(home), memberSigningKeyFile(home, IDN), memberWitnessKeyFile(home, IDN), memberWitnessKeyFile(home, MYS)].map((f) => readPrivateJwk(f)));
    expect(new Set(keys.map((k) => k.x)).size).toBe(keys.length);
    const region = first.region;
    expect(region.audit).toMatchObject({ origin: 'test-corridor/audit', quorum: 2 });
    expect(parseVerifierKey(region.audit?.logKey ?? '').publicKey).toEqual(new Uint8Array(Buffer.from(keys[0]?.x ?? '', 'base64url')));
    const idnWitness = parseCosignatureVerifierKey(region.members.find((m) => m.id === IDN)?.witnessKey ?? '');
    expect(idnWitness.name).toBe('test-corridor/witness/IDN');
    expect(idnWitness.publicKey).toEqual(new Uint8Array(Buffer.from(keys[3]?.x ?? '', 'base64url')));
  });

  it('returns the region with each member’s public signing key and never its private part', async () => {
    for (const member of first.region.members) {
      const jwk = await readPrivateJwk(memberSigningKeyFile(home, member.id));
      expect(member.signingKeys).toEqual([{ kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: jwk.kid, alg: 'Ed25519', use: 'sig' }]);
      expect(JSON.stringify(member.signingKeys)).not.toContain('"d"');
    }
  });

  it('is idempotent: a second run creates nothing and keeps every certificate byte for byte', async () => {
    const before = new Map<string, Buffer>();
    for (const file of first.created) before.set(file, await readFile(file));
    const second = await initDevPki(home, first.region, { now });
    expect(second.created).toEqual([]);
    expect(new Set(second.reused)).toEqual(new Set(first.created));
    for (const [file, bytes] of before) expect((await readFile(file)).equals(bytes), file).toBe(true);
    expect(second.region).toEqual(first.region);
  });

  it('adds only the new member’s files when a member joins the region later', async () => {
    const grown = await temporaryHome();
    const initial = await initDevPki(grown, region, { now });
    const later = await initDevPki(grown, withThailand(initial.region), { now });
    expect(new Set(later.created)).toEqual(new Set([memberTls(grown, THA).key, memberTls(grown, THA).cert, memberSigningKeyFile(grown, THA), memberWitnessKeyFile(grown, THA)]));
    expect(new Set(later.reused)).toEqual(new Set(initial.created));
    const thailand = await certAt(memberTls(grown, THA).cert);
    expect(thailand.checkIssued(await certAt(caFiles(grown).cert))).toBe(true);
    expect(thailand.subjectAltName).toBe('URI:urn:corridor:member:THA');
    expect(later.region.members.find((m) => m.id === THA)?.signingKeys).toHaveLength(1);
  });

  it('reissues an expired leaf for the same key, and adds hub hosts it was asked for', async () => {
    const dir = await temporaryHome();
    const past = new Date(now.getTime() - 100 * DAY_MS);
    await initDevPki(dir, region, { now: past });
    const oldKey = await readFile(memberTls(dir, IDN).key);
    const renewed = await initDevPki(dir, region, { now });
    expect(renewed.created).toContain(memberTls(dir, IDN).cert);
    expect(renewed.created).not.toContain(memberTls(dir, IDN).key);
    expect(renewed.created).not.toContain(caFiles(dir).cert);
    expect((await readFile(memberTls(dir, IDN).key)).equals(oldKey)).toBe(true);
    const cert = await certAt(memberTls(dir, IDN).cert);
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(now.getTime());

    const hubKey = await readFile(hubTls(dir).key);
    const withHosts = await initDevPki(dir, region, { now, hubHosts: ['hub.example.org', '10.1.2.3'] });
    expect(withHosts.created).toEqual([hubTls(dir).cert]);
    expect((await readFile(hubTls(dir).key)).equals(hubKey)).toBe(true);
    expect((await certAt(hubTls(dir).cert)).subjectAltName).toContain('DNS:hub.example.org, IP Address:10.1.2.3');
    // Asking again for hosts the certificate already has changes nothing.
    expect((await initDevPki(dir, region, { now, hubHosts: ['HUB.example.org'] })).created).toEqual([]);
  });

  it('refuses invalid options and a CA directory with only half a CA', async () => {
    expect((await rejection(initDevPki(await temporaryHome(), region, { now, validityDays: 0 }))).code).toBe('CONFIG_INVALID');
    expect((await rejection(initDevPki(await temporaryHome(), region, { now, hubHosts: ['bad host\n'] }))).code).toBe('CONFIG_INVALID');
    const dir = await temporaryHome();
    await initDevPki(dir, region, { now });
    await rm(caFiles(dir).cert);
    const error = await rejection(initDevPki(dir, region, { now }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(caFiles(dir).key);
  });
});

describe('region file', () => {
  it('round-trips through parseRegion with the public signing keys', async () => {
    await writeRegionFile(home, first.region);
    const text = await readFile(regionFile(home), 'utf8');
    expect(parseRegion(JSON.parse(text))).toEqual(first.region);
    expect(await readRegionFile(home)).toEqual(first.region);
    expect(text).not.toContain('"d"');
    // The observer organisation keeps its organisation and has no member field.
    expect(text).toContain('"organisation": "IOM"');
  });

  it('refuses an organisation with the id of a member state: it would be party to that state\'s agreements', () => {
    const value = {
      ...regionFileValue,
      agencies: [...regionFileValue.agencies, { id: 'IDN:ngo', name: 'An NGO', organisation: 'IDN', roles: ['protection'] }],
    };
    expect(() => parseRegion(value)).toThrow(/organisation IDN of agency IDN:ngo has the id of a member state/);
  });

    it('says to run `corridor pki init` when there is none', async () => {
    const error = await rejection(readRegionFile(await temporaryHome()));
    expect(error.code).toBe('STATE_MISSING');
    expect(error.message).toContain('corridor pki init');
  });
});

describe('key and identity readers', () => {
  it('refuses a signing key that group or others can read', async () => {
    const dir = await temporaryHome();
    await initDevPki(dir, region, { now });
    const file = memberSigningKeyFile(dir, IDN);
    await chmod(file, 0o640);
    const error = await rejection(readPrivateJwk(file));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('chmod 600');
    await chmod(file, 0o600);
    await expect(readPrivateJwk(file)).resolves.toMatchObject({ kty: 'OKP' });
  });

  it('reports a missing signing key as STATE_MISSING', async () => {
    expect((await rejection(readPrivateJwk(path.join(home, 'nope.jwk')))).code).toBe('STATE_MISSING');
  });

  it('loads a TLS identity and names the file that is missing', async () => {
    const identity = await loadTlsIdentity(memberTls(home, IDN), caFiles(home).cert);
    expect(identity.ca.equals(await readFile(caFiles(home).cert))).toBe(true);
    expect(identity.key.toString()).toContain('PRIVATE KEY');
    const missing = { cert: memberTls(home, IDN).cert, key: path.join(home, 'missing.key') };
    const error = await rejection(loadTlsIdentity(missing, caFiles(home).cert));
    expect(error.code).toBe('STATE_MISSING');
    expect(error.message).toContain(missing.key);
    const mismatched = { cert: memberTls(home, IDN).cert, key: memberTls(home, MYS).key };
    expect((await rejection(loadTlsIdentity(mismatched, caFiles(home).cert))).code).toBe('CONFIG_INVALID');
  });
});

type Handshake =
  | { readonly ok: true; readonly subjectaltname: string | undefined }
  | { readonly ok: false; readonly error: string; readonly serverError: string | undefined };

/**
 * Starts a TLS server with the hub identity that requires a client certificate from the CA,
 * connects with `client`, and reports what the server saw. The server writes one byte after a
 * verified handshake; under TLS 1.3 the client finishes its side before the server has checked
 * its certificate, so only that byte proves the server accepted it.
 */
async function handshake(client: { cert: Buffer; key: Buffer }): Promise<Handshake> {
  const hub = await loadTlsIdentity(hubTls(home), caFiles(home).cert);
  let serverSaw: string | undefined;
  const server = tls.createServer({ ...hub, requestCert: true, rejectUnauthorized: true }, (socket) => {
    serverSaw = socket.getPeerCertificate().subjectaltname;
    socket.end('k');
  });
  let serverError: string | undefined;
  server.on('tlsClientError', (error) => (serverError = error.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the test server has no TCP address');
  const { port } = address;
  try {
    return await new Promise<Handshake>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: hub.ca, cert: client.cert, key: client.key });
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('error', (error) => resolve({ ok: false, error: error.message, serverError }));
      socket.on('close', () =>
        resolve(received === 'k' ? { ok: true, subjectaltname: serverSaw } : { ok: false, error: 'closed without data', serverError }),
      );
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('mutual TLS with the dev PKI', () => {
  it('accepts a member certificate and shows the server its identity URI', async () => {
    const member = await loadTlsIdentity(memberTls(home, IDN), caFiles(home).cert);
    const result = await handshake(member);
    expect(result).toEqual({ ok: true, subjectaltname: 'URI:urn:corridor:member:IDN' });
  });

  it('refuses a client certificate from another region’s CA', async () => {
    const otherHome = await temporaryHome();
    await initDevPki(otherHome, region, { now });
    const stranger = await loadTlsIdentity(memberTls(otherHome, IDN), caFiles(otherHome).cert);
    expect(new X509Certificate(stranger.cert).checkIssued(ca)).toBe(false);
    const result = await handshake(stranger);
    // Node verifies the client chain after the handshake and then drops the connection
    // without an alert, so the client sees a close and the server a client error.
    expect(result).toMatchObject({ ok: false, serverError: expect.any(String) });
  });
});

async function hasOpenssl(): Promise<boolean> {
  try {
    await execFileAsync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!(await hasOpenssl()))('certs/issue-cert.sh', () => {
  it('makes a key and CSR, and signs it with the dev CA for the identity given to sign', async () => {
    const dir = await temporaryHome();
    const out = path.join(dir, 'tha');
    await execFileAsync(ISSUE_CERT, ['csr', 'member', 'THA', out]);
    expect(await mode(path.join(out, 'tls.key'))).toBe(0o600);
    const certFile = path.join(dir, 'tha.crt');
    const { cert: caCert, key: caKey } = caFiles(home);
    await execFileAsync(ISSUE_CERT, ['sign', 'member', 'THA', path.join(out, 'tls.csr'), caCert, caKey, certFile, '30']);
    const cert = await certAt(certFile);
    expect(cert.subjectAltName).toBe('URI:urn:corridor:member:THA');
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(path.join(out, 'tls.key'))))).toBe(true);
    expect(Math.round((new Date(cert.validTo).getTime() - Date.now()) / DAY_MS)).toBe(30);
  });

  it('takes only the public key from the CSR, never its subject or extensions', async () => {
    const dir = await temporaryHome();
    const csr = path.join(dir, 'greedy.csr');
    await execFileAsync('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'greedy.key'),
      '-subj', '/CN=member:MYS/O=Elsewhere', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'subjectAltName=DNS:hub.example.org',
      '-out', csr,
    ]);
    const certFile = path.join(dir, 'greedy.crt');
    const { cert: caCert, key: caKey } = caFiles(home);
    await execFileAsync(ISSUE_CERT, ['sign', 'member', 'IDN', csr, caCert, caKey, certFile]);
    const cert = await certAt(certFile);
    expect(cert.subject).toBe('CN=member:IDN\nO=Corridor');
    expect(cert.subjectAltName).toBe('URI:urn:corridor:member:IDN');
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
  });

  it('refuses to sign a CSR for a different identity than the one named', async () => {
    const dir = await temporaryHome();
    await execFileAsync(ISSUE_CERT, ['csr', 'member', 'THA', dir]);
    const { cert: caCert, key: caKey } = caFiles(home);
    const signing = execFileAsync(ISSUE_CERT, ['sign', 'member', 'IDN', path.join(dir, 'tls.csr'), caCert, caKey, path.join(dir, 'x.crt')]);
    await expect(signing).rejects.toThrow(/asks for URI:urn:corridor:member:THA/);
  });
});
