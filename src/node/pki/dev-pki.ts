/**
 * The development PKI behind `corridor pki init`: a regional CA, the hub's server certificate
 * and receipt-signing key, and a client certificate for every member, agency and operator the
 * region file names, plus each member's Ed25519 bulletin-signing key. Everything is written
 * under `CORRIDOR_HOME` (see `src/infra/home.ts`) and nothing it generates is ever committed.
 *
 * A real deployment does not use this module: members generate their own keys and the
 * region's CA signs their CSRs (see `certs/README.md` and `certs/issue-cert.sh`). The readers
 * at the bottom (`readRegionFile`, `loadTlsIdentity`, `readPrivateJwk`) are used by both.
 *
 * Idempotent by construction: each file is created only where it is missing, so a second run
 * reuses everything and a member added to the region later gets only its own files. A leaf
 * certificate that no longer fits (expired at `now`, issued by another CA, wrong names, or not
 * matching its key) is reissued for the key on disk rather than left to fail a handshake.
 */
// @peculiar/x509 resolves its internals through tsyringe, which needs the Reflect metadata
// polyfill to be loaded before the library module is evaluated.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { fail, isCorridorError } from '../../core/errors.js';
import { identityLabel, identityUri, printable } from '../../core/ids.js';
import type { Identity } from '../../core/ids.js';
import { jwkThumbprint } from '../../core/jws.js';
import { cosignatureVerifier } from '../../core/checkpoint.js';
import { ed25519NoteVerifier } from '../../core/note.js';
import { parseRegion } from '../../core/region.js';
import type { MemberRecord, PublicJwk, Region } from '../../core/region.js';
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
} from '../../infra/home.js';
import type { TlsFiles } from '../../infra/home.js';
import { readPrivateJwkFile } from '../../infra/keys.js';

// The library falls back to this provider wherever an API takes no explicit `crypto`
// argument; we also pass it explicitly below. Setting it is idempotent and process-wide.
x509.cryptoProvider.set(webcrypto);

const generateKeyPairAsync = promisify(generateKeyPair);

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_DAYS = 5 * 365;
const DEFAULT_LEAF_VALIDITY_DAYS = 90;
/** Hosts a dev hub always answers on, whatever else the caller asks for. */
const DEFAULT_HUB_HOSTS = ['localhost', '127.0.0.1', '::1'];
/** Backdating `notBefore` absorbs clock skew between the machine that issues and the peers. */
const BACKDATE_MS = 5 * 60 * 1000;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNATURE_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const PRIVATE_FILE_MODE = 0o600;
const PUBLIC_FILE_MODE = 0o644;
const PRIVATE_DIR_MODE = 0o700;

/** What {@link initDevPki} did, by file path, and the region with the members' public signing keys filled in. */
export interface DevPkiResult {
  /** Files written by this call (new, or a leaf certificate reissued because it no longer fitted). */
  readonly created: string[];
  /** Files that already existed and were kept as they are. */
  readonly reused: string[];
  /** The input region; every member's `signingKeys` includes its public key (never `d`). */
  readonly region: Region;
}

/** Options for {@link initDevPki}. */
export interface DevPkiOptions {
  /** The issuing time; validity periods and the expiry check of reused certificates use it. */
  readonly now: Date;
  /** Validity of leaf certificates in days; 90 by default. */
  readonly validityDays?: number;
  /** Extra DNS names or IP addresses for the hub certificate, besides localhost, 127.0.0.1 and ::1. */
  readonly hubHosts?: readonly string[];
}

/** The SAN URI of the hub of `region`: `urn:corridor:hub:<region>`. */
export function hubUri(region: string): string {
  return `urn:corridor:hub:${region}`;
}

/**
 * Creates whatever is missing of the dev PKI for `region` under `home` and returns what it
 * created and reused. Safe to run again; see the module comment for what "missing" means.
 *
 * @throws CorridorError `CONFIG_INVALID` for a bad option, a CA whose key does not match or that
 *   has expired, or an unusable key file.
 */
