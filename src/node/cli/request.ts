/**
 * `corridor request …`: cooperation requests between member states. A member's node signs a
 * request to another member's central authority, an answer or a delay notice to a request
 * addressed to it, or the withdrawal of its own request, and sends it to the hub; members list
 * and show their own requests, operators every request (without its content).
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { systemClock } from '../../core/clock.js';
import { DOCUMENT_KINDS, DOCUMENT_TYP, REQUEST_STATES, REQUEST_TYPES, URGENCIES, parseDocumentClaims } from '../../core/cooperation-request.js';
import type { DocumentClaims, RequestState } from '../../core/cooperation-request.js';
import { CorridorError, fail } from '../../core/errors.js';
import { asAgencyId, asMemberId, parseIdentityUri, printable } from '../../core/ids.js';
import type { MemberId } from '../../core/ids.js';
import type { SigningKey } from '../../core/jws.js';
import { handlingInstruction } from '../../core/policy.js';
import { verifySdJwt } from '../../core/sd-jwt.js';
import { RequestSide, RequestState as WireState } from '../../gen/corridor/v1/request_pb.js';
import type { CooperationRequest, RequestDocument, RequestServiceGetResponse, RequestTransition } from '../../gen/corridor/v1/request_pb.js';
import { createLogger } from '../../infra/log.js';
import { readNodeConfig } from '../config.js';
import type { HubConnection } from '../hub-client.js';
import { getRequestAt, listRequestsAt, openMemberSession, outcomesOf, readDraftJson, sendDocument, signAnswer, signDelay, signRequest, signWithdrawal } from '../requests.js';
import type { ReceivedRequestNotice, SignedDocument, TransitionAnswer } from '../requests.js';
import { createTrustStore, hubKeyDirectory, memoryPins } from '../trust.js';
import { connectAsMember, connectAsOperator } from './agreement.js';
import type { HubOptions } from './agreement.js';
import { parseTime, readInput } from './common.js';

type Print = (line: string) => void;

interface MemberOptions extends HubOptions {
  member: string;
}

const WIRE_STATE: Readonly<Record<RequestState, WireState>> = {
  open: WireState.OPEN,
  answered: WireState.ANSWERED,
  delayed: WireState.DELAYED,
  overdue: WireState.OVERDUE,
  withdrawn: WireState.WITHDRAWN,
};

export function stateName(state: WireState): string {
  const found = REQUEST_STATES.find((s) => WIRE_STATE[s] === state);
  return found ?? `state ${state}`;
}

function iso(ms: bigint): string {
  return ms === 0n ? '-' : new Date(Number(ms)).toISOString();
}

/** One line per request: id, parties, type, urgency, state, due time. */
export function requestLine(request: CooperationRequest): string {
  const state = stateName(request.state).toUpperCase();
  const closed = request.closedMs === 0n ? '' : ` at ${iso(request.closedMs)}`;
  const due = request.closedMs === 0n ? `  due ${iso(request.dueMs)}${request.overdue ? ' (OVERDUE)' : ''}` : '';
  const outcome = request.outcome === '' ? '' : `: ${request.outcome}`;
  return `${request.id}  ${request.requester} → ${request.addressee} (${request.addresseeAuthority})  ${request.type}  ${request.urgency}  ${state}${outcome}${closed}${due}`;
}

export function requestJson(request: CooperationRequest): Record<string, unknown> {
  return {
    id: request.id,
    requester: request.requester,
    addressee: request.addressee,
    addresseeAuthority: request.addresseeAuthority,
    ...(request.requestingAgency === '' ? {} : { requestingAgency: request.requestingAgency }),
    type: request.type,
    urgency: request.urgency,
    state: stateName(request.state),
    submitted: iso(request.submittedMs),
    deadline: iso(request.deadlineMs),
    due: iso(request.dueMs),
    overdue: request.overdue,
    ...(request.closedMs === 0n ? {} : { closed: iso(request.closedMs) }),
    ...(request.outcome === '' ? {} : { outcome: request.outcome }),
    auditPosition: request.auditPosition.toString(),
  };
}

function transitionLine(transition: RequestTransition): string {
  return `  ${iso(transition.hubTimeMs)}  ${stateName(transition.state).padEnd(9)}  by ${transition.actor}  due ${iso(transition.dueMs)}  (audit position ${transition.auditPosition})`;
}

