/** Prometheus metrics of one hub, in a registry of its own so several hubs can live in one process (tests). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HubMetrics {
  readonly registry: Registry;
  readonly published: Counter;
  readonly refused: Counter<'operation' | 'code'>;
  readonly delivered: Counter;
  readonly acknowledged: Counter;
  readonly subscribers: Gauge;
  readonly subscriberLag: Gauge<'agency'>;
  readonly commitSeconds: Histogram<'operation'>;
  readonly publishBatchSize: Histogram;
  readonly auditTreeSize: Gauge;
  readonly auditIntegrationFailures: Counter<'code'>;
  readonly retentionPurged: Counter;
}

export function createHubMetrics(options: { collectDefaults: boolean }): HubMetrics {
  const registry = new Registry();
  if (options.collectDefaults) collectDefaultMetrics({ register: registry, prefix: 'corridor_' });
  return {
    registry,
    published: new Counter({ name: 'corridor_bulletins_published_total', help: 'Bulletins accepted and committed', registers: [registry] }),
    refused: new Counter({
      name: 'corridor_refusals_total',
      help: 'Requests refused, by operation and reason code',
      labelNames: ['operation', 'code'] as const,
      registers: [registry],
    }),
    delivered: new Counter({ name: 'corridor_deliveries_total', help: 'Deliveries written to agency streams', registers: [registry] }),
    acknowledged: new Counter({ name: 'corridor_acknowledgements_total', help: 'Deliveries newly acknowledged by agencies', registers: [registry] }),
    subscribers: new Gauge({ name: 'corridor_subscribers', help: 'Open agency subscriptions', registers: [registry] }),
    subscriberLag: new Gauge({
      name: 'corridor_subscriber_lag',
      help: 'Bulletin sequences between the hub head and the last delivery to the agency stream',
      labelNames: ['agency'] as const,
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'corridor_commit_seconds',
      help: 'Duration of ledger transactions (action plus audit record), by operation',
      labelNames: ['operation'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    publishBatchSize: new Histogram({
      name: 'corridor_publish_batch_size',
      help: 'Bulletins committed together in one ledger transaction (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    auditTreeSize: new Gauge({ name: 'corridor_audit_tree_size', help: 'Leaves covered by the latest checkpoint this hub signed', registers: [registry] }),
    auditIntegrationFailures: new Counter({
      name: 'corridor_audit_integration_failures_total',
      help: 'Integration batches that failed; LOG_INCONSISTENT means the stored log does not add up and nothing more is signed',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    retentionPurged: new Counter({
      name: 'corridor_retention_purged_total',
      help: 'Bulletins whose retention ended and whose Disclosures and event details were purged',
      registers: [registry],
    }),
  };
}