export async function initDevPki(home: string, region: Region, options: DevPkiOptions): Promise<DevPkiResult> {
  const now = options.now;
  if (Number.isNaN(now.getTime())) fail('CONFIG_INVALID', 'pki init: `now` is not a valid date');
  const validityDays = options.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > CA_VALIDITY_DAYS) {
    fail('CONFIG_INVALID', `pki init: validity must be a whole number of days between 1 and ${CA_VALIDITY_DAYS}; got ${validityDays}`);
  }
  // Validated before anything is written, so a typo in a host name leaves no half-made PKI.
  const hubNames = hostNames([...DEFAULT_HUB_HOSTS, ...(options.hubHosts ?? [])]);
  const progress: Progress = { created: [], reused: [] };
  await mkdir(home, { recursive: true, mode: PRIVATE_DIR_MODE });

  const ca = await ensureCa(home, region.region, now, progress);
  const issue = (files: TlsFiles, leaf: LeafSpec): Promise<void> => ensureLeaf(files, leaf, ca, now, validityDays, progress);
  const clientLeaf = (identity: Identity): LeafSpec => ({
    label: identityLabel(identity),
    names: [{ type: 'url', value: identityUri(identity) }],
    usages: [x509.ExtendedKeyUsage.clientAuth],
  });

  await issue(hubTls(home), {
    label: `hub:${region.region}`,
    names: [{ type: 'url', value: hubUri(region.region) }, ...hubNames],
    // clientAuth too, so the hub can present the same identity when it dials out.
    usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  });
  await ensureSigningKey(hubReceiptKeyFile(home), progress);
  const origin = region.audit?.origin ?? auditOrigin(region.region);
  const logKey = ed25519NoteVerifier(origin, Buffer.from((await ensureSigningKey(hubLogKeyFile(home), progress)).x, 'base64url')).vkey;

  const members: MemberRecord[] = [];
  for (const member of region.members) {
    await issue(memberTls(home, member.id), clientLeaf({ kind: 'member', id: member.id }));
    const publicKey = await ensureSigningKey(memberSigningKeyFile(home, member.id), progress);
    // Keys the region file already lists (a rollover in progress, say) stay; ours replaces any
    // entry for the same key so it carries its kid and alg.
    const others = member.signingKeys.filter((key) => key.x !== publicKey.x);
    const witnessPublic = await ensureSigningKey(memberWitnessKeyFile(home, member.id), progress);
    const witnessKey = cosignatureVerifier(witnessName(region.region, member.id), Buffer.from(witnessPublic.x, 'base64url')).vkey;
    members.push({ ...member, signingKeys: [...others, publicKey], witnessKey });
  }
  for (const agency of region.agencies) await issue(agencyTls(home, agency.id), clientLeaf({ kind: 'agency', id: agency.id }));
  for (const operator of region.operators) await issue(operatorTls(home, operator.id), clientLeaf({ kind: 'operator', id: operator.id }));

  const quorum = region.audit?.quorum ?? Math.min(DEFAULT_WITNESS_QUORUM, members.length);
  return { created: progress.created, reused: progress.reused, region: { ...region, members, audit: { origin, logKey, quorum } } };
}

/** Cosignatures from different states that make a checkpoint final, unless the region file says otherwise. */
const DEFAULT_WITNESS_QUORUM = 2;

/** The default checkpoint origin of a region's audit log. */
export function auditOrigin(region: string): string {
  return `${region}/audit`;
}

/** The name a member's witness key signs under. */
export function witnessName(region: string, member: string): string {
  return `${region}/witness/${member}`;
}

interface Progress {
  readonly created: string[];
  readonly reused: string[];
}

interface LeafSpec {
  /** Subject CN: the identity label, e.g. `member:IDN`. */
  readonly label: string;
  readonly names: readonly x509.JsonGeneralName[];
  readonly usages: readonly x509.ExtendedKeyUsage[];
}

interface IssuingCa {
  readonly cert: x509.X509Certificate;
  /** The same certificate parsed by Node, for the chain checks OpenSSL itself will apply. */
  readonly nodeCert: X509Certificate;
  readonly signingKey: webcrypto.CryptoKey;
  readonly keyId: string;
}

