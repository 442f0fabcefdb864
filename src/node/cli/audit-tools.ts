/**
 * The operators' audit tools (issue 4):
 *
 * - `corridor audit verify` rebuilds the whole Merkle tree from the stored leaves and checks every
 *   checkpoint, every level-0 tile and every event's details, naming the first bad index;
 * - `corridor audit search` answers who received a bulletin, what an agency received in a period,
 *   and every refusal of a state, with the policy version and reason of each decision;
 * - `corridor audit export` writes an evidence bundle about one bulletin, and
 *   `corridor audit verify-bundle` checks one offline, with no database and no network.
 *
 * Everything the hub sends is checked against the trust anchors of the operator's own region file
 * (origin, log key, witness keys, quorum); nothing the hub says about its own log is believed.
 */
import { writeFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { LogVerifier } from '../../core/audit-verify.js';
import type { LogVerifyReport, ServedLeaf } from '../../core/audit-verify.js';
import { parseCosignatureVerifierKey } from '../../core/checkpoint.js';
import type { CheckpointTrust } from '../../core/checkpoint.js';
import { CorridorError, fail } from '../../core/errors.js';
import { asAgencyId, asMemberId, parseBulletinId, printable } from '../../core/ids.js';
import { BUNDLE_FORMAT, MAX_BUNDLE_BYTES, kindName, parseBundle, toBase64, verifyBundle } from '../../core/evidence-bundle.js';
import type { BundleReport, EvidenceBundle, PinnedAnchors } from '../../core/evidence-bundle.js';
import { parseVerifierKey } from '../../core/note.js';
import { parseRegion, publicJwkSchema } from '../../core/region.js';
import type { PublicJwk, Region } from '../../core/region.js';
import { parseStrictJson } from '../../core/strict-json.js';
import { TILE_WIDTH, tileWidth } from '../../core/tiles.js';
import {
  AuditService,
  EventKind,
  GetBulletinEvidenceRequestSchema,
  GetCheckpointRequestSchema,
  GetEntriesRequestSchema,
  GetInclusionProofRequestSchema,
  GetTileRequestSchema,
  ListCheckpointsRequestSchema,
  ListEventsRequestSchema,
} from '../../gen/corridor/v1/audit_pb.js';
import type { AuditEvent, GetCheckpointResponse, SignedCheckpoint } from '../../gen/corridor/v1/audit_pb.js';
import type { HubConnection } from '../hub-client.js';
import { readRegionFile } from '../pki/dev-pki.js';
import { HUB_DEADLINE_MS, callHub, connectAsOperator, readJsonFile } from './agreement.js';
import type { OperatorOptions } from './agreement.js';
import { homeFrom, parseTime } from './common.js';

type Print = (line: string) => void;
/** The ListEvents filters the tools use. */
interface EventFilter {
  kinds?: EventKind[];
  bulletinId?: string;
  agencyId?: string;
  actorMember?: string;
  sinceMs?: bigint;
  untilMs?: bigint;
}

/** Leaves per GetEntries call (the hub's limit). */
const ENTRY_PAGE = 1000;
const CHECKPOINT_PAGE = 1000;
const EVENT_PAGE = 1000;
/** Missing leaves located one by one; past this, a failing range is taken as missing whole. */
const MAX_LOCATED_GAPS = 64;
/** Calls in flight at once when fetching tiles and proofs. */
const PARALLEL = 16;

// ---------------------------------------------------------------------------------------------
// Trust anchors

/** The region file the operator trusts: `--region FILE`, else the state directory's. */
async function trustedRegion(options: { home?: string; region?: string }): Promise<Region> {
  if (options.region !== undefined) return readRegionFrom(options.region);
  return readRegionFile(homeFrom(options));
}

async function readRegionFrom(file: string): Promise<Region> {
  return parseRegion(await readJsonFile(file, 'the region file', { code: 'CONFIG_INVALID', maxBytes: 4 * 1024 * 1024 }));
}

function checkpointTrust(region: Region): { trust: CheckpointTrust; quorum: number; witnessMembers: Map<string, string> } {
  const audit = region.audit;
  if (audit === undefined) fail('CONFIG_INVALID', 'the region file has no audit settings (origin, log key, quorum); run corridor pki init to add them');
  const witnessMembers = new Map<string, string>();
  const witnessVerifiers = region.members.flatMap((member) => {
    if (member.witnessKey === undefined) return [];
    const verifier = parseCosignatureVerifierKey(member.witnessKey);
    witnessMembers.set(verifier.name, member.id);
    return [verifier];
  });
  return { trust: { origin: audit.origin, logVerifiers: [parseVerifierKey(audit.logKey)], witnessVerifiers }, quorum: audit.quorum, witnessMembers };
}

// ---------------------------------------------------------------------------------------------
// corridor audit verify

export interface AuditVerifyOptions extends OperatorOptions {
  /** A region file to take the trust anchors from instead of the state directory's. */
  region?: string;
  json?: boolean;
}

/**
 * Verifies the whole audit log. Prints a summary and returns the report; when anything is wrong,
 * prints every problem found (the first bad index first) and throws `LOG_INCONSISTENT` naming it.
 */
export async function auditVerify(options: AuditVerifyOptions, print: Print): Promise<LogVerifyReport> {
  const { trust, quorum, witnessMembers } = checkpointTrust(await trustedRegion(options));
  const { hub } = await connectAsOperator(options);
  try {
    const verifier = new LogVerifier(trust, quorum, witnessMembers);
    verifier.addCheckpoints(
      (await listAllCheckpoints(hub)).map((c) => ({ treeSize: c.treeSize, rootHash: c.rootHash, note: c.note })),
    );
    const size = verifier.treeSize;
    const tiles = new TileSource(hub, size, verifier);
    const entries = new EntrySource(hub);
    for (let start = 0n; start < size; start += BigInt(ENTRY_PAGE)) {
      const end = start + BigInt(ENTRY_PAGE) < size ? start + BigInt(ENTRY_PAGE) : size;
      const [leaves] = await Promise.all([entries.range(start, end), tiles.prefetch(start, end)]);
      for (const [i, leaf] of leaves.entries()) {
        const index = start + BigInt(i);
        verifier.addLeaf(index, leaf, await tiles.hashOf(index));
      }
      tiles.forgetBefore(end);
    }
    await eachEvent(hub, {}, size, (event) => {
      // An empty details message is zero bytes; the salt says whether details are stored.
      if (event.detailsSalt.byteLength > 0) verifier.checkDetails(event.position, event.detailsBytes, event.detailsSalt);
    });
    const report = verifier.report();
    printVerifyReport(report, options.json === true, print);
    if (!report.ok) {
      const first = report.problems[0];
      throw new CorridorError('LOG_INCONSISTENT', `audit log verification failed: ${first?.message ?? `${report.problemCount} problems`}`);
    }
    return report;
  } finally {
    hub.close();
  }
}

async function listAllCheckpoints(hub: HubConnection): Promise<SignedCheckpoint[]> {
  const all: SignedCheckpoint[] = [];
  let after = 0n;
  for (;;) {
    const page = await callHub(() =>
      hub.audit.unary(AuditService.method.listCheckpoints, create(ListCheckpointsRequestSchema, { afterSize: after, pageSize: CHECKPOINT_PAGE }), { deadlineMs: HUB_DEADLINE_MS }),
    );
    all.push(...page.checkpoints);
    if (page.nextAfterSize === 0n) return all;
    after = page.nextAfterSize;
  }
}

/** Reads leaves; a range the hub cannot serve whole is split until the missing leaves are named. */
class EntrySource {
  readonly #hub: HubConnection;
  #located = 0;

  constructor(hub: HubConnection) {
    this.#hub = hub;
  }

  async range(start: bigint, end: bigint): Promise<ServedLeaf[]> {
    let response;
    try {
      response = await callHub(() => this.#hub.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start, end }), { deadlineMs: HUB_DEADLINE_MS }));
    } catch (error) {
      if (!(error instanceof CorridorError) || error.code !== 'LOG_INCONSISTENT') throw error;
      if (end - start === 1n || this.#located >= MAX_LOCATED_GAPS) {
        this.#located++;
        return Array.from({ length: Number(end - start) }, () => ({ kind: 'missing' as const, reason: `the hub cannot serve it (${error.message})` }));
      }
      const middle = start + (end - start) / 2n;
      return [...(await this.range(start, middle)), ...(await this.range(middle, end))];
    }
    // The hub answered: it must be exactly the range asked, in order, every leaf whole.
    if (response.entries.length !== Number(end - start)) {
      fail('LOG_INCONSISTENT', `the hub returned ${response.entries.length} entries for [${start}, ${end})`);
    }
    return response.entries.map((entry, i): ServedLeaf => {
      const index = start + BigInt(i);
      if (entry.index !== index) return { kind: 'missing', reason: `the hub served leaf ${entry.index} in its place` };
      if (entry.withheld) return { kind: 'missing', reason: 'the hub withheld it from an operator' };
      return { kind: 'leaf', bytes: entry.leafBytes, storedHash: entry.leafHash };
    });
  }
}

/** The level-0 tiles of a tree of `size`, fetched a page ahead and forgotten once passed. */
class TileSource {
  readonly #hub: HubConnection;
  readonly #size: bigint;
  readonly #verifier: LogVerifier;
  readonly #tiles = new Map<bigint, Promise<Uint8Array | undefined>>();

  constructor(hub: HubConnection, size: bigint, verifier: LogVerifier) {
    this.#hub = hub;
    this.#size = size;
    this.#verifier = verifier;
  }

  async prefetch(start: bigint, end: bigint): Promise<void> {
    const wanted: bigint[] = [];
    for (let tile = start / BigInt(TILE_WIDTH); tile <= (end - 1n) / BigInt(TILE_WIDTH); tile++) wanted.push(tile);
    await inBatches(wanted, PARALLEL, (tile) => this.#tile(tile));
  }

  async hashOf(index: bigint): Promise<Uint8Array | undefined> {
    const data = await this.#tile(index / BigInt(TILE_WIDTH));
    const offset = Number(index % BigInt(TILE_WIDTH)) * 32;
    return data === undefined || data.byteLength < offset + 32 ? undefined : data.subarray(offset, offset + 32);
  }

  forgetBefore(index: bigint): void {
    const keep = index / BigInt(TILE_WIDTH);
    for (const tile of this.#tiles.keys()) if (tile < keep) this.#tiles.delete(tile);
  }

  #tile(tile: bigint): Promise<Uint8Array | undefined> {
    let data = this.#tiles.get(tile);
    if (data === undefined) {
      const width = tileWidth(this.#size, 0, tile);
      data = callHub(() => this.#hub.audit.unary(AuditService.method.getTile, create(GetTileRequestSchema, { level: 0, index: tile, width }), { deadlineMs: HUB_DEADLINE_MS })).then(
        (response) => {
          if (response.data.byteLength !== width * 32) {
            this.#verifier.tileUnavailable(tile, `the hub sent ${response.data.byteLength} bytes for ${width} hashes`);
            return undefined;
          }
          return response.data;
        },
        (error: unknown) => {
          if (!(error instanceof CorridorError) || error.code !== 'LOG_INCONSISTENT') throw error;
          this.#verifier.tileUnavailable(tile, error.message);
          return undefined;
        },
      );
      this.#tiles.set(tile, data);
    }
    return data;
  }
}

function printVerifyReport(report: LogVerifyReport, json: boolean, print: Print): void {
  if (json) {
    print(
      JSON.stringify({
        ok: report.ok,
        leaves: report.leaves.toString(),
        checkpoints: report.checkpoints,
        signedCheckpoints: report.signedCheckpoints,
        cosigned: report.cosigned,
        final: report.final,
        quorum: report.quorum,
        latestSize: report.latestSize.toString(),
        latestRoot: report.latestRoot === undefined ? undefined : toBase64(report.latestRoot),
        latestFinalSize: report.latestFinalSize?.toString(),
        detailsChecked: report.detailsChecked,
        problemCount: report.problemCount,
        problems: report.problems.map((p) => ({ index: p.index?.toString(), treeSize: p.treeSize?.toString(), message: p.message })),
      }),
    );
    return;
  }
  const summary =
    `${report.leaves} leaves, ${report.checkpoints} checkpoints (${report.signedCheckpoints} with a valid log signature), ` +
    `${report.cosigned} cosigned, ${report.final} final (quorum ${report.quorum}), details of ${report.detailsChecked} events checked`;
  if (report.ok) {
    print(`audit log verified: ${summary}`);
    if (report.latestRoot !== undefined) print(`latest checkpoint: tree size ${report.latestSize}, root ${toBase64(report.latestRoot)}`);
    print(report.latestFinalSize === undefined ? 'no checkpoint is final yet' : `latest final checkpoint: tree size ${report.latestFinalSize}`);
    return;
  }
  const first = report.problems[0];
  if (first !== undefined) {
    print(first.index === undefined ? `FAILED: ${first.message}` : `FAILED at leaf index ${first.index} (audit position ${first.index + 1n}): ${first.message}`);
  }
  for (const problem of report.problems.slice(1, 20)) print(`  also: ${problem.message}`);
  if (report.problemCount > 20) print(`  … ${report.problemCount - 20} more problems`);
  print(`checked: ${summary}`);
}

// ---------------------------------------------------------------------------------------------
// corridor audit search

export interface AuditSearchOptions extends OperatorOptions {
  bulletin?: string;
  agency?: string;
  member?: string;
  refusals?: boolean;
  since?: string;
  until?: string;
  limit?: string;
  json?: boolean;
}

/** One event as the search shows it. */
export interface SearchHit {
  readonly position: bigint;
  readonly time: Date;
  readonly kind: string;
  readonly actor: string;
  readonly bulletinId: string;
  readonly agencyId: string;
  readonly code: string;
  readonly reason: string | undefined;
  readonly policyVersion: string;
  readonly operation: string;
  /** The agreements a delivery rests on ("id@version"). */
  readonly agreements: readonly string[];
}

export interface SearchResult {
  readonly question: 'bulletin' | 'agency' | 'refusals';
  readonly hits: readonly SearchHit[];
}

/**
 * Answers one of three questions, each with the policy version and reason of every decision:
 * `--bulletin ID` who received it (deliveries, denials, acknowledgements, refusals naming it);
 * `--agency ID [--since] [--until]` what the agency received in a period (and acknowledged);
 * `--member ID --refusals [--since] [--until]` every refusal of that state's node or agencies.
 */
export async function auditSearch(options: AuditSearchOptions, print: Print): Promise<SearchResult> {
  const asked = [options.bulletin !== undefined, options.agency !== undefined, options.member !== undefined].filter(Boolean).length;
  if (asked !== 1) throw new CorridorError('REQUEST_INVALID', 'ask one question: --bulletin ID, --agency ID (with --since/--until), or --member ID --refusals');
  const limit = options.limit === undefined ? 10_000 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CorridorError('REQUEST_INVALID', '--limit must be a positive integer');
  const sinceMs = options.since === undefined ? 0n : BigInt(parseTime(options.since, '--since'));
  const untilMs = options.until === undefined ? 0n : BigInt(parseTime(options.until, '--until'));
  let question: SearchResult['question'];
  let filter: EventFilter;
  if (options.bulletin !== undefined) {
    parseBulletinId(options.bulletin);
    question = 'bulletin';
    filter = { bulletinId: options.bulletin, sinceMs, untilMs };
  } else if (options.agency !== undefined) {
    question = 'agency';
    filter = { agencyId: asAgencyId(options.agency), kinds: [EventKind.DELIVER, EventKind.ACK], sinceMs, untilMs };
  } else {
    if (options.refusals !== true) throw new CorridorError('REQUEST_INVALID', 'with --member, ask for --refusals (every refusal of that state’s node or agencies)');
    question = 'refusals';
    filter = { actorMember: asMemberId(options.member ?? ''), kinds: [EventKind.REFUSE], sinceMs, untilMs };
  }
  const { hub } = await connectAsOperator(options);
  const hits: SearchHit[] = [];
  try {
    await eachEvent(hub, filter, undefined, (event) => {
      if (hits.length < limit) hits.push(searchHit(event));
      return hits.length < limit;
    });
  } finally {
    hub.close();
  }
  const result = { question, hits };
  if (options.json === true) for (const hit of hits) print(hitJson(hit));
  else for (const line of searchLines(result, options)) print(line);
  return result;
}

function searchHit(event: AuditEvent): SearchHit {
  const leaf = event.leaf;
  const kind = leaf?.kind ?? EventKind.UNSPECIFIED;
  return {
    position: event.position,
    time: new Date(Number(leaf?.hubTimeMs ?? 0n)),
    kind: kindName(kind),
    actor: leaf?.actor ?? '',
    bulletinId: leaf?.bulletinId ?? '',
    agencyId: leaf?.agencyId ?? '',
    code: leaf?.code ?? '',
    reason: event.details?.reason,
    policyVersion: event.details?.policyVersion ?? '',
    operation: event.details?.operation ?? '',
    agreements: kind === EventKind.DELIVER && leaf !== undefined && leaf.objectId !== '' ? leaf.objectId.split(' ') : [],
  };
}

function searchLines(result: SearchResult, options: AuditSearchOptions): string[] {
  const lines: string[] = [];
  const hits = result.hits;
  const when = (hit: SearchHit): string => hit.time.toISOString();
  const reason = (hit: SearchHit): string => (hit.reason === undefined ? '(details purged)' : `— ${hit.reason}`);
  const decision = (hit: SearchHit): string =>
    [hit.code, hit.policyVersion, hit.agreements.length > 0 ? `agreements ${hit.agreements.join(',')}` : '', reason(hit)].filter((p) => p !== '').join('  ');
  if (result.question === 'bulletin') {
    const acks = new Map(hits.filter((h) => h.kind === 'ACK').map((h) => [h.agencyId, h]));
    for (const hit of hits) {
      if (hit.kind === 'PUBLISH') lines.push(`#${hit.position}  ${when(hit)}  published by ${hit.actor}  ${reason(hit)}`);
      else if (hit.kind === 'DELIVER') {
        const ack = acks.get(hit.agencyId);
        lines.push(`#${hit.position}  ${when(hit)}  delivered to ${hit.agencyId.padEnd(24)} ${decision(hit)}${ack === undefined ? '  (not acknowledged)' : `  (acknowledged ${when(ack)}, #${ack.position})`}`);
      } else if (hit.kind === 'DENY') lines.push(`#${hit.position}  ${when(hit)}  withheld from ${hit.agencyId.padEnd(22)} ${decision(hit)}`);
      else if (hit.kind === 'ACK') continue;
      else lines.push(`#${hit.position}  ${when(hit)}  ${hit.kind.toLowerCase()} ${hit.actor}  ${hit.operation}  ${hit.code}  ${reason(hit)}`);
    }
    const delivered = hits.filter((h) => h.kind === 'DELIVER');
    const acknowledged = delivered.filter((h) => acks.has(h.agencyId)).length;
    const denied = hits.filter((h) => h.kind === 'DENY').length;
    if (hits.length === 0) lines.push(`no events about ${options.bulletin ?? ''}`);
    else lines.push(`${options.bulletin ?? ''}: delivered to ${delivered.length} agencies (${acknowledged} acknowledged), withheld from ${denied}`);
  } else if (result.question === 'agency') {
    const acks = new Map(hits.filter((h) => h.kind === 'ACK').map((h) => [h.bulletinId, h]));
    const delivered = hits.filter((h) => h.kind === 'DELIVER');
    for (const hit of delivered) {
      const ack = acks.get(hit.bulletinId);
      lines.push(`#${hit.position}  ${when(hit)}  ${hit.bulletinId}  ${decision(hit)}${ack === undefined ? '' : `  (acknowledged ${when(ack)})`}`);
    }
    lines.push(`${options.agency ?? ''} received ${delivered.length} bulletins${periodText(options)}`);
  } else {
    for (const hit of hits) lines.push(`#${hit.position}  ${when(hit)}  ${hit.actor}  ${hit.operation}  ${hit.code}  ${reason(hit)}`);
    lines.push(`${hits.length} refusals of ${options.member ?? ''}'s node and agencies${periodText(options)}`);
  }
  // Reasons quote what principals sent: keep terminal control codes out.
  return lines.map((line) => printable(line, 2000));
}

function periodText(options: AuditSearchOptions): string {
  if (options.since === undefined && options.until === undefined) return '';
  return ` between ${options.since ?? 'the beginning'} and ${options.until ?? 'now'}`;
}

function hitJson(hit: SearchHit): string {
  return JSON.stringify({
    position: hit.position.toString(),
    hubTime: hit.time.toISOString(),
    kind: hit.kind.toLowerCase(),
    actor: hit.actor,
    bulletinId: hit.bulletinId || undefined,
    agencyId: hit.agencyId || undefined,
    code: hit.code,
    reason: hit.reason,
    policyVersion: hit.policyVersion || undefined,
    operation: hit.operation || undefined,
    agreements: hit.agreements.length > 0 ? hit.agreements : undefined,
  });
}

/** Pages through ListEvents; `visit` returning false stops. Events past `maxPosition` are not visited. */
async function eachEvent(hub: HubConnection, filter: EventFilter, maxPosition: bigint | undefined, visit: (event: AuditEvent) => boolean | void): Promise<void> {
  let after = 0n;
  for (;;) {
    const response = await callHub(() =>
      hub.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { ...filter, afterPosition: after, pageSize: EVENT_PAGE }), { deadlineMs: HUB_DEADLINE_MS }),
    );
    for (const event of response.events) {
      if (maxPosition !== undefined && event.position > maxPosition) return;
      if (visit(event) === false) return;
    }
    if (response.nextAfterPosition === 0n) return;
    after = response.nextAfterPosition;
  }
}

// ---------------------------------------------------------------------------------------------
// corridor audit export

export interface AuditExportOptions extends OperatorOptions {
  bulletin: string;
  /** The file to write; `-` for stdout. */
  out: string;
  region?: string;
  /** How long to wait for the events to be integrated into a checkpoint. */
  waitMs?: number;
}

/** Writes an evidence bundle about one bulletin and returns it. */
export async function auditExport(options: AuditExportOptions, print: Print): Promise<EvidenceBundle> {
  parseBulletinId(options.bulletin);
  const region = await trustedRegion(options);
  const audit = region.audit;
  if (audit === undefined) fail('CONFIG_INVALID', 'the region file has no audit settings (origin, log key, quorum); run corridor pki init to add them');
  const { hub } = await connectAsOperator(options);
  try {
    const evidence = await callHub(() =>
      hub.audit.unary(AuditService.method.getBulletinEvidence, create(GetBulletinEvidenceRequestSchema, { bulletinId: options.bulletin }), { deadlineMs: HUB_DEADLINE_MS }),
    );
    const last = evidence.events.reduce((max, e) => (e.position > max ? e.position : max), 0n);
    const { checkpoint, choice } = await checkpointCovering(hub, last, options.waitMs ?? 10_000);
    const proofs = await inBatches(evidence.events, PARALLEL, (event) =>
      callHub(() =>
        hub.audit.unary(
          AuditService.method.getInclusionProof,
          create(GetInclusionProofRequestSchema, { leaf: { case: 'index', value: event.position - 1n }, treeSize: checkpoint.treeSize }),
          { deadlineMs: HUB_DEADLINE_MS },
        ),
      ),
    );
    const bundle: EvidenceBundle = {
      format: BUNDLE_FORMAT,
      bulletinId: options.bulletin,
      exportedAt: new Date().toISOString(),
      bulletin: { issuerSignedJwt: Buffer.from(evidence.issuerSignedJwt).toString('latin1') },
      receipt: { jws: Buffer.from(evidence.receipt).toString('latin1') },
      events: evidence.events.map((event, i) => ({
        position: event.position.toString(),
        leaf: toBase64(event.leafBytes),
        leafHash: toBase64(event.leafHash),
        ...(event.detailsSalt.byteLength === 0 ? {} : { details: toBase64(event.detailsBytes), salt: toBase64(event.detailsSalt) }),
        proof: (proofs[i]?.proof ?? []).map(toBase64),
      })),
      checkpoint: { choice, treeSize: checkpoint.treeSize.toString(), note: checkpoint.checkpoint },
      trust: {
        region: region.region,
        origin: audit.origin,
        logKey: audit.logKey,
        witnessKeys: Object.fromEntries(region.members.flatMap((m) => (m.witnessKey === undefined ? [] : [[m.id, m.witnessKey]]))),
        quorum: audit.quorum,
        hubJwks: { keys: parseJwks(evidence.hubJwksJson) },
        memberKey: { member: parseBulletinId(options.bulletin).member, alg: evidence.memberKeyAlg, jwk: parseJwk(evidence.memberKeyJwkJson, 'the member key') },
      },
    };
    // What we write must be what verify-bundle reads.
    parseBundle(bundle);
    const text = `${JSON.stringify(bundle, null, 2)}\n`;
    if (options.out === '-') print(text.trimEnd());
    else {
      await writeFile(options.out, text);
      print(
        `wrote ${options.out}: ${options.bulletin}, ${bundle.events.length} events, proved against the ${choice === 'latest-final' ? 'latest final' : 'latest'} checkpoint ` +
          `(tree size ${checkpoint.treeSize}, cosigned by ${checkpoint.cosignedBy.length === 0 ? 'no member yet' : checkpoint.cosignedBy.join(', ')}${checkpoint.final ? ', final' : ', not final'})`,
      );
    }
    return bundle;
  } finally {
    hub.close();
  }
}

/** The latest final checkpoint if it covers `position`, else the latest one once it does. */
async function checkpointCovering(hub: HubConnection, position: bigint, waitMs: number): Promise<{ checkpoint: GetCheckpointResponse; choice: 'latest-final' | 'latest' }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const final = await optionalCheckpoint(hub, true);
    if (final !== undefined && final.treeSize >= position) return { checkpoint: final, choice: 'latest-final' };
    const latest = await optionalCheckpoint(hub, false);
    if (latest !== undefined && latest.treeSize >= position) return { checkpoint: latest, choice: 'latest' };
    if (Date.now() >= deadline) {
      throw new CorridorError('TREE_SIZE_UNAVAILABLE', `audit position ${position} is not in a signed checkpoint yet; try again once the hub has integrated it`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function optionalCheckpoint(hub: HubConnection, final: boolean): Promise<GetCheckpointResponse | undefined> {
  try {
    return await callHub(() => hub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { final }), { deadlineMs: HUB_DEADLINE_MS }));
  } catch (error) {
    if (error instanceof CorridorError && error.code === 'TREE_SIZE_UNAVAILABLE') return undefined;
    throw error;
  }
}

function parseJwks(json: string): PublicJwk[] {
  const value = parseStrictJson(json, 'the hub JWKS');
  const keys = typeof value === 'object' && value !== null && 'keys' in value && Array.isArray(value.keys) ? (value.keys as unknown[]) : [];
  return keys.map((key) => {
    const parsed = publicJwkSchema.safeParse(key);
    if (!parsed.success) fail('JWS_MALFORMED', 'a hub receipt key is not an Ed25519 public JWK');
    return parsed.data;
  });
}

function parseJwk(json: string, what: string): PublicJwk {
  const parsed = publicJwkSchema.safeParse(parseStrictJson(json, what));
  if (!parsed.success) fail('JWS_MALFORMED', `${what} is not an Ed25519 public JWK`);
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// corridor audit verify-bundle

export interface VerifyBundleOptions {
  /** Your own region file: its log key, witness keys, quorum and member keys are pinned. */
  region?: string;
  /** The hub's receipt keys as you know them (a JWKS file). */
  hubJwks?: string;
  json?: boolean;
}

/** Verifies an evidence bundle offline; prints every check and throws `PROOF_INVALID` naming the first failure. */
export async function auditVerifyBundle(file: string, options: VerifyBundleOptions, print: Print): Promise<BundleReport> {
  const bundle = parseBundle(await readJsonFile(file, 'the evidence bundle', { maxBytes: MAX_BUNDLE_BYTES }));
  const pinned: PinnedAnchors = {
    ...(options.region === undefined ? {} : { region: await readRegionFrom(options.region) }),
    ...(options.hubJwks === undefined ? {} : { hubJwks: parseJwks(JSON.stringify(await readJsonFile(options.hubJwks, 'the hub JWKS'))) }),
  };
  const report = await verifyBundle(bundle, pinned);
  if (options.json === true) print(bundleReportJson(report));
  else for (const line of bundleReportLines(report)) print(line);
  const failure = report.checks.find((c) => c.status === 'fail');
  if (failure !== undefined) throw new CorridorError('PROOF_INVALID', `the evidence bundle does not verify: ${failure.name}: ${failure.message}`);
  return report;
}

function bundleReportLines(report: BundleReport): string[] {
  const lines: string[] = [];
  for (const check of report.checks) lines.push(`${check.status === 'ok' ? 'ok  ' : check.status === 'warn' ? 'WARN' : 'FAIL'}  ${check.name}: ${check.message}`);
  lines.push(`events of ${report.bulletinId} (verified):`);
  for (const event of report.events) {
    const details = event.details === undefined ? '(details purged)' : [event.details.policyVersion, event.details.reason === '' ? '' : `— ${event.details.reason}`].filter((p) => p !== '').join('  ');
    const agreements = event.kind === 'DELIVER' && event.objectId !== '' ? `agreements ${event.objectId.replace(/ /g, ',')}` : '';
    lines.push(['', `#${event.position}`, event.hubTime.toISOString(), event.kind.padEnd(8), event.agencyId === '' ? event.actor : event.agencyId, event.code, agreements, details].filter((p) => p !== '').join('  '));
  }
  const fromBundle = report.anchors.filter((a) => a.source === 'bundle');
  lines.push('trust anchors:');
  for (const anchor of report.anchors) lines.push(`  ${anchor.name}: ${anchor.value}  (${anchor.source === 'pinned' ? 'pinned: yours' : 'from the bundle'})`);
  if (fromBundle.length > 0) {
    lines.push(
      `  Compare the anchors marked "from the bundle" out of band: the log key, witness keys and quorum against your own copy of the region file ` +
        `(or pass --region FILE to pin them), the member's signing key with that member, and the hub receipt key with the hub (or pass --hub-jwks FILE). ` +
        `A bundle that verifies only with its own anchors proves nothing by itself.`,
    );
  }
  const ok = report.checks.every((c) => c.status !== 'fail');
  lines.push(
    ok
      ? `evidence bundle verified: ${report.bulletinId}, ${report.events.length} events against checkpoint ${report.treeSize ?? '?'} (${report.quorumMet ? 'final' : `not final: ${report.cosignedBy.length} of quorum ${report.quorum}`})`
      : `evidence bundle FAILED: ${report.checks.filter((c) => c.status === 'fail').length} checks failed`,
  );
  return lines.map((line) => printable(line, 4000));
}

function bundleReportJson(report: BundleReport): string {
  return JSON.stringify({
    ok: report.ok,
    bulletinId: report.bulletinId,
    treeSize: report.treeSize?.toString(),
    cosignedBy: report.cosignedBy,
    quorum: report.quorum,
    quorumMet: report.quorumMet,
    checks: report.checks,
    anchors: report.anchors,
    events: report.events.map((e) => ({
      position: e.position.toString(),
      hubTime: e.hubTime.toISOString(),
      kind: e.kind.toLowerCase(),
      actor: e.actor,
      agencyId: e.agencyId || undefined,
      code: e.code,
      agreements: e.kind === 'DELIVER' && e.objectId !== '' ? e.objectId.split(' ') : undefined,
      reason: e.details?.reason,
      policyVersion: e.details?.policyVersion || undefined,
    })),
  });
}

// ---------------------------------------------------------------------------------------------

/** Runs `work` over `items` with at most `parallel` in flight; results in item order. */
async function inBatches<T, R>(items: readonly T[], parallel: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += parallel) {
    results.push(...(await Promise.all(items.slice(i, i + parallel).map(work))));
  }
  return results;
}

/** For `corridor audit export --help`: what the bundle holds. */
export const BUNDLE_DESCRIPTION = `a ${BUNDLE_FORMAT} JSON file: the signed bulletin (no Disclosures), the receipt, every event with its inclusion proof, a cosigned checkpoint and the keys to check them`;

/** Adds `verify`, `search`, `export` and `verify-bundle` under `corridor audit`. */
export function registerAuditTools(audit: Command, program: Command): void {
  const home = (): { home?: string } => {
    const value = program.opts<{ home?: string }>().home;
    return value === undefined ? {} : { home: value };
  };
  const print: Print = (line) => console.log(line);
  audit
    .command('verify')
    .description('recompute the whole audit tree from the stored leaves and check every checkpoint, tile and event detail; names the first bad index (operators)')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR); default: the first operator of the region')
    .option('--region <file>', 'region file with the trust anchors (log key, witness keys, quorum); default: the state directory’s')
    .option('--json', 'the report as one JSON object')
    .action(async (options: AuditVerifyOptions) => {
      await auditVerify({ ...options, ...home() }, print);
    });
  audit
    .command('search')
    .description('who received a bulletin; what an agency received in a period; every refusal of a state — with the policy version and reason of each decision (operators)')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR)')
    .option('--bulletin <id>', 'who received this bulletin: deliveries, denials, acknowledgements, refusals naming it')
    .option('--agency <id>', 'what this agency received (use --since and --until for a period)')
    .option('--member <id>', 'a member state; with --refusals, every refusal of its node or agencies')
    .option('--refusals', 'with --member: list refusals')
    .option('--since <time>', 'from this time (ISO 8601)')
    .option('--until <time>', 'before this time (ISO 8601)')
    .option('--limit <n>', 'at most this many events', '10000')
    .option('--json', 'one JSON object per line')
    .action(async (options: AuditSearchOptions) => {
      await auditSearch({ ...options, ...home() }, print);
    });
  audit
    .command('export')
    .description(`write an evidence bundle about one bulletin: ${BUNDLE_DESCRIPTION} (operators)`)
    .requiredOption('--bulletin <id>', 'the bulletin')
    .requiredOption('--out <file>', 'where to write the bundle (- for stdout)')
    .option('--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)')
    .option('--operator <id>', 'operator identity to use (CORRIDOR_OPERATOR)')
    .option('--region <file>', 'region file whose trust anchors go into the bundle; default: the state directory’s')
    .action(async (options: AuditExportOptions) => {
      await auditExport({ ...options, ...home() }, print);
    });
  audit
    .command('verify-bundle')
    .description('check an evidence bundle offline (no database, no network): signatures, receipt, leaves, inclusion proofs, checkpoint and cosignatures')
    .argument('<file>', 'the bundle (- for stdin)')
    .option('--region <file>', 'your own region file: pin its log key, witness keys, quorum and member keys instead of the bundle’s')
    .option('--hub-jwks <file>', 'the hub receipt keys as you know them (JWKS), instead of the bundle’s')
    .option('--json', 'the report as one JSON object')
    .action(async (file: string, options: VerifyBundleOptions) => {
      await auditVerifyBundle(file, options, print);
    });
}
