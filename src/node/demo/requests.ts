/**
 * The demo's cooperation requests: one full cycle (Indonesia asks Malaysia to verify a passport,
 * Malaysia sends a delay notice, then its answer) and one request that falls overdue (Thailand
 * asks Sri Lanka, urgently, whether the people aboard an intercepted boat are its nationals, and
 * no answer comes). The demo hub runs with an urgent deadline of {@link DEMO_URGENT_SECONDS}
 * seconds instead of 8 hours, so that the overdue check can be watched; every other deadline is
 * the real one. Fixed `jti`s keep a second run from asking twice.
 */
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { CorridorError } from '../../core/errors.js';
import { asAgencyId, asMemberId } from '../../core/ids.js';
import type { MemberId } from '../../core/ids.js';
import { RequestState as WireState } from '../../gen/corridor/v1/request_pb.js';
import type { Logger } from '../../infra/log.js';
import { readNodeConfig } from '../config.js';
import { getRequestAt, openMemberSession, sendDocument, signAnswer, signDelay, signRequest } from '../requests.js';
import type { MemberSession, ReceivedRequestNotice } from '../requests.js';
import { stateName } from '../cli/request.js';

/** The urgent deadline of the demo hub, in seconds (8 hours in a real region). */
export const DEMO_URGENT_SECONDS = 3;
/** How often the demo hub looks for overdue requests. */
export const DEMO_OVERDUE_CHECK_MS = 500;

const VERIFICATION = {
  jti: 'demo-idn-request-0001',
  requesting_agency: 'IDN:imigrasi',
  content: {
    title: 'Verify Malaysian passport presented by a facilitator at Dumai port',
    text: 'A man arranging passages for Sri Lankan and Rohingya migrants from Dumai to Port Klang presented the Malaysian passport below when questioned. The laminate shows signs of tampering. Please verify whether it was issued as described, and to whom.',
    persons: [{ name: 'Rizal bin Hamzah', nationality: 'MYS', date_of_birth: '1985-07-02' }],
    documents: [{ type: 'passport', number: 'A40871235', issuing_state: 'MYS', holder_name: 'Rizal bin Hamzah', expires_on: '2029-03-14' }],
    references: ['IDN:demo-idn-carrier-0001'],
  },
};

const ANSWER = {
  content: {
    title: 'Passport A40871235 was issued to another person and reported lost',
    text: 'The booklet was issued in 2019 to a resident of Johor Bahru who reported it lost in 2023; the holder page has been replaced. The name given is not known to the Immigration Department of Malaysia. The booklet is listed in INTERPOL SLTD.',
    persons: [{ name: 'Rizal bin Hamzah' }],
  },
};

const NATIONALITY = {
  jti: 'demo-tha-request-0001',
  requesting_agency: 'THA:immigration',
  content: {
    title: 'Nationality of 41 people intercepted off Ranong, for return',
    text: 'The Royal Thai Navy intercepted a trawler off Ranong with 41 people aboard who state they are Sri Lankan nationals; three carry Sri Lankan identity cards. Please verify their nationality so that their voluntary return can be arranged with IOM.',
    documents: [{ type: 'identity_card', number: '198512301234', issuing_state: 'LKA' }],
  },
};

type Say = (line: string) => void;

/** The agencies notified of the verification request: Malaysia's central authority, Indonesia's and the requesting agency. */
const VERIFICATION_SIDES = ['MYS:pdrm', 'IDN:polri', 'IDN:imigrasi'] as const;

/** How the demo prints a request notice an agency received. */
export function noticeLine(notice: ReceivedRequestNotice): string {
  const document = notice.document?.claims;
  const what =
    document === undefined
      ? notice.state === 'overdue'
        ? `no answer from ${notice.addressee} by ${notice.dueAt.toISOString()}`
        : notice.rejection ?? 'no document'
      : document.kind === 'request'
        ? `${notice.type} from ${document.issuer}, ${notice.urgency}: "${document.content.title}"${counts(document.content)}`
        : document.kind === 'answer'
          ? `answer ${document.outcome}: "${document.content.title}"${counts(document.content)}`
          : document.kind === 'delay'
            ? `delay notice: expected by ${new Date(document.expectedBy * 1000).toISOString()}: ${document.reason}`
            : `withdrawn: ${document.reason}`;
  const withheld = notice.withheld.length === 0 ? '' : ` [withheld: ${notice.withheld.map((w) => w.kind).join(', ')}]`;
  return `notice     ${notice.agency.padEnd(17)} ← ${notice.state.toUpperCase().padEnd(9)} ${notice.requestId} (${notice.side}): ${what}${withheld}`;
}

function counts(content: { persons: readonly unknown[]; documents: readonly unknown[] }): string {
  const parts = [content.persons.length > 0 ? `${content.persons.length} person(s)` : '', content.documents.length > 0 ? `${content.documents.length} document(s)` : ''].filter((p) => p !== '');
  return parts.length === 0 ? '' : `; ${parts.join(', ')}`;
}

/** Notices seen so far, to wait for the ones a step should bring. */
export class NoticeTracker {
  readonly #seen = new Set<string>();
  #wake: (() => void) | undefined;

  record(notice: ReceivedRequestNotice): void {
    this.#seen.add(`${notice.agency} ${notice.requestId} ${notice.state}`);
    this.#wake?.();
  }