async function ensureCa(home: string, region: string, now: Date, progress: Progress): Promise<IssuingCa> {
  const files = caFiles(home);
  await ensurePrivateDir(path.dirname(files.key));
  const certPem = await readIfExists(files.cert);
  const keyPem = await readIfExists(files.key);
  if (certPem !== undefined && keyPem !== undefined) {
    const ca = await loadCa(files, certPem, keyPem, now);
    progress.reused.push(files.cert, files.key);
    return ca;
  }
  if (certPem !== undefined || keyPem !== undefined) {
    // Regenerating half a CA would orphan every certificate it issued; make that a decision.
    const present = certPem !== undefined ? files.cert : files.key;
    fail('CONFIG_INVALID', `pki init: ${present} exists but its ${certPem !== undefined ? 'key' : 'certificate'} does not; remove ${path.dirname(present)} to start a new CA (every certificate is then reissued)`);
  }

  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const name = [{ CN: [`Corridor dev CA (${region})`] }, { O: ['Corridor'] }];
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: SIGNATURE_ALGORITHM,
      extensions: [
        // pathLen 0: this CA issues leaves only, never a subordinate CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ski,
      ],
    },
    webcrypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  // Key before certificate: a crash in between leaves a key without a certificate, which the
  // half-CA check above reports instead of silently replacing.
  await writeAtomic(files.key, pkcs8Pem(Buffer.from(pkcs8)), PRIVATE_FILE_MODE);
  await writeAtomic(files.cert, cert.toString('pem') + '\n', PUBLIC_FILE_MODE);
  progress.created.push(files.key, files.cert);
  return { cert, nodeCert: new X509Certificate(cert.toString('pem')), signingKey: keys.privateKey, keyId: ski.keyId };
}

async function loadCa(files: TlsFiles, certPem: string, keyPem: string, now: Date): Promise<IssuingCa> {
  const keyObject = parseEcKey(files.key, keyPem);
  let cert: x509.X509Certificate;
  let nodeCert: X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
    nodeCert = new X509Certificate(certPem);
  } catch (cause) {
    fail('CONFIG_INVALID', `pki init: ${files.cert} is not a PEM certificate; remove the CA directory to start a new CA`, cause);
  }
  if (!nodeCert.ca) fail('CONFIG_INVALID', `pki init: ${files.cert} is not a CA certificate`);
  if (!nodeCert.checkPrivateKey(keyObject)) fail('CONFIG_INVALID', `pki init: ${files.key} is not the key of ${files.cert}`);
  if (cert.notAfter.getTime() <= now.getTime()) {
    fail('CONFIG_INVALID', `pki init: the dev CA ${files.cert} expired on ${cert.notAfter.toISOString()}; remove ${path.dirname(files.cert)} to start a new CA (every certificate is then reissued)`);
  }
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const keyId = ski?.keyId ?? (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey, false, webcrypto)).keyId;
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  return { cert, nodeCert, signingKey, keyId };
}

async function ensureLeaf(files: TlsFiles, leaf: LeafSpec, ca: IssuingCa, now: Date, validityDays: number, progress: Progress): Promise<void> {
  await ensurePrivateDir(path.dirname(files.key));
  const keyPem = await readIfExists(files.key);
  let key: KeyObject;
  if (keyPem === undefined) {
    ({ privateKey: key } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' }));
    await writeAtomic(files.key, key.export({ type: 'pkcs8', format: 'pem' }).toString(), PRIVATE_FILE_MODE);
    progress.created.push(files.key);
  } else {
    key = parseEcKey(files.key, keyPem);
    progress.reused.push(files.key);
  }

  const certPem = await readIfExists(files.cert);
  if (certPem !== undefined && leafFits(certPem, leaf, key, ca, now)) {
    progress.reused.push(files.cert);
    return;
  }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const caNotAfter = ca.cert.notAfter.getTime();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [leaf.label] }, { O: ['Corridor'] }],
      issuer: ca.cert.subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      // Never outlive the issuer: a chain is only as valid as its shortest link.
      notAfter: new Date(Math.min(now.getTime() + validityDays * DAY_MS, caNotAfter)),
      publicKey: spki,
      signingKey: ca.signingKey,
      signingAlgorithm: SIGNATURE_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        // digitalSignature is all (EC)DHE with an ECDSA certificate needs.
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([...leaf.usages], false),
        // The subject is not empty, so the SAN need not be critical (RFC 5280 §4.2.1.6).
        new x509.SubjectAlternativeNameExtension([...leaf.names], false),
        await x509.SubjectKeyIdentifierExtension.create(spki, false, webcrypto),
        new x509.AuthorityKeyIdentifierExtension(ca.keyId, false),
      ],
    },
    webcrypto,
  );
  await writeAtomic(files.cert, cert.toString('pem') + '\n', PUBLIC_FILE_MODE);
  progress.created.push(files.cert);
}