/** What a verified document says, in one line (personal data shown only as counts). */
export function documentSummary(claims: DocumentClaims): string {
  switch (claims.kind) {
    case 'request':
    case 'answer': {
      const head = claims.kind === 'answer' ? `outcome ${claims.outcome}: ` : '';
      const persons = claims.content.persons.length === 0 ? '' : `; ${claims.content.persons.length} person(s)`;
      const documents = claims.content.documents.length === 0 ? '' : `; ${claims.content.documents.length} document(s)`;
      return `${head}"${claims.content.title}" TLP:${claims.handling.tlp} {${handlingInstruction(claims.handling.code, claims.handling.restrictions)}}${persons}${documents}`;
    }
    case 'delay':
      return `answer now expected by ${new Date(claims.expectedBy * 1000).toISOString()}: ${claims.reason}`;
    case 'withdrawal':
      return `withdrawn: ${claims.reason}`;
  }
}

/** A request notice, as `corridor node subscribe` prints it. */
export function requestNoticeLine(notice: ReceivedRequestNotice): string {
  const head = `REQUEST ${notice.state.toUpperCase().padEnd(9)} ${notice.requestId}  ${notice.requester} → ${notice.addressee}  ${notice.type}  ${notice.urgency}  [${notice.side}]`;
  const body =
    notice.rejection !== undefined
      ? `  REJECTED document: ${notice.rejection}`
      : notice.document !== undefined
        ? `  ${documentSummary(notice.document.claims)}${notice.document.compromise === undefined ? '' : `  [MARKED: signing key ${notice.document.kid} compromised]`}`
        : notice.state === 'overdue'
          ? `  no answer by ${notice.dueAt.toISOString()}`
          : '';
  const due = notice.state === 'answered' || notice.state === 'withdrawn' ? '' : `  due ${notice.dueAt.toISOString()}`;
  const withheld = notice.withheld.length === 0 ? '' : `  [withheld: ${notice.withheld.map((w) => w.kind).join(', ')}]`;
  return `${head}${body}${due}${withheld}  (${notice.reason})`;
}

export function requestNoticeJson(notice: ReceivedRequestNotice): string {
  return JSON.stringify({
    requestNotice: true,
    auditPosition: notice.auditPosition.toString(),
    requestId: notice.requestId,
    state: notice.state,
    side: notice.side,
    requester: notice.requester,
    addressee: notice.addressee,
    type: notice.type,
    urgency: notice.urgency,
    hubTime: notice.hubTime.toISOString(),
    due: notice.dueAt.toISOString(),
    reason: notice.reason,
    withheld: notice.withheld,
    ...(notice.document === undefined ? {} : { document: documentJson(notice.document.claims) }),
    ...(notice.rejection === undefined ? {} : { rejection: notice.rejection }),
  });
}

function documentJson(claims: DocumentClaims): Record<string, unknown> {
  switch (claims.kind) {
    case 'request':
      return { kind: claims.kind, issuer: claims.issuer, jti: claims.jti, to: claims.to, type: claims.type, urgency: claims.urgency, handling: claims.handling, content: claims.content };
    case 'answer':
      return { kind: claims.kind, issuer: claims.issuer, jti: claims.jti, request: claims.request, outcome: claims.outcome, handling: claims.handling, content: claims.content };
    case 'delay':
      return { kind: claims.kind, issuer: claims.issuer, jti: claims.jti, request: claims.request, reason: claims.reason, expectedBy: new Date(claims.expectedBy * 1000).toISOString() };
    case 'withdrawal':
      return { kind: claims.kind, issuer: claims.issuer, jti: claims.jti, request: claims.request, reason: claims.reason };
  }
}

