/**
 * Request notices on the Subscribe stream. They share one ordered channel with the markings of
 * bulletins: every notice is keyed by the audit position of the event it reports, and a
 * subscription resumes after the largest one the agency stored (`after_notice`). Each source is
 * read a page at a time; merging pages is only safe up to the lowest position at which a full
 * page stopped, so that a notice from one source never overtakes an unread one from another.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { SubscribeResponseSchema } from '../gen/corridor/v1/exchange_pb.js';
import type { HubContext } from './context.js';
import { listNoticesForAgency } from './request-store.js';
import { noticeMessage } from './transport/request-messages.js';

/** One notice ready to write: a SubscribeResponse, encoded. */
export interface EncodedNotice {
  readonly auditPosition: bigint;
  readonly message: Uint8Array;
}

/** A page of notices from one source; `full` when it may have more after its last one. */
export interface NoticePage {
  readonly notices: readonly EncodedNotice[];
  readonly full: boolean;
}

/** The request notices of an agency after audit position `after`, encoded, a page at a time. */
export async function requestNoticePage(ctx: HubContext, agencyId: string, after: bigint, limit: number): Promise<NoticePage> {
  const now = ctx.clock.now();
  const notices = await listNoticesForAgency(ctx.db, agencyId, after, limit, now, ctx.retentionDefaultDays);
  return {
    notices: notices.map((notice) => ({
      auditPosition: notice.auditPosition,
      message: toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { event: { case: 'requestNotice', value: noticeMessage(notice, now) } })),
    })),
    full: notices.length >= limit,
  };
}

/**
 * Merges pages from several sources in audit order, up to the lowest last position of a full
 * page (the sources beyond it are read again from there); `more` when another pass is needed.
 */
export function mergeNoticePages(pages: readonly NoticePage[]): { notices: EncodedNotice[]; more: boolean } {
  let horizon: bigint | undefined;
  for (const page of pages) {
    const last = page.notices[page.notices.length - 1];
    if (page.full && last !== undefined && (horizon === undefined || last.auditPosition < horizon)) horizon = last.auditPosition;
  }
  const notices = pages
    .flatMap((page) => page.notices)
    .filter((notice) => horizon === undefined || notice.auditPosition <= horizon)
    .sort((a, b) => (a.auditPosition < b.auditPosition ? -1 : a.auditPosition > b.auditPosition ? 1 : 0));
  return { notices, more: horizon !== undefined };
}