/** Whether an existing leaf certificate can be kept: same CA, same key, the right names and usages, not expired. */
function leafFits(certPem: string, leaf: LeafSpec, key: KeyObject, ca: IssuingCa, now: Date): boolean {
  let cert: x509.X509Certificate;
  let nodeCert: X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
    nodeCert = new X509Certificate(certPem);
  } catch {
    return false;
  }
  if (!nodeCert.checkIssued(ca.nodeCert) || !nodeCert.verify(ca.nodeCert.publicKey) || !nodeCert.checkPrivateKey(key)) return false;
  if (cert.notAfter.getTime() <= now.getTime()) return false;
  const usages = new Set(nodeCert.keyUsage ?? []);
  if (!leaf.usages.every((usage) => usages.has(usage))) return false;
  const present = (cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).map(nameKey);
  const wanted = leaf.names.map(nameKey);
  // Extra host names on the hub are harmless; an extra identity URI would make the peer ambiguous.
  const presentUris = present.filter((name) => name.startsWith('url:'));
  const wantedUris = wanted.filter((name) => name.startsWith('url:'));
  return wanted.every((name) => present.includes(name)) && presentUris.length === wantedUris.length;
}

function nameKey(name: x509.JsonGeneralName): string {
  return `${name.type}:${name.type === 'ip' ? canonicalIp(name.value) : name.value.toLowerCase()}`;
}

function canonicalIp(value: string): string {
  // The URL parser compresses IPv6 (`0:0::1` → `::1`), so equal addresses compare equal.
  return isIP(value) === 6 ? new URL(`http://[${value}]/`).hostname.slice(1, -1) : value;
}

function hostNames(hosts: readonly string[]): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = [];
  const seen = new Set<string>();
  for (const host of hosts) {
    let name: x509.JsonGeneralName;
    if (isIP(host) !== 0) name = { type: 'ip', value: canonicalIp(host) };
    else if (/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host)) {
      name = { type: 'dns', value: host.toLowerCase() };
    } else fail('CONFIG_INVALID', `pki init: hub host "${printable(host, 60)}" is neither a DNS name nor an IP address`);
    const key = nameKey(name);
    if (!seen.has(key)) names.push(name);
    seen.add(key);
  }
  return names;
}

/** Reuses or creates an Ed25519 private JWK at `file` and returns its public half. */
async function ensureSigningKey(file: string, progress: Progress): Promise<PublicJwk> {
  await ensurePrivateDir(path.dirname(file));
  let jwk = await readPrivateJwk(file).catch((cause: unknown) => {
    if (isCorridorError(cause) && cause.code === 'STATE_MISSING') return undefined;
    throw cause;
  });
  if (jwk !== undefined) {
    progress.reused.push(file);
  } else {
    const { privateKey } = await generateKeyPairAsync('ed25519');
    const exported = privateKey.export({ format: 'jwk' });
    if (typeof exported.x !== 'string' || typeof exported.d !== 'string') fail('INTERNAL', 'Node did not export an Ed25519 JWK');
    const kid = await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: exported.x });
    jwk = { kty: 'OKP', crv: 'Ed25519', x: exported.x, d: exported.d, kid, alg: 'Ed25519', use: 'sig' };
    await writeAtomic(file, `${JSON.stringify(jwk, null, 2)}\n`, PRIVATE_FILE_MODE);
    progress.created.push(file);
  }
  // readPrivateJwk has checked these; restated for the type checker without a cast.
  if (typeof jwk.x !== 'string' || typeof jwk.kid !== 'string') fail('INTERNAL', `${file}: the signing key lost its x or kid`);
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: jwk.kid, alg: 'Ed25519', use: 'sig' };
}

/**
 * Writes `region` to `regionFile(home)` as pretty JSON in the shape {@link parseRegion} accepts,
 * atomically (temporary file, then rename). The file holds only public keys.
 */
export async function writeRegionFile(home: string, region: Region): Promise<void> {
  await mkdir(home, { recursive: true, mode: PRIVATE_DIR_MODE });
  const file = {
    region: region.region,
    name: region.name,
    members: region.members.map((m) => ({
      id: m.id,
      name: m.name,
      signingKeys: m.signingKeys.map(publicOnly),
      ...(m.witnessKey === undefined ? {} : { witnessKey: m.witnessKey }),
      ...(m.centralAuthority === undefined ? {} : { centralAuthority: m.centralAuthority }),
    })),
    // Optional fields are left out rather than written as null: the schema is strict.
    agencies: region.agencies.map((a) => ({
      id: a.id,
      name: a.name,
      ...(a.member === undefined ? {} : { member: a.member }),
      ...(a.organisation === undefined ? {} : { organisation: a.organisation }),
      roles: [...a.roles],
    })),
    operators: region.operators.map((o) => ({ id: o.id, name: o.name })),
    ...(region.audit === undefined ? {} : { audit: { origin: region.audit.origin, logKey: region.audit.logKey, quorum: region.audit.quorum } }),
    ...(region.retentionDays === undefined ? {} : { retentionDays: region.retentionDays }),
  };
  // Never write a file the hub would then refuse to load (too many keys, a broken reference).
  parseRegion(file);
  await writeAtomic(regionFile(home), `${JSON.stringify(file, null, 2)}\n`, PUBLIC_FILE_MODE);
}