  /** Waits (bounded) until each of `agencies` has the notice of `state` for `requestId`; false if one has not. */
  async waitForAll(agencies: readonly string[], requestId: string, state: ReceivedRequestNotice['state'], timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (const agency of agencies) {
      if (!(await this.waitFor(agency, requestId, state, Math.max(0, deadline - Date.now())))) return false;
    }
    return true;
  }

  /** Waits (bounded) until `agency` has the notice of `state` for `requestId`. */
  async waitFor(agency: string, requestId: string, state: ReceivedRequestNotice['state'], timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#seen.has(`${agency} ${requestId} ${state}`)) {
      if (Date.now() > deadline) return false;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    return true;
  }
}

async function session(home: string, hubAddress: string, member: MemberId, log: Logger): Promise<MemberSession> {
  const config = await readNodeConfig({ ...process.env, CORRIDOR_HOME: home }, { member, hubAddress });
  return openMemberSession(config, log.child({ component: `requests-${member}` }));
}

/** The state of a request the hub already has, or undefined when it has none. */
async function recorded(member: MemberSession, id: string): Promise<string | undefined> {
  try {
    const view = await getRequestAt(member.hub, id);
    return view.request === undefined ? undefined : stateName(view.request.state);
  } catch (error) {
    if (error instanceof CorridorError && error.code === 'NOT_FOUND') return undefined;
    throw error;
  }
}

/**
 * Runs both requests, printing each step, and waits until the notices of each step reached the
 * agencies of both sides (bounded). A second run finds them recorded and says so.
 */
export async function runDemoRequests(home: string, hubAddress: string, say: Say, log: Logger, notices: NoticeTracker, clock: Clock = systemClock): Promise<void> {
  const IDN = asMemberId('IDN');
  const MYS = asMemberId('MYS');
  const THA = asMemberId('THA');
  const LKA = asMemberId('LKA');
  const idn = await session(home, hubAddress, IDN, log);
  const mys = await session(home, hubAddress, MYS, log);
  const tha = await session(home, hubAddress, THA, log);
  try {
    const verificationId = `${IDN}:${VERIFICATION.jti}`;
    const known = await recorded(idn, verificationId);
    if (known !== undefined) {
      say(`earlier    request ${verificationId} was made in an earlier run; it is ${known}`);
    } else {
      const asked = await sendDocument(idn.hub, 'request', (await signRequest(await idn.signingKey(), IDN, VERIFICATION, { to: MYS, type: 'travel-document-verification', urgency: 'high', requestingAgency: asAgencyId('IDN:imigrasi') }, clock)).sdJwt);
      say(`request    ${asked.request.id} sent by IDN to MYS's central authority ${asked.request.addresseeAuthority}: travel-document-verification, urgency high, answer due ${iso(asked.request.dueMs)}`);
      await notices.waitForAll(VERIFICATION_SIDES, verificationId, 'open');
      const expectedBy = new Date(clock.now().getTime() + 5 * 24 * 3600_000);
      const delayed = await sendDocument(mys.hub, 'reply', (await signDelay(await mys.signingKey(), MYS, verificationId, 'The 2019 issuance records are held at the Johor office and are being retrieved.', expectedBy, clock)).sdJwt);
      say(`delayed    ${verificationId} by MYS: the answer is now expected by ${iso(delayed.request.dueMs)}`);
      await notices.waitForAll(VERIFICATION_SIDES, verificationId, 'delayed');
      const answered = await sendDocument(mys.hub, 'reply', (await signAnswer(await mys.signingKey(), MYS, verificationId, 'not-confirmed', ANSWER, clock)).sdJwt);
      say(`answered   ${verificationId} by MYS: ${answered.request.outcome} (audit position ${answered.request.auditPosition})`);
      await notices.waitForAll(VERIFICATION_SIDES, verificationId, 'answered');
    }

    const nationalityId = `${THA}:${NATIONALITY.jti}`;
    const earlier = await recorded(tha, nationalityId);
    if (earlier !== undefined) {
      say(`earlier    request ${nationalityId} was made in an earlier run; it is ${earlier}`);
    } else {
      const asked = await sendDocument(tha.hub, 'request', (await signRequest(await tha.signingKey(), THA, NATIONALITY, { to: LKA, type: 'nationality-verification', urgency: 'urgent' }, clock)).sdJwt);
      say(
        `request    ${asked.request.id} sent by THA to LKA's central authority ${asked.request.addresseeAuthority}: nationality-verification, urgency urgent, answer due ${iso(asked.request.dueMs)} (the demo's urgent deadline is ${DEMO_URGENT_SECONDS} s; 8 h in a real region)`,
      );
      const overdue = await notices.waitForAll(['THA:rtp', 'THA:immigration', 'LKA:cid'], nationalityId, 'overdue', 20_000);
      const view = await getRequestAt(tha.hub, nationalityId);
      say(
        overdue && view.request?.state === WireState.OVERDUE
          ? `overdue    ${nationalityId}: no answer from LKA by ${iso(view.request.dueMs)}; both sides are notified`
          : `not yet overdue: ${nationalityId} is ${view.request === undefined ? 'unknown' : stateName(view.request.state)}`,
      );
    }
  } finally {
    idn.close();
    mys.close();
    tha.close();
  }
}

function iso(ms: bigint): string {
  return new Date(Number(ms)).toISOString();
}
