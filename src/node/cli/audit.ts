/** `corridor audit log`: the exchange record, for hub operators. */
import { create } from '@bufbuild/protobuf';
import { asOperatorId, printable } from '../../core/ids.js';
import { AuditService, EventKind, ListEventsRequestSchema } from '../../gen/corridor/v1/audit_pb.js';
import type { AuditEvent } from '../../gen/corridor/v1/audit_pb.js';
import { connectHub } from '../hub-client.js';
import { readRegionFile } from '../pki/dev-pki.js';
import { homeFrom, hubAddressFrom, parseTime, tlsFor } from './common.js';

export interface AuditLogOptions {
  home?: string;
  hub?: string;
  operator?: string;
  kind?: string[];
  bulletin?: string;
  agency?: string;
  actor?: string;
  code?: string;
  since?: string;
  until?: string;
  after?: string;
  limit?: string;
  json?: boolean;
}

const KIND_NAMES: Record<string, EventKind> = {
  publish: EventKind.PUBLISH,
  refuse: EventKind.REFUSE,
  deliver: EventKind.DELIVER,
  deny: EventKind.DENY,
  ack: EventKind.ACK,
  registry: EventKind.REGISTRY_CHANGE,
  'key-added': EventKind.KEY_ADDED,
  'key-retired': EventKind.KEY_RETIRED,
  agreement: EventKind.AGREEMENT_CHANGE,
  'key-proposed': EventKind.KEY_PROPOSED,
  'key-activated': EventKind.KEY_ACTIVATED,
  'key-revoked': EventKind.KEY_REVOKED,
  'key-rejected': EventKind.KEY_REJECTED,
  'bulletin-marked': EventKind.BULLETIN_MARKED,
  'request-submitted': EventKind.REQUEST_SUBMITTED,
  'request-answered': EventKind.REQUEST_ANSWERED,
  'request-delayed': EventKind.REQUEST_DELAYED,
  'request-overdue': EventKind.REQUEST_OVERDUE,
  'request-withdrawn': EventKind.REQUEST_WITHDRAWN,
  'bulletin-superseded': EventKind.BULLETIN_SUPERSEDED,
  'bulletin-withdrawn': EventKind.BULLETIN_WITHDRAWN,
  'retention-purge': EventKind.RETENTION_PURGE,
  search: EventKind.SEARCH,
};

export const AUDIT_KINDS = Object.keys(KIND_NAMES);

export async function auditLog(options: AuditLogOptions, print: (line: string) => void): Promise<number> {
  const home = homeFrom(options);
  const operator = asOperatorId(options.operator ?? process.env['CORRIDOR_OPERATOR'] ?? (await defaultOperator(home)));
  const kinds = (options.kind ?? []).map((name) => {
    const kind = KIND_NAMES[name];
    if (kind === undefined) throw new Error(`unknown event kind "${name}"; use one of ${AUDIT_KINDS.join(', ')}`);
    return kind;
  });
  const limit = options.limit === undefined ? 100 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit must be a positive integer');
  const hub = connectHub(hubAddressFrom(options), await tlsFor(home, { kind: 'operator', id: operator }));
  try {
    let after = options.after === undefined ? 0n : BigInt(options.after);
    let printed = 0;
    while (printed < limit) {
      const response = await hub.audit.unary(
        AuditService.method.listEvents,
        create(ListEventsRequestSchema, {
          kinds,
          bulletinId: options.bulletin ?? '',
          agencyId: options.agency ?? '',
          actor: options.actor ?? '',
          code: options.code ?? '',
          sinceMs: options.since === undefined ? 0n : BigInt(parseTime(options.since, '--since')),
          untilMs: options.until === undefined ? 0n : BigInt(parseTime(options.until, '--until')),
          afterPosition: after,
          pageSize: Math.min(1000, limit - printed),
        }),
        { deadlineMs: 30_000 },
      );
      for (const event of response.events) {
        print(options.json === true ? eventJson(event) : eventLine(event));
        printed++;
      }
      if (response.nextAfterPosition === 0n) break;
      after = response.nextAfterPosition;
    }
    return printed;
  } finally {
    hub.close();
  }
}

async function defaultOperator(home: string): Promise<string> {
  const region = await readRegionFile(home);
  const first = region.operators[0];
  if (first === undefined) throw new Error('the region names no operator; pass --operator');
  return first.id;
}

export function kindName(kind: EventKind): string {
  return Object.entries(KIND_NAMES).find(([, value]) => value === kind)?.[0] ?? 'unknown';
}

function eventLine(event: AuditEvent): string {
  const leaf = event.leaf;
  const time = new Date(Number(leaf?.hubTimeMs ?? 0n)).toISOString();
  const parts = [
    `#${event.position}`,
    time,
    kindName(leaf?.kind ?? EventKind.UNSPECIFIED).toUpperCase().padEnd(9),
    leaf?.actor ?? '',
    leaf?.bulletinId ? `bulletin=${leaf.bulletinId}` : '',
    leaf?.agencyId ? `agency=${leaf.agencyId}` : '',
    leaf?.kind === EventKind.AGREEMENT_CHANGE || leaf?.kind === EventKind.DELIVER ? (leaf.objectId ? `agreement=${leaf.objectId.replace(/ /g, ',')}` : '') : '',
    leaf?.kind === EventKind.BULLETIN_SUPERSEDED || leaf?.kind === EventKind.BULLETIN_WITHDRAWN ? (leaf.objectId ? `by=${leaf.objectId}` : '') : '',
    leaf?.kind === EventKind.RETENTION_PURGE ? (leaf.objectId ? `ended-by=${leaf.objectId}` : '') : '',
    leaf?.code ?? '',
    event.details?.reason ? `— ${event.details.reason}` : '',
    // The hub leaves out details that do not match the leaf's commitment: say so rather than show nothing.
    event.details === undefined && event.detailsSalt.byteLength > 0 ? '(stored details do not match the leaf; run corridor audit verify)' : '',
    event.detailsPurged ? '(details purged: retention ended)' : '',
  ];
  // Leaves hold reasons that quote what principals sent: keep terminal control codes out.
  return printable(parts.filter((p) => p !== '').join('  '), 2000);
}

function eventJson(event: AuditEvent): string {
  const leaf = event.leaf;
  return JSON.stringify({
    position: event.position.toString(),
    hubTime: new Date(Number(leaf?.hubTimeMs ?? 0n)).toISOString(),
    kind: kindName(leaf?.kind ?? EventKind.UNSPECIFIED),
    actor: leaf?.actor,
    bulletinId: leaf?.bulletinId || undefined,
    agencyId: leaf?.agencyId || undefined,
    code: leaf?.code,
    reason: event.details?.reason,
    policyVersion: event.details?.policyVersion || undefined,
    objectId: leaf?.objectId || undefined,
    objectDigest: leaf?.objectDigest?.length ? Buffer.from(leaf.objectDigest).toString('hex') : undefined,
    operation: event.details?.operation,
    detailsPurged: event.detailsPurged || event.details === undefined || undefined,
    leafHash: Buffer.from(event.leafHash).toString('hex'),
  });
}