/** Copies only the public members of a key, so a private JWK passed by mistake cannot leak its `d`. */
function publicOnly(key: PublicJwk): PublicJwk {
  return {
    kty: key.kty,
    crv: key.crv,
    x: key.x,
    ...(key.kid === undefined ? {} : { kid: key.kid }),
    ...(key.alg === undefined ? {} : { alg: key.alg }),
    ...(key.use === undefined ? {} : { use: key.use }),
  };
}

/**
 * Reads and validates `regionFile(home)`.
 *
 * @throws CorridorError `STATE_MISSING` if there is no region file yet, `CONFIG_INVALID` if it is not a valid one.
 */
export async function readRegionFile(home: string): Promise<Region> {
  const file = regionFile(home);
  const text = await readIfExists(file);
  if (text === undefined) fail('STATE_MISSING', `there is no region file at ${file}; run \`corridor pki init\` first`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    fail('CONFIG_INVALID', `${file} is not valid JSON; fix it or run \`corridor pki init\` again`, cause);
  }
  return parseRegion(value);
}

/**
 * Reads a TLS identity: the CA certificate to trust, and this party's certificate and private
 * key, as PEM buffers ready for `tls.createSecureContext` or grpc-js credentials. Checks that
 * the key belongs to the certificate, which otherwise surfaces as an obscure handshake error.
 *
 * @throws CorridorError `STATE_MISSING` naming the missing file, `CONFIG_INVALID` if a file is
 *   not PEM or the key does not match the certificate.
 */
export async function loadTlsIdentity(files: TlsFiles, caCertPath: string): Promise<{ ca: Buffer; cert: Buffer; key: Buffer }> {
  const ca = await readRequired(caCertPath, 'CA certificate');
  const cert = await readRequired(files.cert, 'certificate');
  const key = await readRequired(files.key, 'private key');
  let matches: boolean;
  try {
    // Parsed only to fail here, with file names, rather than later inside the TLS stack.
    new X509Certificate(ca);
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (cause) {
    fail('CONFIG_INVALID', `${caCertPath}, ${files.cert} or ${files.key} is not a PEM certificate or unencrypted private key`, cause);
  }
  if (!matches) fail('CONFIG_INVALID', `${files.key} is not the private key of ${files.cert}`);
  return { ca, cert, key };
}

async function readRequired(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    if (isNotFound(cause)) {
      fail('STATE_MISSING', `the ${what} ${file} is missing; run \`corridor pki init\` (development) or install the certificate issued for this identity (see certs/README.md)`, cause);
    }
    throw cause;
  }
}

/** Reads a member's or the hub's private signing JWK; see {@link readPrivateJwkFile}. */
export const readPrivateJwk = readPrivateJwkFile;

/** Sixteen random bytes as a positive, minimally encoded DER integer (RFC 5280 §4.1.2.2). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  // Clear the sign bit (positive) and keep the first byte non-zero (no leading-zero trimming).
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function parseEcKey(file: string, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    fail('CONFIG_INVALID', `${file} is not an unencrypted PEM private key; remove it to have a new one generated`, cause);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    fail('CONFIG_INVALID', `${file} is not a P-256 key; remove it to have a new one generated`);
  }
  return key;
}

function pkcs8Pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask and ignored for a directory that already exists.
  await chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * Writes `data` to a temporary file beside `file`, flushes it and renames it into place, so a
 * reader never sees a half-written key and a crash never leaves one behind. The temporary
 * file is created with its final mode, so a private key is never briefly readable by others.
 */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      await handle.writeFile(data);
      // The umask may have narrowed a public file's mode; make it what we meant.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (cause) {
    await unlink(temporary).catch(() => undefined);
    fail('INTERNAL', `could not write ${file}`, cause);
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    if (isNotFound(cause)) return undefined;
    throw cause;
  }
}

function isNotFound(cause: unknown): boolean {
  return cause instanceof Error && 'code' in cause && cause.code === 'ENOENT';
}