/** Signs with the member's active key and sends; a lost answer is said plainly, with how to retry safely. */
async function signAndSend(
  options: MemberOptions,
  route: 'request' | 'reply' | 'withdrawal',
  sign: (key: SigningKey, member: MemberId) => Promise<SignedDocument>,
): Promise<{ signed: SignedDocument; answer: TransitionAnswer }> {
  const config = await readNodeConfig(process.env, { member: asMemberId(options.member), home: options.home, hubAddress: options.hub });
  const log = createLogger({ name: `node-${config.member}`, level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
  const session = await openMemberSession(config, log);
  try {
    const signed = await sign(await session.signingKey(), config.member);
    try {
      return { signed, answer: await sendDocument(session.hub, route, signed.sdJwt) };
    } catch (error) {
      if (error instanceof CorridorError && error.code === 'HUB_UNAVAILABLE') {
        throw new CorridorError('HUB_UNAVAILABLE', `${error.message}; it may or may not have been recorded: \`corridor request show ${signed.requestId} --member ${config.member}\` says which`, { cause: error });
      }
      throw error;
    }
  } finally {
    session.close();
  }
}

export async function sendCommand(options: MemberOptions & { to: string; type: string; urgency: string; file: string; agency?: string }, print: Print): Promise<TransitionAnswer> {
  const draft = readDraftJson(await readInput(options.file), 'request draft');
  const type = REQUEST_TYPES.find((t) => t === options.type) ?? fail('REQUEST_INVALID', `--type is one of ${REQUEST_TYPES.join(', ')}`);
  const urgency = URGENCIES.find((u) => u === options.urgency) ?? fail('REQUEST_INVALID', `--urgency is one of ${URGENCIES.join(', ')}`);
  const to = asMemberId(options.to);
  const requestingAgency = options.agency === undefined ? undefined : asAgencyId(options.agency);
  const { answer } = await signAndSend(options, 'request', (key, member) => signRequest(key, member, draft, { to, type, urgency, requestingAgency }, systemClock));
  const r = answer.request;
  print(
    `${r.id} ${answer.replayed ? 'was sent before' : 'sent'} to ${r.addressee} (${r.addresseeAuthority}): ${r.type}, urgency ${r.urgency}, answer due ${iso(r.dueMs)} (audit position ${r.auditPosition})`,
  );
  return answer;
}

export async function answerCommand(id: string, options: MemberOptions & { outcome: string; file?: string; text?: string; title?: string }, print: Print): Promise<TransitionAnswer> {
  if ((options.file === undefined) === (options.text === undefined)) throw new CorridorError('REQUEST_INVALID', 'give the answer as --file FILE (JSON) or as --text TEXT, one of the two');
  const draft =
    options.file !== undefined
      ? readDraftJson(await readInput(options.file), 'answer draft')
      : { content: { title: options.title ?? `Answer to request ${id}`, text: options.text } };
  const { answer } = await signAndSend(options, 'reply', (key, member) => signAnswer(key, member, id, options.outcome, draft, systemClock));
  const r = answer.request;
  print(`${r.id} ${answer.replayed ? 'was answered before' : 'answered'}: ${r.outcome} (audit position ${r.auditPosition})`);
  return answer;
}

export async function delayCommand(id: string, options: MemberOptions & { until: string; reason: string }, print: Print): Promise<TransitionAnswer> {
  const until = new Date(parseTime(options.until, '--until'));
  const { answer } = await signAndSend(options, 'reply', (key, member) => signDelay(key, member, id, options.reason, until, systemClock));
  const r = answer.request;
  print(`${r.id} delayed: the answer is now expected by ${iso(r.dueMs)} (audit position ${r.auditPosition})`);
  return answer;
}

export async function withdrawCommand(id: string, options: MemberOptions & { reason: string }, print: Print): Promise<TransitionAnswer> {
  const { answer } = await signAndSend(options, 'withdrawal', (key, member) => signWithdrawal(key, member, id, options.reason, systemClock));
  const r = answer.request;
  print(`${r.id} withdrawn at ${iso(r.closedMs)} (audit position ${r.auditPosition})`);
  return answer;
}

interface ReadOptions extends HubOptions {
  member?: string;
  operator?: string;
}

async function connectReader(options: ReadOptions): Promise<HubConnection> {
  if (options.member !== undefined && options.operator !== undefined) throw new CorridorError('REQUEST_INVALID', 'read either as a member (--member) or as an operator (--operator), not both');
  return options.member === undefined ? (await connectAsOperator(options)).hub : connectAsMember(options.member, options);
}

export async function listCommand(
  options: ReadOptions & { overdue?: boolean; state?: string[]; side?: string; involving?: string; json?: boolean },
  print: Print,
): Promise<CooperationRequest[]> {
  const states = (options.state ?? []).map((s) => {
    const state = REQUEST_STATES.find((known) => known === s) ?? fail('REQUEST_INVALID', `--state is one of ${REQUEST_STATES.join(', ')}`);
    return WIRE_STATE[state];
  });
  const side = options.side === undefined ? RequestSide.UNSPECIFIED : options.side === 'requester' ? RequestSide.REQUESTER : RequestSide.ADDRESSEE;
  const hub = await connectReader(options);
  try {
    const requests = await listRequestsAt(hub, { states, overdue: options.overdue === true, side, ...(options.involving === undefined ? {} : { memberId: options.involving }) });
    for (const request of requests) print(options.json === true ? JSON.stringify(requestJson(request)) : requestLine(request));
    if (requests.length === 0 && options.json !== true) print(options.overdue === true ? 'no overdue requests' : 'no requests');
    return requests;
  } finally {
    hub.close();
  }
}

/**
 * One request with its course; for a party, each signed document verified against the member's
 * key from the hub's key directory (trusted for this command only, as `node publish --direct`
 * trusts it for the receipt; an agency's node verifies against the keys it pins).
 */
export async function showCommand(id: string, options: ReadOptions & { json?: boolean }, print: Print): Promise<RequestServiceGetResponse> {
  const hub = await connectReader(options);
  try {
    const view = await getRequestAt(hub, id);
    const request = view.request ?? fail('INTERNAL', 'the hub answered without the request');
    const log = createLogger({ name: 'request-show', level: process.env['CORRIDOR_LOG_LEVEL'] ?? 'warn', fd: 2 });
    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(hub), clock: systemClock, log });
    const documents = await Promise.all(
      view.documents.map(async (document) => ({ document, verified: await verifyDocument(trust, document).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))) })),
    );
    if (options.json === true) {
      print(
        JSON.stringify({
          request: requestJson(request),
          transitions: view.transitions.map((t) => ({ state: stateName(t.state), hubTime: iso(t.hubTimeMs), actor: t.actor, due: iso(t.dueMs), auditPosition: t.auditPosition.toString() })),
          documents: documents.map(({ document, verified }) => ({
            kind: document.kind,
            issuer: document.issuer,
            hubTime: iso(document.hubTimeMs),
            auditPosition: document.auditPosition.toString(),
            ...(verified instanceof Error ? { verified: false, problem: verified.message } : { verified: true, claims: documentJson(verified) }),
          })),
        }),
      );
      return view;
    }
    print(requestLine(request));
    if (request.requestingAgency !== '') print(`  requesting agency ${request.requestingAgency}`);
    print(`  submitted ${iso(request.submittedMs)}, deadline ${iso(request.deadlineMs)}`);
    for (const transition of view.transitions) print(transitionLine(transition));
    for (const { document, verified } of documents) {
      print(
        verified instanceof Error
          ? `  ${document.kind} by ${document.issuer} (audit position ${document.auditPosition}): DOES NOT VERIFY: ${verified.message}`
          : `  ${document.kind} by ${document.issuer}, signature verified: ${documentSummary(verified)}`,
      );
    }
    return view;
  } finally {
    hub.close();
  }
}

async function verifyDocument(trust: ReturnType<typeof createTrustStore>, document: RequestDocument): Promise<DocumentClaims> {
  const kind = DOCUMENT_KINDS.find((k) => k === document.kind) ?? fail('JWS_MALFORMED', `unknown document kind ${printable(document.kind, 20)}`);
  const loggedAt = new Date(Number(document.hubTimeMs));
  const verified = await verifySdJwt(document.sdJwt, {
    typ: DOCUMENT_TYP[kind],
    issuerKey: async (jws) => {
      const payload = jws.payload;
      const iss = typeof payload === 'object' && payload !== null && 'iss' in payload && typeof payload.iss === 'string' ? payload.iss : '';
      const issuer = parseIdentityUri(iss);
      if (issuer?.kind !== 'member') fail('JWS_MALFORMED', `iss "${printable(iss)}" is not a member URI`);
      return trust.lookup(issuer.id, jws.header.kid, loggedAt);
    },
  });
  return parseDocumentClaims(kind, verified.payload);
}

export function registerRequestCommands(program: Command): void {
  const home = (): HubOptions => {
    const value = program.opts<{ home?: string }>().home;
    return value === undefined ? {} : { home: value };
  };
  const print = (line: string): void => console.log(line);
  const hubFlag = ['--hub <host:port>', 'hub address (CORRIDOR_HUB_ADDRESS)'] as const;
  const memberFlag = ['--member <id>', 'the member state whose node signs (CORRIDOR_MEMBER)', process.env['CORRIDOR_MEMBER']] as const;

  const request = program
    .command('request')
    .description('cooperation requests to another member state\'s central authority: document and nationality verification, information, permission to disseminate; deadlines by urgency');

  request
    .command('send')
    .description('sign a request with the member\'s key and send it to the addressee\'s central authority; the urgency sets the deadline (urgent 8 h, high 3 d, normal 7 d)')
    .requiredOption(...memberFlag)
    .requiredOption('--to <member>', 'the member state asked')
    .addOption(new Option('--type <type>', 'what is asked').choices(REQUEST_TYPES).makeOptionMandatory())
    .addOption(new Option('--urgency <urgency>', 'sets the deadline').choices(URGENCIES).default('normal'))
    .requiredOption('--file <file>', 'the request draft (JSON, "-" for stdin): content {title, text, persons, documents, references}, optional handling, requesting_agency, retention_days, jti')
    .option('--agency <id>', 'the requesting agency of the member, notified of every step')
    .option(...hubFlag)
    .action(async (options: MemberOptions & { to: string; type: string; urgency: string; file: string; agency?: string }) => {
      await sendCommand({ ...options, ...home() }, print);
    });

  request
    .command('answer')
    .description('answer a request addressed to the member, signed with its key; the answer reaches the requester under the access policy')
    .argument('<request-id>', 'MEMBER:jti')
    .requiredOption(...memberFlag)
    .requiredOption('--outcome <outcome>', `the outcome: ${REQUEST_TYPES.map((t) => `${t}: ${outcomesOf(t).join('|')}`).join('; ')}`)
    .option('--file <file>', 'the answer draft (JSON): content {title, text, persons, documents}, optional handling, retention_days, jti')
    .option('--text <text>', 'a short answer without personal data, instead of --file')
    .option('--title <title>', 'the title of a --text answer')
    .option(...hubFlag)
    .action(async (id: string, options: MemberOptions & { outcome: string; file?: string; text?: string; title?: string }) => {
      await answerCommand(id, { ...options, ...home() }, print);
    });

  request
    .command('delay')
    .description('send a signed delay notice for a request addressed to the member: why, and when the answer is now expected')
    .argument('<request-id>', 'MEMBER:jti')
    .requiredOption(...memberFlag)
    .requiredOption('--until <time>', 'the new expected date of the answer (ISO 8601)')
    .requiredOption('--reason <text>', 'why the answer is late')
    .option(...hubFlag)
    .action(async (id: string, options: MemberOptions & { until: string; reason: string }) => {
      await delayCommand(id, { ...options, ...home() }, print);
    });

  request
    .command('withdraw')
    .description('withdraw a request the member made (signed); it can no longer be answered')
    .argument('<request-id>', 'MEMBER:jti')
    .requiredOption(...memberFlag)
    .requiredOption('--reason <text>', 'why')
    .option(...hubFlag)
    .action(async (id: string, options: MemberOptions & { reason: string }) => {
      await withdrawCommand(id, { ...options, ...home() }, print);
    });

  request
    .command('list')
    .description('requests and where they stand: as a member (--member) those it made or is asked, as an operator every one')
    .option('--member <id>', 'read as this member (its own requests)')
    .option('--operator <id>', 'read as this operator (CORRIDOR_OPERATOR); the default without --member')
    .option('--overdue', 'only requests past their due time without an answer')
    .addOption(new Option('--state <state...>', 'only requests in these states').choices(REQUEST_STATES))
    .addOption(new Option('--side <side>', 'only requests the member made (requester) or is asked (addressee)').choices(['requester', 'addressee']))
    .option('--involving <member>', 'operators: only requests made by or addressed to this member')
    .option('--json', 'one JSON object per line')
    .option(...hubFlag)
    .action(async (options: ReadOptions & { overdue?: boolean; state?: string[]; side?: string; involving?: string; json?: boolean }) => {
      await listCommand({ ...options, ...home() }, print);
    });

  request
    .command('show')
    .description('one request: its state, every transition, and (for a party) its signed documents, verified')
    .argument('<request-id>', 'MEMBER:jti')
    .option('--member <id>', 'read as this member (a party)')
    .option('--operator <id>', 'read as this operator (CORRIDOR_OPERATOR); the default without --member')
    .option('--json', 'one JSON object')
    .option(...hubFlag)
    .action(async (id: string, options: ReadOptions & { json?: boolean }) => {
      await showCommand(id, { ...options, ...home() }, print);
    });
}
